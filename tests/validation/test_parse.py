"""Free-text parsers of reference-table cells (ddlsim.validation.parse)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ddlsim.sim import hardware, workloads
from ddlsim.validation import parse as P

PUBLISHED = Path(__file__).resolve().parents[2] / "src" / "ddlsim" / "data" / "published.csv"
CATEGORIES = ("data_parallel", "llm_3d_parallel", "pipeline_parallel", "collectives",
              "time_to_train", "async_vs_sync")


def _rows() -> list[dict[str, str]]:
    with PUBLISHED.open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["category"] in CATEGORIES]


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("text, zoo", [
    ("ResNet-50 v1.5", "resnet50"), ("ResNet50-v1.5 (ImageNet)", "resnet50"),
    ("Resnet 50 v1 (ImageNet)", "resnet50"), ("ResNet-101", "resnet101"),
    ("ResNet152 (ImageNet)", "resnet152"), ("GPT-3 175B", "gpt3-175b"), ("GPT3-5B", "gpt3-5b"),
    ("GPT3-20B", "gpt3-20b"), ("GPT-3 XL", "gpt3-1.3b"), ("gpt3 13b", "gpt3-13b"),
    ("Llama 2 70B", "llama2-70b"), ("LLAMA2-7B", "llama2-7b"), ("LLAMA2-13B", "llama2-13b"),
    ("Llama-3.1 405B", "llama3-405b"), ("LLAMA3-8B", "llama3-8b"),
    ("Nemotron-4 340B", "nemotron-340b"), ("Nemotron-22B", "nemotron-22b"),
    ("Nemotron-8B", "nemotron-8b"), ("BERT-Large", "bert-large"),
    ("BERT-Large pretraining", "bert-large"), ("bert base", "bert-base"), ("VGG-16", "vgg16"),
    ("AlexNet", "alexnet"), ("LeNet-5", "lenet5"), ("Megatron 8.3B", None),
    ("GPT 22B", None), ("GPT 1.7B", None), ("Transformer-XL base", "transformer-xl-base"),
    ("VGG-19", None),
    ("Custom ResNet 9 (CIFAR10)", "resnet9-cifar"),
    ("ResNet 164 (with bottleneck) (CIFAR10)", "resnet164-cifar"), ("BaiduNet9P (CIFAR10)", None),
    ("Inception V3", None), ("Llama 2", None),
])
def test_model_zoo_names(text, zoo):
    r = P.parse_model(text)
    assert (r.zoo if r else None) == zoo
    assert zoo is None or zoo in workloads.WORKLOADS


def test_model_families_and_sizes():
    assert P.parse_model("Llama 2 70B").family == "llama"
    assert P.parse_model("Nemotron-4 340B").family == "llama"
    assert P.parse_model("Mistral 7B").family == "llama"
    assert P.parse_model("GPT 22B").family == "gpt"
    assert P.parse_model("BERT-Large").family == "bert"
    assert P.parse_model("VGG-16").family == "cnn"
    assert P.parse_model("U-Net (5,64)").family == "cnn"
    assert P.parse_model("GPT 22B").params_b == 22
    assert P.parse_model("GPT-2-style 8.3B").params_b == pytest.approx(8.3)
    assert P.parse_model("GPT 1.7B").params_b == pytest.approx(1.7)
    assert P.parse_model("GPT3-175B").params_b == 175
    assert P.parse_model("BERT-Large (340M)").params_b == pytest.approx(0.34)
    assert P.parse_model("XLNet base") is None
    assert P.parse_model("allreduce") is None and P.parse_model("") is None
    assert "3.1" in P.parse_model("Llama-3.1 405B").assumptions[0]


def test_model_dims_from_notes():
    r = P.parse_model("GPT 22B", "tp=8", "hidden=2048, layers=24, heads=16, seq=4096, "
                                         "vocab=131072; end-to-end")
    assert r.zoo is None and r.params_b == 22 and r.family == "gpt"
    assert r.arch == {"hidden": 2048, "layers": 24, "heads": 16, "seq": 4096, "vocab": 131072}
    assert r.seq == 4096
    both = P.parse_model("LLAMA2-7B", "", "seq=4096; hidden=4096")
    assert both.zoo == "llama2-7b" and both.arch == {"seq": 4096, "hidden": 4096}


@pytest.mark.parametrize("text, arch", [
    ("h=12288, L=96", {"hidden": 12288, "layers": 96}),
    ("24 layers, hidden size 4096, 32 attention heads", {"layers": 24, "hidden": 4096,
                                                         "heads": 32}),
    ("num_query_groups=8 heads=64", {"kv_heads": 8, "heads": 64}),
    ("8 query groups", {"kv_heads": 8}), ("kv heads 8", {"kv_heads": 8}),
    ("gqa=8", {"kv_heads": 8}), ("ffn_hidden_size=28672 hidden_size=8192",
                                 {"ffn": 28672, "hidden": 8192}),
    ("ffn 14336", {"ffn": 14336}), ("seq_len 2048", {"seq": 2048}),
    ("sequence length 1024", {"seq": 1024}), ("seqlen=8192", {"seq": 8192}),
    ("seq 4096", {"seq": 4096}), ("seq4k", {"seq": 4096}), ("vocab 51200", {"vocab": 51200}),
    ("L=24, H=1024, A=16", {"layers": 24, "hidden": 1024, "heads": 16}),
    ("8.3B on 8 GPUs; hidden/head=96", {}),
    ("derived t = 96*B*s*l*h^2*(1+s/(6h)+V/(16*l*h)); tok/s x 72*l*h^2", {}),
])
def test_model_arch_spellings(text, arch):
    r = P.parse_model("GPT 22B", text)
    assert r.arch == arch


def test_model_seq_from_name_and_conflicts():
    r = P.parse_model("BERT-Large seq512")
    assert r.zoo == "bert-large" and r.seq == 512
    r = P.parse_model("BERT-Large pretraining (phase1 seq128 + phase2 seq512)")
    assert r.seq == 128 and any("several seq" in a for a in r.assumptions)


# --------------------------------------------------------------------------- parallelism
@pytest.mark.parametrize("text, want", [
    ("tp=8,pp=16,dp=8", dict(tp=8, pp=16, dp=8, strategy="3d")),
    ("TP8 PP4", dict(tp=8, pp=4, strategy="3d")), ("TP=8 / PP=4", dict(tp=8, pp=4)),
    ("tensor parallel 8", dict(tp=8)), ("pipeline parallel 4", dict(pp=4)),
    ("tp 2", dict(tp=2, strategy="3d")), ("DP64", dict(dp=64, strategy="allreduce")),
    ("data-parallel size 32", dict(dp=32, strategy="allreduce")),
    ("mp=tp*pp=16; dp=32; paper split tp=8,pp=2 (split+heads not re-verified here)",
     dict(mp=16, tp=8, pp=2, dp=32, strategy="3d")),
    ("mp=tp*pp=1; dp=32; paper split tp=1,pp=1", dict(mp=1, tp=1, pp=1, strategy="allreduce")),
    ("tp=4,pp=8,cp=1,vp=6,dp=16,sequence_parallel", dict(cp=1, vp=6, dp=16,
                                                         sequence_parallel=True)),
    ("tp=1,pp=1,cp=2,vp=1,dp=4", dict(cp=2, strategy="3d")),
    ("tp=1,pp=4,cp=1,vp=10,dp=4", dict(pp=4, vp=10, strategy="3d")),
    ("virtual stages 4", dict(vp=4)), ("interleaved (v=2)", dict(vp=2)),
    ("mbs=1", dict(mbs=1)), ("micro-batch 2", dict(mbs=2)),
    ("dp=256 (k=32 img/GPU)", dict(dp=256, mbs=32)),
    ("chunks=4", dict(chunks=4, strategy="pipeline")),
    ("pp=4, chunks(M)=32", dict(pp=4, chunks=32, strategy="pipeline")),
    ("GPipe M=8", dict(chunks=8, strategy="pipeline")), ("8 micro-batches", dict(chunks=8)),
    ("ZeRO-1", dict(zero=1)), ("zero stage 2", dict(zero=2)), ("FSDP", dict(zero=3)),
    ("distributed optimizer", dict(zero=1)),
    ("selective recompute", dict(recompute="selective")),
    ("full recomputation", dict(recompute="full")),
    ("activation checkpointing", dict(recompute="full")), ("no recompute", dict(recompute="none")),
    ("dp=8", dict(recompute="", sequence_parallel=None, zero=None)),
    ("no sequence parallel", dict(sequence_parallel=False)),
    ("ASYNC parameter server (dist_async), lr 0.05", dict(strategy="ps", ps_mode="asp")),
    ("BSP parameter server (dist_sync), lr 0.05", dict(strategy="ps", ps_mode="bsp")),
    ("dist_sync", dict(strategy="ps", ps_mode="bsp")), ("SSP", dict(strategy="ps", ps_mode="ssp")),
    ("ASYNC, lr 0.05", dict(strategy="ps", ps_mode="asp")),
    ("ASP (async PS) vs PipeDream", dict(strategy="ps", ps_mode="asp")),
    ("BSP, lr 0.1", dict(strategy="", ps_mode="bsp")),
    ("BSP data parallel", dict(strategy="allreduce", ps_mode="bsp")),
    ("dp=8 (Horovod/kvstore)", dict(dp=8, strategy="allreduce", ps_mode="")),
    ("dp=128 ring-allreduce (NCCL2)", dict(dp=128, strategy="allreduce")),
    ("dp=8 (torch DDP)", dict(strategy="allreduce")), ("horovod", dict(strategy="allreduce")),
    ("data parallel", dict(strategy="allreduce")), ("PipeDream 7-1", dict(strategy="pipeline")),
    ("pipeline+data (1F1B)", dict(strategy="pipeline")),
    ("pipeline-2: pp=2", dict(pp=2, strategy="pipeline")),
    ("baseline: pp=1, chunks=1", dict(pp=1, chunks=1, baseline=True)),
    ("single GPU", dict(baseline=True, strategy="")), ("no pipeline", dict(baseline=True)),
    ("balance=3,4,5", dict(balance=(3, 4, 5))), ("balance [3, 4, 5]", dict(balance=(3, 4, 5))),
    ("pipeline-1: pp=1, chunks=2; balance=370 (torchgpipe modules)", dict(balance=(370,))),
    ("8 ranks", dict(ranks=8, strategy="")), ("8 ranks, -b 64k -e 4G", dict(ranks=8)),
    ("-b 1G -e 8G -g 2", dict(strategy="", tp=None, dp=None)), ("", dict(strategy="")),
])
def test_parallelism(text, want):
    r = P.parse_parallelism(text)
    assert {k: getattr(r, k) for k in want} == want


def test_parallelism_records_guesses():
    assert P.parse_parallelism("FSDP").assumptions
    assert P.parse_parallelism("mp=tp*pp=16; tp=8,pp=4").assumptions


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("text, compute, grad, fp8", [
    ("BF16", "bfloat16", "float32", False), ("bf16 mixed", "bfloat16", "float32", False),
    ("AMP (fp16)", "float16", "float32", False), ("AMP (mixed fp16)", "float16", "float32", False),
    ("mixed fp16", "float16", "float32", False), ("mixed precision", "float16", "float32", False),
    ("AMP+XLA", "float16", "float32", False), ("TF32", "tf32", "float32", False),
    ("TF32+XLA", "tf32", "float32", False), ("FP32 (TF default)", "float32", "float32", False),
    ("fp32", "float32", "float32", False), ("FP32+XLA", "float32", "float32", False),
    ("float32", "float32", "float32", False), ("FP16", "float16", "float16", False),
    ("FP8", "bfloat16", "float32", True), ("fp8 (Transformer Engine)", "bfloat16", "float32", True),
    ("Transformer Engine fp8", "bfloat16", "float32", True),
    ("fp8 (TE)", "bfloat16", "float32", True),
    ("not stated (likely BF16)", "bfloat16", "float32", False),
])
def test_precision(text, compute, grad, fp8):
    r = P.parse_precision(text)
    assert (r.compute, r.grad, r.fp8) == (compute, grad, fp8)


def test_precision_guesses_and_unknowns():
    assert P.parse_precision("not stated (likely BF16)").assumptions[0] == (
        "precision not stated; taken as the stated guess BF16")
    assert P.parse_precision("mixed precision").assumptions
    assert not P.parse_precision("AMP (fp16)").assumptions
    for text in ("n/a", "", "not stated", "PyTorch 1.0", "tensorpack 0.8.0", None):
        assert P.parse_precision(text) is None


# --------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("metric, unit, kind, scale", [
    ("train_throughput", "images/s", "samples_per_s", 1), ("images_per_sec", "images/s",
                                                           "samples_per_s", 1),
    ("throughput", "seq/s", "samples_per_s", 1), ("train_throughput", "samples/s",
                                                  "samples_per_s", 1),
    ("train_throughput", "tokens/s", "tokens_per_s", 1),
    ("tokens_per_sec_per_gpu", "tokens/s/GPU", "tokens_per_s", 1),
    ("step time", "ms", "iteration_s", 1e-3), ("iteration_time_derived", "s", "iteration_s", 1),
    ("median iteration time", "s", "iteration_s", 1),
    ("achieved_tflops_per_gpu", "TFLOP/s", "hardware_tflops_per_gpu", 1),
    ("model_tflops_per_gpu", "TFLOP/s", "model_tflops_per_gpu", 1),
    ("Model TFLOPS", "", "model_tflops_per_gpu", 1), ("MFU", "%", "mfu", 0.01),
    ("HFU", "%", "hfu", 0.01), ("aggregate_pflops", "PFLOP/s", "aggregate_pflops", 1),
    ("speedup_vs_baseline", "x", "speedup", 1), ("scaling_efficiency", "%",
                                                 "scaling_efficiency", 0.01),
    ("scaling_efficiency_8_to_256_gpus", '% (approx, "~90%")', "scaling_efficiency", 0.01),
    ("allreduce_busbw", "GB/s", "busbw_GBps", 1), ("allreduce_busbw_peak", "GB/s", "busbw_GBps",
                                                   1),
    ("allreduce_busbw_avg", "GB/s", "busbw_GBps", 1),
    ("effective_nvlink_busbw", "GB/s", "busbw_GBps", 1),
    ("per_nic_busbw_expected", "GB/s (46-48)", "per_nic_busbw_GBps", 1),
    ("time_to_train_hours", "h", "time_to_train_s", 3600),
    ("time_to_accuracy_hours", "h", "time_to_train_s", 3600),
    ("time to train", "min", "time_to_train_s", 60),
    ("backprop_time_single_gpu", "ms", "backprop_s", 1e-3), ("epoch_time", "s", "epoch_s", 1),
    ("pct_of_peak", "% of 312 TFLOP/s", "pct_of_peak", 0.01),
])
def test_metric_kinds(metric, unit, kind, scale):
    r = P.parse_metric(metric, unit)
    assert r.kind == kind and r.scale == pytest.approx(scale)


def test_metric_flags():
    assert P.parse_metric("tokens_per_sec_per_gpu", "tokens/s/GPU").per_gpu
    assert not P.parse_metric("train_throughput", "tokens/s").per_gpu
    assert P.parse_metric("pct_of_peak", "% of 312 TFLOP/s").peak_tflops == 312
    assert P.parse_metric("scaling_efficiency_8_to_256_gpus", "%").baseline_gpus == 8
    assert P.parse_metric("scaling_efficiency", "%").baseline_gpus is None
    assert P.parse_metric("scaling_efficiency_8_to_256_gpus", '% (approx, "~90%")').approx
    assert P.parse_metric("time_to_train_hours", 'h (approx, "one hour")').approx
    assert not P.parse_metric("allreduce_busbw", "GB/s").approx
    assert P.parse_metric("allreduce_busbw_avg", "GB/s").stat == "mean"
    assert P.parse_metric("median iteration time", "s").stat == "median"
    assert P.parse_metric("MFU", "%").peak_tflops is None
    assert P.parse_metric("allreduce busbw", "Gbit/s").scale == pytest.approx(1 / 8)


@pytest.mark.parametrize("metric, unit", [
    ("valid_accuracy_epoch20", "fraction"), ("BLEU", "BLEU"), ("top1_error", "% (+-0.06)"),
    ("on_demand_price_per_gpu_hour", "USD/GPU-h"), ("peak_fp32", "TFLOP/s"),
    ("peak_bf16_fp16_tensor_dense", "TFLOP/s"), ("hbm_bandwidth", "GB/s"),
    ("memory_capacity", "GB"), ("port_bandwidth", "Gb/s (=25 GB/s)"), ("tdp", "W"),
    ("params", "parameters"), ("forward_GMACs_per_image", "GMAC"),
    ("training_flops_per_token", "FLOPs/token"), ("fraction_time_communicating", "%"),
    ("estimated_peak_network_requirement", "Gbit/s"), ("", ""),
])
def test_metric_not_performance(metric, unit):
    assert P.parse_metric(metric, unit) is None


# --------------------------------------------------------------------------- GPUs
@pytest.mark.parametrize("text, device, form, mem, count", [
    ("NVIDIA H100-SXM5-80GB", "h100-sxm", "sxm", 80, None),
    ("A100 80GB PCIe", "a100-pcie-80gb", "pcie", 80, None),
    ("A100-SXM4-40GB", "a100-40gb", "sxm", 40, None),
    ("A100-SXM4-80GB", "a100-80gb", "sxm", 80, None),
    ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb", "sxm", 16, None),
    ("V100-SXM2-32GB", "v100-sxm2-32gb", "sxm", 32, None),
    ("H100 SXM", "h100-sxm", "sxm", 80, None), ("Tesla P40", "p40", "pcie", 24, None),
    ("V100-SXM3-32GB (DGX-2H)", "v100-sxm3-32gb", "sxm", 32, None),
    ("8 * V100 (AWS p3.16xlarge)", "v100-sxm2-16gb", "", 16, 8),
    ("8x A100", "a100-40gb", "", 40, 8), ("Baidu Cloud Tesla 8*V100-16GB/448 GB/96 CPU",
                                         "v100-sxm2-16gb", "", 16, 8),
    ("8 P100 / 512 GB / 40 CPU (NVIDIA DGX-1)", "p100-sxm2-16gb", "sxm", 16, 8),
    ("Tesla V100 * 8 GPU / 32 GB / 40 CPU", "v100-sxm2-32gb", "", 32, 8),
    ("16 p3.16xlarge (AWS)", "v100-sxm2-16gb", "", 16, None), ("H200", "h200", "", 141, None),
    ("H100 PCIe (NVLink bridge)", "h100-pcie", "pcie", 80, None),
])
def test_gpu(text, device, form, mem, count):
    r = P.parse_gpu(text)
    assert (r.device, r.form, r.memory_GB, r.count) == (device, form, mem, count)
    assert r.device is None or r.device in hardware.CATALOG or r.device == "v100-sxm3-32gb"


def test_gpu_notes_and_unknowns():
    assert "80 GB part assumed" in P.parse_gpu("H100").assumptions[0]
    assert any("SXM3" in a for a in P.parse_gpu("V100-SXM3-32GB").assumptions)
    assert P.parse_gpu("16 nodes with InfiniBand (8*V100 with NVLink for each node)").per_node == 8
    assert P.parse_gpu("A100 (8/node)").per_node == 8
    assert P.parse_gpu("16 p3.16xlarge (AWS)").per_node == 8
    assert P.parse_gpu("GTX 980").device is None
    for text in ("not stated", "various", "Pascal", "", "GPU (GPipe paper v4 Fig 3b)"):
        assert P.parse_gpu(text) is None


# --------------------------------------------------------------------------- frameworks
@pytest.mark.parametrize("texts, framework", [
    (("NVIDIA/DeepLearningExamples PyTorch/Classification/ConvNets",), "pytorch"),
    (("dp=8 (torch DDP)",), "pytorch"), (("NVIDIA/NeMo docs",), "pytorch"),
    (("Megatron-LM paper",), "pytorch"), (("fastai_pytorch.json",), "pytorch"),
    (("kakaobrain/torchgpipe",), "pytorch"), (("apache/mxnet example",), "mxnet"),
    (("dp=8 (Horovod/kvstore)",), "mxnet"),
    (("DeepLearningExamples TensorFlow/Classification (TF 20.06-tf1, XLA, Horovod)",),
     "tensorflow-xla"), (("some README", "TF32+XLA"), "tensorflow-xla"),
    (("tensorflow 1.11 + horovod",), "tensorflow"), (("horovod", "fp32 (TF default)"),
                                                     "tensorflow"),
    (("tensorpack 0.8.0",), "tensorflow"), (("Caffe2",), "caffe2"),
    (("horovod/horovod README", "fp32", "dp=16"), ""), (("TF32",), ""), ((), ""),
])
def test_framework(texts, framework):
    assert P.parse_framework(*texts) == framework


# --------------------------------------------------------------------------- interconnects
@pytest.mark.parametrize("text, want", [
    ("DGX A100", dict(system="dgx-a100", intra="nvswitch")),
    ("Selene DGX A100 nodes (8x A100-80GB, NVLink3/NVSwitch intra-node; InfiniBand inter-node)",
     dict(system="dgx-a100", intra="nvswitch", nics_per_node=None, fabric="infiniband")),
    ("DGX-H100 NVLink4/NVSwitch + IB", dict(system="dgx-h100", fabric="infiniband")),
    ("DGX-1 NVLink2 hybrid cube-mesh", dict(system="dgx-1", intra="nvlink")),
    ("DGX-2H NVSwitch", dict(system="dgx-2", intra="nvswitch")),
    ("DGX-2H: NVSwitch (300 GB/s GPU-GPU) intra-node; 8x InfiniBand per node (100 GB/s total)",
     dict(system="dgx-2", nics_per_node=8, nic_Gbps=None, fabric="infiniband")),
    ("Facebook Big Basin: 8x P100 NVLink per server; Mellanox ConnectX-4 50 Gbit Ethernet",
     dict(system="big-basin", intra="nvlink", nics_per_node=None, nic_Gbps=50,
          fabric="ethernet")),
    ("HGX A100", dict(system="dgx-a100", intra="nvswitch")),
    ("NVLink4 + NVSwitch (NVLS)", dict(intra="nvswitch", nvls=True)),
    ("NVLink SHARP", dict(nvls=True)), ("PCIe (single server, 8x P40)", dict(intra="pcie",
                                                                             nics_per_node=None)),
    ("4x IB 200Gb (dual-port) per node", dict(nics_per_node=4, nic_Gbps=200,
                                              fabric="infiniband")),
    ("8x400G IB NDR per node", dict(nics_per_node=8, nic_Gbps=400)),
    ("4x ConnectX-6 200Gbps IB per node", dict(nics_per_node=4, nic_Gbps=200)),
    ("4x Mellanox HDR IB per node", dict(nics_per_node=4, nic_Gbps=200)),
    ("4x HDR IB (user quotes 25 GB/s per HDR)", dict(nics_per_node=4, nic_Gbps=200)),
    ("ConnectX-7 NDR 400Gb/s", dict(nic_Gbps=400, fabric="infiniband")),
    ("EDR InfiniBand", dict(nic_Gbps=100)), ("25 Gbit/s RoCE-capable Ethernet",
                                             dict(nic_Gbps=25, fabric="ethernet")),
    ("1 Gbit Ethernet", dict(nic_Gbps=1, fabric="ethernet")),
    ("10 Gbps Ethernet (Cluster-B)", dict(nic_Gbps=10, fabric="ethernet")),
    ("n/a", dict(system="", intra="", nic_Gbps=None, fabric="")),
])
def test_interconnect(text, want):
    r = P.parse_interconnect(text)
    assert {k: getattr(r, k) for k in want} == want


# --------------------------------------------------------------------------- the table
# Every metric of the six categories, with the kind it must parse to (None: not performance).
METRIC_KINDS = {
    "epoch_time": "epoch_s", "pipedream_speedup_over_ASP_to_48pct_acc": "speedup",
    "valid_accuracy_epoch20": None, "allreduce_busbw": "busbw_GBps",
    "allreduce_busbw_avg": "busbw_GBps", "allreduce_busbw_measured": "busbw_GBps",
    "allreduce_busbw_measured_bad_config": "busbw_GBps", "allreduce_busbw_peak": "busbw_GBps",
    "effective_nvlink_busbw": "busbw_GBps", "per_nic_busbw_expected": "per_nic_busbw_GBps",
    "per_nic_bw_expected": "per_nic_busbw_GBps", "backprop_time_single_gpu": "backprop_s",
    "estimated_peak_network_requirement": None, "images_per_sec": "samples_per_s",
    "scaling_efficiency": "scaling_efficiency",
    "scaling_efficiency_8_to_256_gpus": "scaling_efficiency",
    "achieved_tflops_per_gpu": "hardware_tflops_per_gpu", "aggregate_pflops": "aggregate_pflops",
    "iteration_time_derived": "iteration_s", "model_tflops_per_gpu": "model_tflops_per_gpu",
    "pct_of_peak": "pct_of_peak", "scaling_efficiency_vs_1gpu": "scaling_efficiency",
    "tokens_per_sec_per_gpu": "tokens_per_s",
    "weak_scaling_efficiency_model_parallel": "scaling_efficiency",
    "weak_scaling_efficiency_mp_dp": "scaling_efficiency", "fraction_time_communicating": None,
    "max_time_to_accuracy_speedup_vs_intra_batch": "speedup", "speedup_vs_baseline": "speedup",
    "speedup_vs_single_machine": "speedup", "time_to_accuracy_hours": "time_to_train_s",
    "time_to_train_hours": "time_to_train_s", "train_throughput": "by unit",
}
PRECISION_COMPUTE = {
    "AMP (fp16)": "float16", "AMP (mixed fp16)": "float16", "AMP+XLA": "float16",
    "FP32": "float32", "FP32+XLA": "float32", "TF32": "tf32", "TF32+XLA": "tf32",
    "float32": "float32", "fp32": "float32", "fp32 (TF default)": "float32",
    "fp8 (Transformer Engine)": "bfloat16", "mixed fp16": "float16",
}


def test_the_table_has_rows_of_every_category():
    assert {r["category"] for r in _rows()} == set(CATEGORIES)


def test_every_row_metric_parses_to_its_kind():
    rows = _rows()
    assert {r["metric"] for r in rows} <= set(METRIC_KINDS), "a new metric: add its kind"
    for r in rows:
        got = P.parse_metric(r["metric"], r["unit"])
        want = METRIC_KINDS[r["metric"]]
        if r["metric"] == "train_throughput":
            want = "tokens_per_s" if "token" in r["unit"] else "samples_per_s"
        assert (got.kind if got else None) == want, (r["id"], r["metric"], r["unit"])


def test_every_row_precision_parses():
    for r in _rows():
        got = P.parse_precision(r["precision"])
        want = PRECISION_COMPUTE.get(r["precision"])
        assert (got.compute if got else None) == want, (r["id"], r["precision"])


def test_sample_rows_parse_by_meaning():
    rows = {r["id"]: r for r in _rows()}
    meg = rows["MEG-SC21-01b"]
    assert P.parse_parallelism(meg["parallelism"]).strategy == "allreduce"
    model = P.parse_model(meg["model"], meg["parallelism"], meg["notes"])
    assert model.zoo is None and model.arch["hidden"] == 2304 and model.arch["layers"] == 24
    gpu = P.parse_gpu(meg["gpu"])
    assert gpu.device == "a100-80gb"
    assert P.parse_interconnect(meg["interconnect"]).system == "dgx-a100"


def test_no_row_crashes_any_parser():
    for r in _rows():
        P.parse_model(r["model"], r["parallelism"], r["notes"])
        assert isinstance(P.parse_parallelism(r["parallelism"]), P.ParallelismParse)
        P.parse_precision(r["precision"])
        P.parse_metric(r["metric"], r["unit"])
        P.parse_gpu(r["gpu"])
        assert isinstance(P.parse_framework(r["source"], r["precision"], r["parallelism"]), str)
        assert isinstance(P.parse_interconnect(r["interconnect"]), P.InterconnectParse)


def test_llm_rows_carry_their_dimensions():
    for r in _rows():
        if r["category"] == "llm_3d_parallel" and "hidden=" in r["notes"]:
            arch = P.parse_model(r["model"], r["parallelism"], r["notes"]).arch
            assert {"hidden", "layers", "heads", "seq", "vocab"} <= set(arch), r["id"]


@pytest.mark.parametrize(("text", "zoo"), [
    ("GPT-2-style 8.3B", "gpt2-8.3b"), ("GPT-2 8.3B", "gpt2-8.3b"),
    ("Megatron GPT-2 8.3B", "gpt2-8.3b"), ("GPT-2-style 1.2B", "gpt2-1.2b"),
    ("GPT-2 4.2B", "gpt2-4.2b"), ("Transformer-XL base", "transformer-xl-base"),
    ("Transformer-XL large", "transformer-xl-large"),
    ("transformer xl large", "transformer-xl-large")])
def test_family_and_size_name_the_zoo_model(text: str, zoo: str) -> None:
    assert P.parse_model(text).zoo == zoo
