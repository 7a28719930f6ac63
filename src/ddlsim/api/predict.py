"""The one prediction path: :func:`predict` (a :class:`~ddlsim.job.Job` and a calibration
in, a :class:`Prediction` out).

Every command, scenario, API call and reference row goes through here. This module turns
the job into the configuration of one simulator engine (sync DP, parameter servers, the
model-parallel pipeline, a collective), runs it with the calibrated cost model and
reports the same headline numbers whatever the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ddlsim.api.calibration import Calibration, calibrated_factory, load_calibration
from ddlsim.errors import ConfigError
from ddlsim.job import Job


@dataclass
class Prediction:
    """Headline numbers of one predicted job (SI units), and the engine's own result.

    ``model_flops`` / ``hardware_flops``: per iteration, whole job (hardware counts
    recomputation); ``peak_flops_per_gpu``: dense peak at the job's GEMM precision;
    ``memory_bytes``: the fullest GPU's need; ``scaling_efficiency``: vs one GPU (data
    parallelism only); ``busbw_Bps``: bus bandwidth (collectives only); ``forward_flops``:
    the forward pass's share of ``model_flops`` (LoRA fine-tuning only, where it is about
    half a step rather than a third; None otherwise).

    LoRA (``Workload(lora_rank=...)``): ``model_flops`` are the FLOPs the step executes
    without recomputation (base forward and data gradient, adapters' forward and
    backward; :mod:`ddlsim.api.finetune`), so MFU is not inflated by weight gradients the
    frozen base never computes.
    """

    job: Job
    calibration: Calibration
    iteration_s: float
    samples_per_iteration: float
    tokens_per_sample: int
    model_flops: float
    hardware_flops: float
    peak_flops_per_gpu: float
    memory_bytes: float | None = None
    memory_capacity_bytes: float | None = None
    scaling_efficiency: float | None = None
    busbw_Bps: float | None = None
    detail: object = None
    device: str = ""
    dtype: str = ""
    assumptions: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # e.g. a profile that is not used
    forward_flops: float | None = None

    @property
    def gpus(self) -> int:
        return self.job.cluster.gpus

    @property
    def samples_per_s(self) -> float:
        return self.samples_per_iteration / self.iteration_s

    @property
    def tokens_per_s(self) -> float:
        return self.samples_per_s * self.tokens_per_sample

    @property
    def model_tflops_per_gpu(self) -> float:
        return self.model_flops / self.iteration_s / self.gpus / 1e12

    @property
    def hardware_tflops_per_gpu(self) -> float:
        return self.hardware_flops / self.iteration_s / self.gpus / 1e12

    @property
    def mfu(self) -> float:
        """Model FLOP/s over the GPUs' dense peak at the job's precision (fraction)."""
        return self.model_tflops_per_gpu * 1e12 / self.peak_flops_per_gpu

    @property
    def hfu(self) -> float:
        """Hardware FLOP/s (recomputation included) over the dense peak (fraction)."""
        return self.hardware_tflops_per_gpu * 1e12 / self.peak_flops_per_gpu

    @property
    def fits(self) -> bool | None:
        if self.memory_bytes is None or self.memory_capacity_bytes is None:
            return None
        return self.memory_bytes <= self.memory_capacity_bytes

    def summary(self) -> dict:
        """One flat record (SI units) for tables and JSON."""
        return {"strategy": self.job.strategy.kind, "model": self.job.workload.model,
                "device": self.device, "dtype": self.dtype, "gpus": self.gpus,
                "iteration_s": self.iteration_s, "samples_per_s": self.samples_per_s,
                "tokens_per_s": self.tokens_per_s,
                "model_tflops_per_gpu": self.model_tflops_per_gpu,
                "hardware_tflops_per_gpu": self.hardware_tflops_per_gpu,
                "mfu": self.mfu, "hfu": self.hfu, "memory_bytes": self.memory_bytes,
                "fits": self.fits, "scaling_efficiency": self.scaling_efficiency,
                "busbw_Bps": self.busbw_Bps, "calibration": self.calibration.label}


# --------------------------------------------------------------------------- resolution
def job_device(job: Job) -> str:
    """Catalog key of the job's GPUs (the cluster's device, else the preset's)."""
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.topology import PRESETS, make_cluster

    if job.cluster.device is not None:
        return get_device(job.cluster.device).name
    if job.cluster.preset not in PRESETS:
        make_cluster(job.cluster.preset, 1)  # raises the did-you-mean ConfigError
    return get_device(PRESETS[job.cluster.preset]["device"][0]).name


