"""The accelerators added from vendor datasheets (issue 16): every number equals the value
its source cites, converted to the catalog's convention (dense FLOP/s; bytes, GiB for the
vendor's "GB"; bytes/s per direction), and the source quotes that value."""

from __future__ import annotations

import pytest

from ddlsim.errors import ConfigError
from ddlsim.sim.hardware import get_device

T, G, GIB = 1e12, 1e9, 2**30
F = "peak_flops_per_s."

#: (device, field, value in SI, text the field's source must contain).
CITED = [
    # NVIDIA Blackwell datasheet table, HGX B200 column (Tensor Core figures with sparsity:
    # dense = half)
    ("b200", F + "fp8", 4500 * T, "FP8/FP6 Tensor Core 9 PFLOPS"),
    ("b200", F + "bfloat16", 2250 * T, "FP16/BF16 Tensor Core 4.5 PFLOPS"),
    ("b200", F + "float16", 2250 * T, "FP16/BF16 Tensor Core 4.5 PFLOPS"),
    ("b200", F + "tf32", 1100 * T, "TF32 Tensor Core 2.2 PFLOPS"),
    ("b200", F + "float32", 75 * T, "FP32 75 TFLOPS"),
    ("b200", F + "float64", 37 * T, "FP64/FP64 Tensor Core 37 TFLOPS"),
    ("b200", "memory_bytes", 180 * GIB, "180 GB HBM3E"),
    ("b200", "memory_bw_bytes_per_s", 7700 * G, "7.7 TB/s"),
    ("b200", "nvlink_bw_bytes_per_s", 900 * G, "NVLink 1.8 TB/s per GPU"),
    ("b200", "pcie_bw_bytes_per_s", 64 * G, "PCIe Gen5 128 GB/s"),
    # same table, GB200 NVL72 column (one Blackwell GPU of the rack)
    ("gb200", F + "fp8", 5000 * T, "FP8/FP6 Tensor Core 10 PFLOPS"),
    ("gb200", F + "bfloat16", 2500 * T, "FP16/BF16 Tensor Core 5 PFLOPS"),
    ("gb200", F + "float16", 2500 * T, "FP16/BF16 Tensor Core 5 PFLOPS"),
    ("gb200", F + "tf32", 1250 * T, "TF32 Tensor Core 2.5 PFLOPS"),
    ("gb200", F + "float32", 80 * T, "FP32 80 TFLOPS"),
    ("gb200", F + "float64", 40 * T, "FP64/FP64 Tensor Core 40 TFLOPS"),
    ("gb200", "memory_bytes", 186 * GIB, "186 GB HBM3E"),
    ("gb200", "memory_bw_bytes_per_s", 8000 * G, "8 TB/s"),
    ("gb200", "nvlink_bw_bytes_per_s", 900 * G, "NVLink 1.8 TB/s per GPU"),
    ("gb200", "pcie_bw_bytes_per_s", 64 * G, "PCIe Gen5 128 GB/s"),
    # NVIDIA L40S datasheet (dense | sparse* pairs: the dense one)
    ("l40s", F + "float32", 91.6 * T, "FP32 91.6 TFLOPS"),
    ("l40s", F + "tf32", 183 * T, "TF32 Tensor Core 183 | 366*"),
    ("l40s", F + "bfloat16", 362.05 * T, "BFLOAT16 Tensor Core 362.05 | 733*"),
    ("l40s", F + "float16", 362.05 * T, "FP16 Tensor Core 362.05 | 733*"),
    ("l40s", F + "fp8", 733 * T, "FP8 Tensor Core 733 | 1,466*"),
    ("l40s", "memory_bytes", 48 * GIB, "48 GB GDDR6"),
    ("l40s", "memory_bw_bytes_per_s", 864 * G, "864 GB/s"),
    ("l40s", "pcie_bw_bytes_per_s", 32 * G, "PCIe Gen4 x16 64 GB/s bidirectional"),
    ("l40s", "nvlink_bw_bytes_per_s", 0.0, "NVLink is not supported"),
    # NVIDIA H100 datasheet, H100 PCIe column ("* Shown with sparsity": dense = half)
    ("h100-pcie", F + "float64", 51 * T, "FP64 Tensor Core 51 TFLOPS"),
    ("h100-pcie", F + "float32", 51 * T, "FP32 51 TFLOPS"),
    ("h100-pcie", F + "tf32", 378 * T, "TF32 Tensor Core 756 TFLOPS*"),
    ("h100-pcie", F + "bfloat16", 756.5 * T, "BFLOAT16 Tensor Core 1,513 TFLOPS*"),
    ("h100-pcie", F + "float16", 756.5 * T, "FP16 Tensor Core 1,513 TFLOPS*"),
    ("h100-pcie", F + "fp8", 1513 * T, "FP8 Tensor Core 3,026 TFLOPS*"),
    ("h100-pcie", "memory_bytes", 80 * GIB, "80 GB HBM2e"),
    ("h100-pcie", "memory_bw_bytes_per_s", 2000 * G, "2000 GB/s"),
    ("h100-pcie", "pcie_bw_bytes_per_s", 64 * G, "PCIe Gen5 128 GB/s"),
    ("h100-pcie", "nvlink_bw_bytes_per_s", 0.0, "NVLink 600 GB/s through a bridge"),
    # NVIDIA A100 datasheet (PCIe parts: same peaks as SXM4; thundercompute's table for
    # the memory bandwidth per part)
    ("a100-pcie-40gb", F + "float64", 19.5 * T, "FP64 tensor core"),
    ("a100-pcie-40gb", F + "float32", 19.5 * T, "A100 datasheet"),
    ("a100-pcie-40gb", F + "tf32", 156 * T, "tensor core, dense"),
    ("a100-pcie-40gb", F + "bfloat16", 312 * T, "tensor core, dense"),
    ("a100-pcie-40gb", F + "float16", 312 * T, "tensor core, dense"),
    ("a100-pcie-40gb", "memory_bytes", 40 * GIB, "A100 PCIe 40GB, HBM2"),
    ("a100-pcie-40gb", "memory_bw_bytes_per_s", 1555 * G, "A100 PCIe 40GB 1,555 GB/s"),
    ("a100-pcie-40gb", "pcie_bw_bytes_per_s", 32 * G, "PCIe Gen4 x16, 64 GB/s"),
    ("a100-pcie-40gb", "nvlink_bw_bytes_per_s", 0.0, "NVLink bridge joins 2 GPUs (600 GB/s)"),
    ("a100-pcie-80gb", F + "float64", 19.5 * T, "FP64 tensor core"),
    ("a100-pcie-80gb", F + "float32", 19.5 * T, "A100 datasheet"),
    ("a100-pcie-80gb", F + "tf32", 156 * T, "tensor core, dense"),
    ("a100-pcie-80gb", F + "float16", 312 * T, "tensor core, dense"),
    ("a100-pcie-80gb", F + "bfloat16", 312 * T, "tensor core, dense"),
    ("a100-pcie-80gb", "memory_bytes", 80 * GIB, "A100 PCIe 80GB, HBM2e"),
    ("a100-pcie-80gb", "memory_bw_bytes_per_s", 1935 * G, "A100 PCIe 80GB 1,935 GB/s"),
    ("a100-pcie-80gb", "pcie_bw_bytes_per_s", 32 * G, "PCIe Gen4 x16, 64 GB/s"),
    ("a100-pcie-80gb", "nvlink_bw_bytes_per_s", 0.0, "NVLink bridge joins 2 GPUs (600 GB/s)"),
    # AMD ROCm 'MI300 series microarchitecture' peak table (data sheet values, dense)
    ("mi300x", F + "float64", 163.4 * T, "Matrix FP64 163.4 TFLOPS"),
    ("mi300x", F + "float32", 163.4 * T, "Vector FP32 163.4 TFLOPS"),
    ("mi300x", F + "tf32", 653.7 * T, "TF32 653.7 TFLOPS"),
    ("mi300x", F + "float16", 1307.4 * T, "Matrix FP16 1307.4 TFLOPS"),
    ("mi300x", F + "bfloat16", 1307.4 * T, "Matrix BF16 1307.4 TFLOPS"),
    ("mi300x", F + "fp8", 2614.9 * T, "Matrix FP8 2614.9 TFLOPS"),
    ("mi300x", "memory_bytes", 192 * GIB, "MI300X 192 GiB"),
    ("mi300x", "memory_bw_bytes_per_s", 5300 * G, "5.3 TB per second"),
    ("mi300x", "pcie_bw_bytes_per_s", 64 * G, "PCIe Gen 5 x16"),
    ("mi300x", "nvlink_bw_bytes_per_s", 448 * G, "7 AMD Infinity Fabric links x 128 GB/s"),
    # AMD MI325X data sheet values (same CDNA 3 compute as MI300X, 256 GB HBM3E at 6 TB/s)
    ("mi325x", F + "float32", 163.4 * T, "FP32 163.4 TFLOPS"),
    ("mi325x", F + "tf32", 653.7 * T, "TF32 653.7 TFLOPS"),
    ("mi325x", F + "float16", 1307.4 * T, "FP16 1,307.4 TFLOPS"),
    ("mi325x", F + "bfloat16", 1307.4 * T, "BF16 1,307.4 TFLOPS"),
    ("mi325x", F + "fp8", 2614.9 * T, "FP8 2,614.9 TFLOPS"),
    ("mi325x", "memory_bytes", 256 * GIB, "MI325X 256 GiB"),
    ("mi325x", "memory_bw_bytes_per_s", 6000 * G, "6 TB/s"),
    ("mi325x", "pcie_bw_bytes_per_s", 64 * G, "PCIe Gen 5 interface with 16 lanes"),
    ("mi325x", "nvlink_bw_bytes_per_s", 448 * G, "assumed equal to the MI300X's"),
    # NVIDIA A10 datasheet 'A10 Technical Specifications and Features' (dense figures)
    ("a10", F + "float32", 31.2 * T, "FP32 31.2 teraFLOPS"),
    ("a10", F + "tf32", 62.5 * T, "TF32 Tensor Core 62.5 teraFLOPS"),
    ("a10", F + "float16", 125 * T, "FP16 Tensor Core 125 teraFLOPS"),
    ("a10", F + "bfloat16", 125 * T, "BFLOAT16 Tensor Core 125 teraFLOPS"),
    ("a10", "memory_bytes", 24 * GIB, "24GB GDDR6"),
    ("a10", "memory_bw_bytes_per_s", 600 * G, "600GB/s"),
    ("a10", "pcie_bw_bytes_per_s", 32 * G, "PCIe Gen4 64GB/s"),
    ("a10", "nvlink_bw_bytes_per_s", 0.0, "no NVLink"),
    # Intel Hot Chips 2024 Gaudi 3 talk, 'Gaudi Product Generations' table (Gaudi 2 column)
    ("gaudi2", F + "bfloat16", 432 * T, "Peak Compute (BF16) 432 TFLOPs"),
    ("gaudi2", "memory_bytes", 96 * GIB, "HBM Capacity 96 GB"),
    ("gaudi2", "memory_bw_bytes_per_s", 2460 * G, "Peak HBM BW 2.46 TB/s"),
    ("gaudi2", "pcie_bw_bytes_per_s", 32 * G, "Peak PCIe BW (bi-directional) 64 GB/s"),
    # Intel Gaudi docs 'Network Configuration': 21 scale-up ports x 100 Gb/s, one direction
    ("gaudi2", "nvlink_bw_bytes_per_s", 262.5 * G, "21*100Gbps = 262.5 GB/s unidirectional"),
    # same talk, 'Intel Gaudi 3 Spec and Block Diagram' table; MME fp32/tf32/fp16 from the
    # ml-engineering table (citing Intel's Gaudi 3 white paper)
    ("gaudi3", F + "bfloat16", 1835 * T, "BF16 Matrix TFLOPs 1835"),
    ("gaudi3", F + "fp8", 1835 * T, "FP8 Matrix TFLOPs 1835"),
    ("gaudi3", F + "float32", 229 * T, "fp32 229 TFLOPS"),
    ("gaudi3", F + "tf32", 459 * T, "tf32 459 TFLOPS"),
    ("gaudi3", F + "float16", 459 * T, "fp16 459 TFLOPS"),
    ("gaudi3", "memory_bytes", 128 * GIB, "HBM Capacity 128 GB"),
    ("gaudi3", "memory_bw_bytes_per_s", 3670 * G, "HBM Bandwidth 3.67 TB/s"),
    ("gaudi3", "pcie_bw_bytes_per_s", 64 * G, "Peak BW 128 GB/s bidirectional"),
    ("gaudi3", "nvlink_bw_bytes_per_s", 525 * G, "21*200Gbps = 21*25 GB/s = 525 GB/s"),
]


