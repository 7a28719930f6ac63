"""Options and results of a model-parallel prediction (:mod:`ddlsim.api.pipeline`):
:class:`PipelineOptions`, the 3D shorthand :func:`ThreeDOptions` and
:class:`PipelinePrediction`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ddlsim.errors import ConfigError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS

PLACEMENTS = ("auto", "blocks", "manual")


@dataclass(frozen=True)
class PipelineOptions:
    """Options of a model-parallel prediction (SI units except where the name says).

    ``model``: workload name; ``micro_batch``: samples per micro-batch; ``micro_batches``:
    per iteration and replica (naive: use 1 and the whole batch as ``micro_batch``);
    ``schedule``: naive | gpipe | 1f1b; ``stages`` (pp), ``tp``, ``dp``, ``cp``: parallel
    degrees (``tp > 1`` or ``cp > 1`` needs a decoder model: GPT, Llama or Nemotron; ``cp``:
    context parallelism, ring attention over ``cp`` GPUs that each hold ``seq/cp`` tokens,
    gradients allreduced over ``dp x cp``); ``cluster``: topology preset; ``devices``: one device
    name per stage for heterogeneous pipelines (empty: the preset's); ``placement``: auto
    (memory-aware partitioner) | blocks (Megatron's even split of transformer blocks) |
    manual (``balance`` = layer counts per stage); ``dtype`` / ``gemm_dtype`` /
    ``grad_dtype``: activations, GEMM inputs (e.g. fp8), gradients allreduced;
    ``optimizer``: sgd | momentum | adam; ``recompute``: none | selective | full;
    ``sequence_parallel``; ``dropout``: count dropout masks in memory; ``workspace_GiB``;
    ``p2p``: ``network`` (flows sharing links) or ``links`` (each stage pair a FIFO channel
    at its route's bottleneck bandwidth; faster for very long pipelines); ``auto`` uses
    links above 20,000 sends; ``vp``: model chunks per GPU (``> 1``: interleaved 1F1B,
    Narayanan et al. SC'21 Sec. 2.2.2; needs the 1f1b schedule, ``stages >= 2`` and
    ``micro_batches`` a multiple of ``stages``; ``blocks`` placement splits the blocks into
    ``stages x vp`` chunks, ``manual`` takes ``stages x vp`` layer counts in model order);
    ``attention``: ``fused`` (FlashAttention, the default) or ``unfused`` for decoder
    models (others have no such option and ignore it); ``zero``: ZeRO stage 0-3 over the
    ``dp x cp`` gradient group (memory sharded; reduce-scatter + all-gather instead of the
    allreduce, ZeRO-3 a second weight all-gather); ``lora``: a
    :class:`~ddlsim.sim.workloads.LoraSpec` for LoRA fine-tuning (None: full training).
    """

    model: str = "gpt-small"
    micro_batch: int = 4
    micro_batches: int = 8
    schedule: str = "1f1b"
    stages: int = 4
    tp: int = 1
    dp: int = 1
    cp: int = 1
    cluster: str = "dgx-a100"
    devices: tuple[str, ...] = ()
    placement: str = "auto"
    balance: tuple[int, ...] = ()
    dtype: str = "float32"
    gemm_dtype: str | None = None
    grad_dtype: str | None = None
    optimizer: str = "adam"
    recompute: str = "none"
    sequence_parallel: bool = False
    dropout: bool = False
    workspace_GiB: float = 1.0
    iterations: int = 1
    p2p: str = "auto"
    profile: str | None = None
    calibrated: bool = True
    model_overrides: tuple[tuple[str, int], ...] = ()
    max_events: int = DEFAULT_MAX_EVENTS
    cluster_overrides: tuple[tuple[str, float], ...] = ()  # ClusterSpec fields, SI units
    balance_unit: str = "layers"  # or "torchgpipe": modules of torchgpipe's flattened model
    vp: int = 1
    attention: str = "fused"
    zero: int = 0
    lora: object = None  # LoraSpec (ddlsim.sim.workloads.lora)
    tp_comm_overlap: bool = False  # SP collectives overlapped with GEMMs (tensor_costs)
    overlap_grad_reduce: bool = True  # DP reduction in buckets during the last backward

    def zero3_gather_s(self, cluster, weight_bytes: float) -> float:
        """Seconds to all-gather ``weight_bytes`` of one chunk over the dp x cp group (ring;
        each GPU's share of the node's NICs when the group spans nodes, NVLink otherwise).
        ZeRO-3 gathers a chunk's weights again for every micro-batch's forward and backward,
        prefetched while the previous operation computes (Zhao et al. 2023, "PyTorch
        FSDP", VLDB, Sec. 3.3.2), so each operation lasts at least this long. 0 below stage
        3, with one micro-batch or one data-parallel rank."""
        from ddlsim.sim.nccl import all_gather_time

        d = self.dp * self.cp
        if self.zero != 3 or d == 1 or self.micro_batches == 1 or weight_bytes <= 0:
            return 0.0
        if self.tp * self.cp * self.dp > cluster.gpus_per_node:
            share = min(1.0, cluster.nics_per_node / cluster.gpus_per_node)
            return all_gather_time(d, weight_bytes, cluster.nic_bw_Bps * share,
                                   cluster.nic_latency_s)
        return all_gather_time(d, weight_bytes, cluster.intra_bw_Bps, cluster.intra_latency_s)

    @property
    def grad_bucket_bytes(self) -> float:
        """Bytes of one data-parallel gradient bucket when the reduction overlaps the
        backward (0: no overlap): Megatron-Core's default bucket of ``max(4e7, 1e6 x dp)``
        parameters (``DistributedDataParallelConfig.bucket_size``) in the gradient dtype."""
        from ddlsim.units import dtype_bytes

        if not self.overlap_grad_reduce:
            return 0.0
        params = max(40_000_000, 1_000_000 * self.dp * self.cp)
        return float(params * dtype_bytes(self.grad_dtype or self.dtype))

    def __post_init__(self) -> None:
        if self.zero not in (0, 1, 2, 3):
            raise ConfigError(f"zero: must be 0, 1, 2 or 3, got {self.zero!r}")
        for name in ("micro_batch", "micro_batches", "stages", "tp", "dp", "cp", "iterations",
                     "vp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement: must be one of {', '.join(PLACEMENTS)}, "
                              f"got {self.placement!r}")
        if self.placement == "manual" and len(self.balance) != self.stages * self.vp:
            what = (f"{self.stages} layer counts" if self.vp == 1 else
                    f"{self.stages * self.vp} layer counts (pp x vp chunks, in model order)")
            raise ConfigError(f"balance: manual placement needs {what}, "
                              f"got {list(self.balance)}")
        if self.attention not in ("fused", "unfused"):
            raise ConfigError(f"attention: must be fused or unfused, got {self.attention!r}")
        if self.vp > 1:
            from ddlsim.sim.pipeline import check_interleaving

            if self.schedule != "1f1b":
                raise ConfigError(f"vp: virtual pipeline stages (vp={self.vp}) need the 1f1b "
                                  f"schedule (interleaved 1F1B), got schedule "
                                  f"{self.schedule!r}")
            check_interleaving(self.stages, self.micro_batches, self.vp)
        if self.devices and self.cp > 1:
            raise ConfigError(f"devices: per-stage devices are not supported with context "
                              f"parallelism, got cp={self.cp}")
        if self.devices and len(self.devices) != self.stages:
            raise ConfigError(f"devices: needs one device per stage ({self.stages}), "
                              f"got {len(self.devices)}")
        if self.p2p not in ("auto", "network", "links"):
            raise ConfigError(f"p2p: must be auto, network or links, got {self.p2p!r}")
        if not self.workspace_GiB >= 0:
            raise ConfigError(f"workspace_GiB: must be >= 0, got {self.workspace_GiB!r}")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.cp * self.stages * self.dp

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.micro_batches * self.dp


def ThreeDOptions(model: str = "gpt3-175b", tp: int = 8, pp: int = 16, dp: int = 8,  # noqa: N802
                  micro_batch: int = 1, global_batch: int = 512, cp: int = 1,
                  **kw) -> PipelineOptions:
    """Options for TP x CP x PP x DP of a decoder: ``global_batch`` sequences per iteration,
    split into ``global_batch / (dp * micro_batch)`` micro-batches per replica (the ``cp``
    GPUs of a replica share each micro-batch's sequences, ``seq/cp`` tokens each). Defaults follow
    Megatron-LM practice: 1F1B, even block split, mixed precision (bf16), Adam, fp32
    gradient allreduce, full recomputation off."""
    if global_batch % (dp * micro_batch):
        raise ConfigError(f"global_batch: must be a multiple of dp x micro_batch = "
                          f"{dp * micro_batch}, got {global_batch}")
    kw.setdefault("placement", "blocks")
    kw.setdefault("dtype", "bfloat16")
    kw.setdefault("grad_dtype", "float32")
    return PipelineOptions(model=model, micro_batch=micro_batch,
                           micro_batches=global_batch // (dp * micro_batch), stages=pp, tp=tp,
                           dp=dp, cp=cp, **kw)


@dataclass
class PipelinePrediction:
    """A model-parallel prediction: placement, memory per stage, the simulated pipeline."""

    options: PipelineOptions
    cluster: object
    layer_names: tuple[str, ...]
    bounds: tuple[int, ...]
    stage_devices: tuple[str, ...]
    stage_costs: list  # StageCost per stage
    memory: list  # StageMemory per stage
    result: object  # PipelineResult
    model_flops: float  # per iteration, whole job (no recompute)
    hardware_flops: float  # per iteration, whole job, counting recomputation
    tokens_per_sample: int
    suggestions: list[str] = field(default_factory=list)
    cost_paths: dict = field(default_factory=dict)
    placement_note: str = ""
    chunk_costs: list = field(default_factory=list)  # StageCost per virtual stage (vp > 1)
    stage_attention_s: tuple[float, ...] = ()  # attention cores, fwd + bwd per micro-batch

    @property
    def fits(self) -> bool:
        return all(m.fits for m in self.memory)

    @property
    def iteration_s(self) -> float:
        return float(self.result.iteration_times_s[-1])

    def summary(self) -> dict:
        """One flat record of the headline numbers (SI units)."""
        o, t = self.options, self.iteration_s
        samples = o.global_batch / t
        gpus = o.num_gpus
        worst = max(self.memory, key=lambda m: m.total_bytes / m.capacity_bytes)
        return {
            "model": o.model, "cluster": o.cluster, "gpus": gpus, "tp": o.tp, "cp": o.cp,
            "pp": o.stages, "dp": o.dp, "schedule": o.schedule, "micro_batch": o.micro_batch,
            "micro_batches": o.micro_batches, "global_batch": o.global_batch,
            "vp": o.vp, "attention": o.attention, "zero": o.zero,
            "recompute": o.recompute, "iteration_s": t, "samples_per_s": samples,
            "tokens_per_s": samples * self.tokens_per_sample,
            "model_tflops_per_gpu": self.model_flops / t / gpus / 1e12,
            "hardware_tflops_per_gpu": self.hardware_flops / t / gpus / 1e12,
            "bubble_fraction": self.result.bubble_fraction,
            "p2p_sends": self.result.sends_per_iteration,
            "max_memory_bytes": max(m.total_bytes for m in self.memory),
            "fits": self.fits, "tightest_stage": worst.stage,
        }

    def chunk_ranges(self, stage: int) -> list[tuple[int, int]]:
        """Layer ranges ``[a, b)`` of GPU ``stage``: one, or one per chunk interleaved
        (``bounds`` holds the ``pp x vp`` virtual stages in model order)."""
        p, v = len(self.memory), self.options.vp
        return [(self.bounds[c * p + stage], self.bounds[c * p + stage + 1]) for c in range(v)]

    def stages_frame_rows(self) -> list[dict]:
        """Per-stage (per-GPU) records: layers, time, memory breakdown, in-flight
        micro-batches (whole-stage equivalents), model chunks and their layer ranges,
        attention seconds (``busy_frac`` only when the pipeline was simulated)."""
        rows = []
        simulated = bool(self.result.iteration_end)
        busy = self.result.busy_s() if simulated else [0.0] * len(self.memory)
        attn = self.stage_attention_s or (float("nan"),) * len(self.memory)
        for k, (cost, mem) in enumerate(zip(self.stage_costs, self.memory, strict=True)):
            ranges = self.chunk_ranges(k)
            rows.append({
                "stage": k, "device": self.stage_devices[k],
                "first_layer": self.layer_names[ranges[0][0]],
                "last_layer": self.layer_names[ranges[-1][1] - 1],
                "layers": sum(b - a for a, b in ranges), "chunks": len(ranges),
                "chunk_layers": ",".join(f"{a}-{b - 1}" for a, b in ranges),
                "fwd_s": cost.fwd_s, "bwd_s": cost.bwd_s, "update_s": cost.update_s,
                "attention_s": attn[k],
                "busy_frac": busy[k] / self.result.makespan_s if simulated else float("nan"),
                "in_flight": mem.micro_batches_in_flight,
                **{f"{k2}_bytes": v for k2, v in mem.breakdown().items()},
                "total_bytes": mem.total_bytes, "capacity_bytes": mem.capacity_bytes,
                "over_bytes": mem.over_bytes, "fits": mem.fits})
        return rows