def resolve_precision(job: Job) -> tuple[str, str | None, str]:
    """``(compute dtype, GEMM dtype or None, gradient-reduce dtype)`` of the job on its
    device. Unset compute: bf16 where the device has it, else fp16 tensor cores, else fp32.
    Unset gradients: fp32 for mixed precision (PyTorch AMP, Megatron), else compute."""
    from ddlsim.sim.hardware import get_device

    dev = get_device(job_device(job))
    compute = job.precision.compute
    if compute is None:
        compute = next((d for d in ("bfloat16", "float16") if d in dev.peak_flops_per_s),
                       "float32")
    if compute not in dev.peak_flops_per_s:
        raise ConfigError(f"precision.compute: {dev.name} has no {compute} rate "
                          f"(has {', '.join(dev.dtypes)})")
    gemm = None
    if job.precision.fp8:
        if "fp8" not in dev.peak_flops_per_s:
            raise ConfigError(f"precision.fp8: {dev.name} has no fp8 tensor cores")
        gemm = "fp8"
    grad = job.precision.grad or ("float32" if compute in ("float16", "bfloat16") else compute)
    return compute, gemm, grad


def resolve_dropout(job: Job) -> bool:
    """Whether the job trains with dropout (its masks count in activation memory): the
    workload's setting, else the model's published recipe. GPT-2/GPT-3 train with dropout
    0.1 (HF gpt2 config ``resid_pdrop``/``attn_pdrop``; Megatron-LM's GPT defaults
    ``--hidden-dropout 0.1 --attention-dropout 0.1``); Llama 2/3 and Nemotron train without
    it (their published configs: dropout 0.0); the zoo's CNNs and MLPs have none in
    ddlsim's layer graphs."""
    if job.workload.dropout is not None:
        return job.workload.dropout
    from ddlsim.sim.workloads import GPT_PRESETS

    return job.workload.model in GPT_PRESETS


def cluster_overrides(job: Job) -> tuple[tuple[str, object], ...]:
    """The job's explicit cluster fields as ClusterSpec overrides (SI units)."""
    extra = dict(job.cluster.overrides())
    if job.cluster.gpus_per_node is not None:
        extra["gpus_per_node"] = job.cluster.gpus_per_node
    return tuple(extra.items())


# --------------------------------------------------------------------------- engines
def _allreduce(job: Job, calib: Calibration, max_events: int | None, trace=None):
    from ddlsim.api.dp import DPOptions, predict_dp
    from ddlsim.api.finetune import job_workload, lora_spec, workload_options

    compute, gemm, grad = resolve_precision(job)
    micro, _ = job.resolve_batch()
    opts = DPOptions(
        model=job.workload.model, batch_per_gpu=micro, cluster=job.cluster.preset,
        gpus=job.cluster.gpus, dtype=gemm or compute, grad_dtype=grad,
        iterations=job.iterations, algo=job.strategy.algo if job.strategy.algo != "nvls"
        else "auto", bucket_MB=job.strategy.bucket_bytes / 1e6, overlap=job.strategy.overlap,
        noise=job.noise, noise_cv=job.noise_cv, slow_gpus=job.slow_gpus,
        slow_links=job.cluster.slow_links, cluster_overrides=cluster_overrides(job),
        loader_samples_per_s=job.loader_samples_per_s, profile=job.profile,
        calibrated=job.cluster.nccl_calibrated, seed=job.seed,
        model_overrides=workload_options(job.workload), zero=job.parallelism.zero,
        lora=lora_spec(job.workload), recompute=job.parallelism.recompute,
        **({"max_events": max_events} if max_events else {}),
        **({"trace_iterations": trace[0], "trace_ranks": trace[1]} if trace else {}))
    pred = predict_dp(opts, cost_model_factory=calibrated_factory(calib, job.framework),
                      overhead_s=calib.overhead(job.framework))
    wl = job_workload(job, micro)
    samples = micro * job.cluster.gpus
    flops = wl.train_flops * job.cluster.gpus
    return pred, dict(iteration_s=samples / pred.samples_per_s, samples_per_iteration=samples,
                      tokens_per_sample=wl.tokens_per_sample, model_flops=flops,
                      hardware_flops=flops + pred.recompute_flops * job.cluster.gpus,
                      scaling_efficiency=pred.scaling_efficiency,
                      memory=_dp_memory(job, wl, compute, grad))


def _dp_memory(job: Job, wl, compute: str, grad: str) -> tuple[float, float]:
    """(bytes needed, capacity) of one data-parallel GPU: weights, gradients, optimizer
    state and one micro-batch of activations of the whole model (sim.memory); an
    allreduce job's ZeRO stage shards them over its GPUs."""
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.memory import MemoryConfig, layer_memory, stage_memory

    cfg = MemoryConfig(dtype=compute, grad_dtype=grad, optimizer=job.optimizer,
                       recompute=job.parallelism.recompute, dropout=resolve_dropout(job),
                       workspace_bytes=job.workspace_bytes,
                       **({"zero": job.parallelism.zero, "zero_group": job.cluster.gpus}
                          if job.strategy.kind == "allreduce" else {}))
    mem = layer_memory(wl.layers, cfg, int(wl.batch * math.prod(wl.input_shape)))
    cap = get_device(job_device(job)).memory_bytes
    st = stage_memory(mem, 0, 0, len(wl.layers), 1, cap)
    return float(st.total_bytes), float(cap)