def _value(name: str, key: str) -> float:
    spec = get_device(name)
    if key.startswith(F):
        return spec.peak_flops(key.removeprefix(F))
    return getattr(spec, key)


@pytest.mark.parametrize("name, key, expected, cited", CITED,
                         ids=[f"{n}:{k.removeprefix(F)}" for n, k, _, _ in CITED])
def test_number_equals_its_cited_value(name, key, expected, cited):
    assert _value(name, key) == pytest.approx(expected, rel=1e-12, abs=0.0)
    assert cited in get_device(name).sources[key], (name, key)


def test_every_number_of_the_new_rows_is_cited_above():
    covered = {(n, k) for n, k, _, _ in CITED}
    for name in {n for n, _, _, _ in CITED}:
        for key in get_device(name).source_keys():
            assert (name, key) in covered, (name, key)


def test_sparse_figures_are_halved_and_say_so():
    for name in ("b200", "gb200", "h100-pcie"):
        src = get_device(name).sources[F + "fp8"].lower()
        assert "sparsity" in src and ("half" in src), (name, src)
    assert get_device("b200").peak_flops("fp8") == 2 * get_device("b200").peak_flops("bfloat16")


def test_amd_scale_up_link_is_per_direction_aggregate_of_seven_links():
    mi = get_device("mi300x")
    assert mi.nvlink_bw_bytes_per_s == 7 * 64e9  # 7 links x 128 GB/s bidirectional / 2
    assert "per direction" in mi.sources["nvlink_bw_bytes_per_s"]