def pipeline_options(job: Job, max_events: int | None = None):
    """The model-parallel engine's options for a pipeline or 3D ``job``."""
    from ddlsim.api.finetune import lora_spec
    from ddlsim.api.pipeline import PipelineOptions

    compute, gemm, grad = resolve_precision(job)
    micro, chunks = job.resolve_batch()
    par = job.parallelism
    recompute = par.recompute
    if job.framework == "torchgpipe" and chunks > 1 and recompute == "none":
        recompute = "full"  # torchgpipe's default checkpoint='except_last' (priced below)
    return PipelineOptions(
        model=job.workload.model, micro_batch=micro, micro_batches=chunks,
        schedule=par.schedule, stages=par.pp, tp=par.tp, dp=job.dp, cp=par.cp,
        cluster=job.cluster.preset, devices=job.cluster.stage_devices,
        placement=par.placement, balance=par.balance, dtype=compute, gemm_dtype=gemm,
        grad_dtype=grad, optimizer=job.optimizer, recompute=recompute,
        sequence_parallel=par.sequence_parallel, dropout=resolve_dropout(job),
        workspace_GiB=job.workspace_bytes / 2**30, iterations=1, profile=job.profile,
        calibrated=job.cluster.nccl_calibrated, model_overrides=job.workload.architecture,
        cluster_overrides=cluster_overrides(job), balance_unit=par.balance_unit,
        vp=par.vp, attention=job.workload.attention, zero=par.zero,
        lora=lora_spec(job.workload), tp_comm_overlap=par.overlaps_tp_comm,
        overlap_grad_reduce=par.overlap_grad_reduce,
        **({"max_events": max_events} if max_events else {}))


def _pipeline(job: Job, calib: Calibration, max_events: int | None, trace=None):
    from ddlsim.api.pipeline import except_last_prediction, predict_model_parallel

    opts = pipeline_options(job, max_events)
    factory = calibrated_factory(calib, job.framework)
    if job.framework == "torchgpipe":
        pred = except_last_prediction(opts, factory)
    else:
        pred = predict_model_parallel(opts, factory)
    s = pred.summary()
    worst = max(pred.memory, key=lambda m: m.total_bytes / m.capacity_bytes)
    return pred, dict(iteration_s=s["iteration_s"], samples_per_iteration=opts.global_batch,
                      tokens_per_sample=pred.tokens_per_sample, model_flops=pred.model_flops,
                      hardware_flops=pred.hardware_flops,
                      memory=(float(worst.total_bytes), float(worst.capacity_bytes)))


def place(job: Job, calibration: str | Calibration | None = "stored", suggest: bool = True):
    """Placement and memory of a pipeline or 3D ``job``, no simulation: the split, each
    stage's time (calibrated) and memory, and (``suggest``) what would fit when a stage
    does not. Returns the engine's PipelinePrediction with an empty ``result``."""
    from ddlsim.api.pipeline import predict_model_parallel

    if job.strategy.kind not in ("pipeline", "3d"):
        raise ConfigError(f"strategy.kind: placement needs a 'pipeline' or '3d' job, got "
                          f"{job.strategy.kind!r}")
    calib = load_calibration(calibration)
    return predict_model_parallel(pipeline_options(job), calibrated_factory(calib, job.framework),
                                  simulate=False, suggest=suggest)


def check_memory(job: Job) -> tuple[float, float]:
    """``(bytes needed, capacity)`` of the fullest GPU of ``job``, without simulating:
    weights, gradients, optimizer state, activations in flight and workspace (the same
    memory model as :func:`predict`). Cheap enough to filter layouts before predicting."""
    if job.strategy.kind in ("pipeline", "3d"):
        pred = place(job, "default", suggest=False)
        worst = max(pred.memory, key=lambda m: m.total_bytes / m.capacity_bytes)
        return float(worst.total_bytes), float(worst.capacity_bytes)
    if job.strategy.kind == "collective":
        raise ConfigError("strategy.kind: a collective job holds no model in memory")
    from ddlsim.api.finetune import check_lora_strategy, job_workload

    check_lora_strategy(job)
    compute, _, grad = resolve_precision(job)
    micro, _ = job.resolve_batch()
    return _dp_memory(job, job_workload(job, micro), compute, grad)


def _ps(job: Job, calib: Calibration, max_events: int | None, trace=None):
    from ddlsim.api.async_ps import PSOptions, predict_ps
    from ddlsim.sim.workloads import get_workload

    compute, gemm, grad = resolve_precision(job)
    micro, _ = job.resolve_batch()
    st = job.strategy
    opts = PSOptions(
        model=job.workload.model, batch_per_worker=micro, cluster=job.cluster.preset,
        workers=job.cluster.gpus, dtype=gemm or compute, grad_dtype=grad, mode=st.ps_mode,
        updates=st.updates, staleness_bound=st.staleness_bound,
        backup_workers=st.backup_workers, shards=st.shards, placement=st.ps_placement,
        server_hosts=st.server_hosts, server_device=st.server_device,
        server_nic_Gbps=None if st.server_nic_bw_Bps is None else st.server_nic_bw_Bps * 8e-9,
        server_concurrency=st.server_concurrency, overlap=st.overlap, noise=job.noise,
        noise_cv=job.noise_cv, slow_workers=job.slow_gpus, profile=job.profile, seed=job.seed,
        cluster_overrides=cluster_overrides(job),
        **({"max_events": max_events} if max_events else {}))
    pred = predict_ps(opts, cost_model_factory=calibrated_factory(calib, job.framework))
    wl = get_workload(job.workload.model, micro, **dict(job.workload.architecture))
    samples = micro * job.cluster.gpus
    flops = wl.train_flops * job.cluster.gpus
    return pred, dict(iteration_s=samples / pred.result.samples_per_s,
                      samples_per_iteration=samples, tokens_per_sample=wl.tokens_per_sample,
                      model_flops=flops, hardware_flops=flops,
                      memory=_dp_memory(job, wl, compute, grad))


def _collective(job: Job, calib: Calibration, max_events: int | None, trace=None):
    from ddlsim.api.collectives import alltoall_nic_GBps, busbw_GBps
    from ddlsim.api.dp import cluster_for

    cluster = cluster_for(job.cluster.preset, job.cluster.gpus, calibrated=False,
                           overrides=cluster_overrides(job))
    st = job.strategy
    algo = None if st.algo == "auto" else st.algo
    mean = st.size_stat == "mean"
    if st.per_nic and st.op == "alltoall":  # each GPU's remote sends leave by its own NIC
        bw = alltoall_nic_GBps(cluster, list(st.sizes_bytes), mean=mean) * 1e9
    else:
        bw = busbw_GBps(cluster, st.op, sizes=list(st.sizes_bytes), mean=mean,
                        algo=algo) * 1e9
        if st.per_nic:
            bw /= cluster.nics_per_node
    return None, dict(iteration_s=float("nan"), samples_per_iteration=0.0, tokens_per_sample=1,
                      model_flops=0.0, hardware_flops=0.0, busbw_Bps=bw, memory=None)


_ENGINES = {"allreduce": _allreduce, "ps": _ps, "pipeline": _pipeline, "3d": _pipeline,
            "collective": _collective}


def predict(job: Job, calibration: str | Calibration | None = "stored",
            max_events: int | None = None, trace=None) -> Prediction:
    """Predict ``job`` with ``calibration`` (``"stored"``, ``"default"``, a calibration
    file or a :class:`Calibration`). The only place a job becomes a simulation.
    ``trace``: (iterations, ranks) to record for a Perfetto trace (allreduce only)."""
    from ddlsim.api.finetune import check_lora_strategy, job_workload
    from ddlsim.sim.hardware import get_device

    check_lora_strategy(job)
    calib = load_calibration(calibration)
    detail, out = _ENGINES[job.strategy.kind](job, calib, max_events, trace)
    memory = out.pop("memory", None)
    if job.workload.lora_rank is not None:  # LoRA: a forward pass is ~half the step
        micro, _ = job.resolve_batch()
        out["forward_flops"] = (job_workload(job, micro).fwd_flops / micro
                                * out["samples_per_iteration"])
    dev = job_device(job)
    if job.strategy.kind == "collective":
        dtype, peak = "", math.nan
    else:
        compute, gemm, _ = resolve_precision(job)
        dtype = gemm or compute
        peak = get_device(dev).peak_flops(dtype)
    need, cap = memory if memory else (None, None)
    from ddlsim.api.profile_check import profile_warnings
    from ddlsim.sim.workloads import EXPERIMENTAL

    warns = profile_warnings(job)
    if job.workload.model in EXPERIMENTAL:
        warns = (*warns, f"model {job.workload.model}: {EXPERIMENTAL[job.workload.model]}")
    return Prediction(job=job, calibration=calib, peak_flops_per_gpu=peak, memory_bytes=need,
                      memory_capacity_bytes=cap, detail=detail, device=dev, dtype=dtype,
                      assumptions=job.assumptions, warnings=warns, **out)