def test_pcie_cards_model_no_nvlink_and_resolve_from_cuda_names():
    for text, key in [("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA A100-PCIE-40GB",
                                                         "a100-pcie-40gb"),
                      ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"), ("NVIDIA L40S", "l40s")]:
        dev = get_device(text)
        assert dev.name == key and dev.nvlink_bw_bytes_per_s == 0.0


def test_gaudi_scale_up_is_21_roce_ports_one_direction_and_no_unpublished_dtype():
    # 21 of the 24 on-die RoCE ports go all-to-all inside the 8-card box (3 per peer):
    # 21 x 100 Gb/s (Gaudi 2) and 21 x 200 Gb/s (Gaudi 3), / 8 bits, one direction.
    assert get_device("gaudi2").nvlink_bw_bytes_per_s == 21 * 100e9 / 8
    assert get_device("gaudi3").nvlink_bw_bytes_per_s == 21 * 200e9 / 8
    for name in ("gaudi2", "gaudi3"):
        assert "unidirectional" in get_device(name).sources["nvlink_bw_bytes_per_s"]
    # Gaudi 2 publishes only a BF16 matrix rate: every other dtype is refused by name.
    assert get_device("gaudi2").dtypes == ("bfloat16",)
    with pytest.raises(ConfigError, match="gaudi2.*bfloat16"):
        get_device("gaudi2").peak_flops("float32")


def test_a10_is_catalogued_and_a10g_is_not():
    # The A10G (AWS G5) has no NVIDIA datasheet: it is no alias of the A10.
    assert get_device("a10").nvlink_bw_bytes_per_s == 0.0
    assert "A10G" in get_device("a10").sources["memory_bytes"]
    with pytest.raises(ConfigError):
        get_device("a10g")
