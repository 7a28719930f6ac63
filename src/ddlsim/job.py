"""One description of a training run: :class:`Job`.

Every way into ddlsim builds this one frozen object (a CLI command, a scenario file, the
Python API, a row of a reference table) and :func:`ddlsim.api.predict` turns it into a
prediction. Units are SI (seconds, bytes, bytes/s); a builder that reads human units
(``--nic-Gbps``, ``bucket_MB``) converts once, when it builds the job.

A job names *what* is run, not how the simulator is driven: the cluster is a preset plus
explicit fields that override it, the workload a zoo name plus optional dimensions, the
precision ``None`` where the device's usual mixed precision applies. Resolution (devices,
topology, the cost model) happens in one place, :mod:`ddlsim.api.predict`.

This module imports nothing from the simulator, so every layer may build a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddlsim.errors import ConfigError

STRATEGIES = ("allreduce", "ps", "pipeline", "3d", "collective")
RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("naive", "gpipe", "1f1b")
PS_MODES = ("asp", "ssp", "bsp", "backup")
COLLECTIVE_OPS = ("allreduce", "all_gather", "reduce_scatter", "broadcast", "alltoall")
ARCH_KEYS = ("layers", "hidden", "heads", "kv_heads", "ffn", "seq", "vocab")
ATTENTION = ("fused", "unfused")
#: Base matrices a LoRA adapter can attach to (see :mod:`ddlsim.sim.workloads.lora`).
LORA_TARGETS = ("qkv", "q", "k", "v", "o", "gate", "up", "down")
#: The MLPerf Llama-2 70B LoRA recipe's targets and adapter dropout (the defaults).
LORA_DEFAULT_TARGETS = ("qkv", "o")
LORA_DEFAULT_DROPOUT = 0.1


def _positive_int(where: str, value: object, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}: must be an integer >= {minimum}, got {value!r}")


def _positive(where: str, value: object) -> None:
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                              or not value > 0):
        raise ConfigError(f"{where}: must be a number > 0, got {value!r}")


def check_lora(rank: object, targets: object, dropout: object, where: str = "lora") -> None:
    """ConfigError (one line, naming ``where_field``) unless ``rank`` is an integer >= 1,
    ``targets`` a non-empty tuple of distinct :data:`LORA_TARGETS` (``qkv`` excluding
    ``q``, ``k``, ``v``) and ``dropout`` a probability in [0, 1)."""
    from ddlsim.errors import unknown_name

    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ConfigError(f"{where}_rank: must be a positive integer, got {rank!r}")
    if not isinstance(targets, tuple) or not targets:
        raise ConfigError(f"{where}_targets: must name at least one of "
                          f"{', '.join(LORA_TARGETS)}, got {targets!r}")
    for t in targets:
        if t not in LORA_TARGETS:
            raise unknown_name(f"{where}_targets", t, LORA_TARGETS, "LoRA target")
    if len(set(targets)) != len(targets):
        raise ConfigError(f"{where}_targets: must not repeat a target, got {targets!r}")
    if "qkv" in targets and {"q", "k", "v"} & set(targets):
        raise ConfigError(f"{where}_targets: 'qkv' (one adapter on the fused projection) "
                          f"excludes 'q', 'k' and 'v', got {targets!r}")
    if (not isinstance(dropout, int | float) or isinstance(dropout, bool)
            or not 0 <= dropout < 1):
        raise ConfigError(f"{where}_dropout: must be a number in [0, 1), got {dropout!r}")


def _choice(where: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class Workload:
    """What is trained: a zoo ``model`` name and, optionally, explicit dimensions.

    ``architecture``: (key, value) pairs among :data:`ARCH_KEYS` that replace the zoo
    model's (a decoder given by its dimensions uses the zoo model of its family as the
    template: ``gpt-small`` for GPT, ``llama2-7b`` for Llama-style GQA/SwiGLU blocks).
    ``dropout``: count dropout masks in activation memory (None: the model's published
    recipe, see :func:`ddlsim.api.predict.resolve_dropout`). ``attention``: how decoder
    models (GPT, Llama, Nemotron) run the attention core: ``fused`` (FlashAttention-style,
    the default of Megatron-Core, NeMo and PyTorch SDPA: no ``s x s`` score tensor in
    memory) or ``unfused`` (scores, softmax and weighted sum as separate kernels).

    LoRA fine-tuning (:mod:`ddlsim.sim.workloads.lora`): ``lora_rank`` (None: full
    training) trains rank-``r`` adapters on ``lora_targets`` (None: ``qkv`` and ``o``)
    with adapter-input dropout ``lora_dropout`` (None: 0.1), the base frozen in the
    compute precision. The defaults are the MLPerf Llama-2 70B LoRA recipe: e.g.
    ``Workload("llama2-70b", (("seq", 8192),), lora_rank=16)``.
    """

    model: str = "resnet50"
    architecture: tuple[tuple[str, int], ...] = ()
    dropout: bool | None = None
    attention: str = "fused"
    lora_rank: int | None = None
    lora_targets: tuple[str, ...] | None = None
    lora_dropout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"workload.model: must be a zoo name, got {self.model!r}")
        _choice("workload.attention", self.attention, ATTENTION)
        for key, value in self.architecture:
            _choice("workload.architecture key", key, ARCH_KEYS)
            _positive_int(f"workload.architecture.{key}", value)
        if self.lora_rank is None:
            for name in ("lora_targets", "lora_dropout"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"workload.{name}: needs workload.lora_rank (LoRA "
                                      f"fine-tuning), got {name}={getattr(self, name)!r}")
        else:
            check_lora(*self.lora_settings(), "workload.lora")

    def lora_settings(self) -> tuple[int, tuple[str, ...], float] | None:
        """``(rank, targets, dropout)`` of LoRA fine-tuning with the MLPerf recipe's
        defaults filled in (targets ``qkv``, ``o``; dropout 0.1); None for full training."""
        if self.lora_rank is None:
            return None
        return (self.lora_rank,
                LORA_DEFAULT_TARGETS if self.lora_targets is None else self.lora_targets,
                LORA_DEFAULT_DROPOUT if self.lora_dropout is None else self.lora_dropout)


@dataclass(frozen=True)
class Cluster:
    """Where it runs: a topology ``preset`` with ``gpus`` GPUs, and explicit fields that
    override the preset (None keeps the preset's). Bandwidths in bytes/s per direction,
    latencies in seconds.

    ``gpus_per_node``: GPUs of one node (None: the preset's; fewer GPUs than one node use
    a partly filled node); ``intra_link``: ``nvswitch`` | ``nvlink`` | ``pcie`` | ``none``;
    ``nvls``: NVLink SHARP available to NCCL; ``slow_links``: (link id, factor) pairs;
    ``nccl_calibrated``: apply the NCCL bus-bandwidth efficiencies to the links;
    ``stage_devices``: one device per pipeline stage (heterogeneous pipelines; empty: every
    GPU is ``device``).
    """

    preset: str = "dgx-a100"
    gpus: int = 8
    device: str | None = None
    gpus_per_node: int | None = None
    intra_link: str | None = None
    intra_bw_Bps: float | None = None
    intra_latency_s: float | None = None
    nics_per_node: int | None = None
    nic_bw_Bps: float | None = None
    nic_latency_s: float | None = None
    fabric: str | None = None
    slow_links: tuple[tuple[str, float], ...] = ()
    nccl_calibrated: bool = True
    stage_devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _positive_int("cluster.gpus", self.gpus)
        if self.gpus_per_node is not None:
            _positive_int("cluster.gpus_per_node", self.gpus_per_node)
        if self.nics_per_node is not None:
            _positive_int("cluster.nics_per_node", self.nics_per_node)
        for name in ("intra_bw_Bps", "nic_bw_Bps"):
            _positive(f"cluster.{name}", getattr(self, name))
        for name in ("intra_latency_s", "nic_latency_s"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value >= 0):
                raise ConfigError(f"cluster.{name}: must be a number >= 0, got {value!r}")
        if self.intra_link is not None:
            _choice("cluster.intra_link", self.intra_link, ("nvswitch", "nvlink", "pcie", "none"))

    def overrides(self) -> dict[str, object]:
        """The explicit topology fields (the preset's values elsewhere)."""
        keys = ("device", "intra_link", "intra_bw_Bps", "intra_latency_s", "nics_per_node",
                "nic_bw_Bps", "nic_latency_s", "fabric")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True)
class Precision:
    """Number formats. ``compute``: activations and GEMM inputs (None: the device's usual
    mixed precision, bf16 where it has it, else fp16 with tensor cores, else fp32);
    ``grad``: the dtype gradients are reduced in (None: fp32 for mixed precision, as
    PyTorch AMP and Megatron do, else the compute dtype); ``fp8``: GEMMs in fp8 where the
    GPU has fp8 tensor cores (Transformer Engine), the rest in ``compute``."""

    compute: str | None = None
    grad: str | None = None
    fp8: bool = False


@dataclass(frozen=True)
class Parallelism:
    """Degrees and memory savers. ``dp`` None: what the GPU count leaves after tp x cp x pp.
    ``vp``: virtual pipeline stages (model chunks) per GPU, ``> 1``: interleaved 1F1B
    (needs the 1f1b schedule, pp >= 2 and micro-batches a multiple of pp); ``zero``: ZeRO stage /
    distributed optimizer (0..3); ``placement``: ``auto`` (memory-aware), ``blocks``
    (Megatron's even split) or ``manual`` (``balance`` layer counts per stage);
    ``balance_unit``: ``layers`` or ``torchgpipe`` (modules of torchgpipe's flattened
    model). ``tp_comm_overlap``: overlap the sequence-parallel all-gathers and
    reduce-scatters with the GEMMs (Megatron-Core / Transformer Engine userbuffers); None:
    on exactly when ``sequence_parallel`` and ``tp > 1``, as NeMo's training configs set it
    (NeMo-Framework-Launcher ``conf/training/gpt3/175b.yaml``: ``sequence_parallel: True``
    with ``ub_tp_comm_overlap: True``). ``overlap_grad_reduce``: a pipeline's data-parallel
    gradient reduction runs in buckets during each chunk's last backward (Megatron-Core
    ``overlap_grad_reduce`` with its default buckets of ``max(4e7, 1e6 dp)`` parameters;
    on by default as in NeMo's configs, ``overlap_grad_sync: True``); False: one
    reduction after the last backward. Data parallelism alone always overlaps (DDP)."""

    tp: int = 1
    pp: int = 1
    dp: int | None = None
    cp: int = 1
    vp: int = 1
    sequence_parallel: bool = False
    zero: int = 0
    recompute: str = "none"
    schedule: str = "1f1b"
    placement: str = "auto"
    balance: tuple[int, ...] = ()
    balance_unit: str = "layers"
    tp_comm_overlap: bool | None = None
    overlap_grad_reduce: bool = True

    def __post_init__(self) -> None:
        if self.tp_comm_overlap not in (None, True, False):
            raise ConfigError(f"parallelism.tp_comm_overlap: must be true, false or unset "
                              f"(auto), got {self.tp_comm_overlap!r}")
        if not isinstance(self.overlap_grad_reduce, bool):
            raise ConfigError(f"parallelism.overlap_grad_reduce: must be true or false, got "
                              f"{self.overlap_grad_reduce!r}")
        for name in ("tp", "pp", "cp", "vp"):
            _positive_int(f"parallelism.{name}", getattr(self, name))
        if self.dp is not None:
            _positive_int("parallelism.dp", self.dp)
        if self.zero not in (0, 1, 2, 3):
            raise ConfigError(f"parallelism.zero: must be 0, 1, 2 or 3, got {self.zero!r}")
        _choice("parallelism.recompute", self.recompute, RECOMPUTE)
        _choice("parallelism.schedule", self.schedule, SCHEDULES)
        _choice("parallelism.placement", self.placement, ("auto", "blocks", "manual"))
        _choice("parallelism.balance_unit", self.balance_unit, ("layers", "torchgpipe"))

    @property
    def model_parallel(self) -> int:
        return self.tp * self.cp * self.pp

    @property
    def overlaps_tp_comm(self) -> bool:
        """``tp_comm_overlap`` resolved: never without sequence parallelism and tp > 1."""
        sp = self.sequence_parallel and self.tp > 1
        return sp if self.tp_comm_overlap is None else sp and self.tp_comm_overlap


@dataclass(frozen=True)
class Batch:
    """Samples per iteration: ``global_batch`` over all replicas, ``micro`` per micro-batch
    (per GPU for data parallelism). Either may be None; :meth:`Job.resolve_batch` derives
    the other."""

    global_batch: int | None = None
    micro: int | None = None

    def __post_init__(self) -> None:
        for name in ("global_batch", "micro"):
            if getattr(self, name) is not None:
                _positive_int(f"batch.{name}", getattr(self, name))


@dataclass(frozen=True)
class Strategy:
    """How replicas synchronise, and the knobs of that strategy.

    ``kind``: :data:`STRATEGIES`. Allreduce: ``algo`` (auto | ring | tree | hierarchical),
    ``bucket_bytes``, ``overlap``. Parameter servers: ``ps_mode``, ``staleness_bound``,
    ``backup_workers``, ``shards``, ``ps_placement`` (colocated | hosts), ``server_hosts``,
    ``server_device``, ``server_nic_bw_Bps``, ``server_concurrency``, ``updates``.
    Collective: ``op``, ``sizes_bytes`` (message sizes per rank), ``size_stat`` (``peak``
    or ``mean`` bus bandwidth over the sizes), ``per_nic``.
    """

    kind: str = "allreduce"
    algo: str = "auto"
    bucket_bytes: float = 25e6
    overlap: bool = True
    ps_mode: str = "asp"
    staleness_bound: int = 3
    backup_workers: int = 1
    shards: int = 1
    ps_placement: str = "colocated"
    server_hosts: int | None = None
    server_device: str = "cpu-generic"
    server_nic_bw_Bps: float | None = None
    server_concurrency: int = 0
    updates: int = 200
    op: str = "allreduce"
    sizes_bytes: tuple[float, ...] = (4 * 2**30,)
    size_stat: str = "peak"
    per_nic: bool = False

    def __post_init__(self) -> None:
        _choice("strategy.kind", self.kind, STRATEGIES)
        _choice("strategy.algo", self.algo, ("auto", "ring", "tree", "hierarchical", "nvls"))
        _positive("strategy.bucket_bytes", self.bucket_bytes)
        _choice("strategy.ps_mode", self.ps_mode, PS_MODES)
        _choice("strategy.op", self.op, COLLECTIVE_OPS)
        _choice("strategy.size_stat", self.size_stat, ("peak", "mean"))
        if not self.sizes_bytes:
            raise ConfigError("strategy.sizes_bytes: needs at least one size, got none")


@dataclass(frozen=True)
class Job:
    """One training run to predict (all parts SI). ``framework``: ``pytorch``, ``mxnet``,
    ``tensorflow-xla``, ``tensorflow``, ``caffe2``, ``torchgpipe``, ``megatron`` or ``""``
    (selects the framework constants of the calibration); ``assumptions``: what the
    builder guessed, carried into every report."""

    workload: Workload = field(default_factory=Workload)
    cluster: Cluster = field(default_factory=Cluster)
    precision: Precision = field(default_factory=Precision)
    parallelism: Parallelism = field(default_factory=Parallelism)
    batch: Batch = field(default_factory=Batch)
    strategy: Strategy = field(default_factory=Strategy)
    framework: str = ""
    optimizer: str = "adam"
    iterations: int = 20
    seed: int = 0
    noise: str = "none"
    noise_cv: float = 0.0
    slow_gpus: tuple[tuple[int, float], ...] = ()
    loader_samples_per_s: float | None = None
    profile: str | None = None
    workspace_bytes: float = 2**30
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _positive_int("iterations", self.iterations)
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise ConfigError(f"seed: must be in [0, 2**32), got {self.seed!r}")
        _choice("optimizer", self.optimizer, ("sgd", "momentum", "adam"))
        par = self.parallelism
        if self.strategy.kind in ("allreduce", "ps", "collective") and par.model_parallel > 1:
            raise ConfigError(f"parallelism: strategy {self.strategy.kind!r} is pure data "
                              f"parallelism, got tp={par.tp}, cp={par.cp}, pp={par.pp} "
                              f"(use strategy '3d' or 'pipeline')")
        if self.cluster.stage_devices and len(self.cluster.stage_devices) != par.pp:
            raise ConfigError(f"cluster.stage_devices: needs one device per pipeline stage "
                              f"(pp = {par.pp}), got {len(self.cluster.stage_devices)}")
        if self.cluster.gpus % par.model_parallel:
            raise ConfigError(f"cluster.gpus: must be a multiple of tp x cp x pp = "
                              f"{par.model_parallel}, got {self.cluster.gpus}")
        if par.dp is not None and par.dp * par.model_parallel != self.cluster.gpus:
            raise ConfigError(f"parallelism.dp: tp x cp x pp x dp = "
                              f"{par.dp * par.model_parallel} must equal cluster.gpus = "
                              f"{self.cluster.gpus}, got dp={par.dp}")

    @property
    def dp(self) -> int:
        """Data-parallel replicas."""
        return self.cluster.gpus // self.parallelism.model_parallel

    def resolve_batch(self) -> tuple[int, int]:
        """``(micro, micro-batches per replica per iteration)``; ConfigError when the
        batch cannot be split so."""
        micro, glob = self.batch.micro, self.batch.global_batch
        if micro is None and glob is None:
            raise ConfigError("batch: needs global_batch or micro, got neither")
        if micro is None:
            if glob % self.dp:
                raise ConfigError(f"batch.global_batch: must be a multiple of dp = {self.dp}, "
                                  f"got {glob}")
            per_replica = glob // self.dp
            micro = 1 if self.parallelism.pp > 1 else per_replica
        if glob is None:
            return micro, 1
        if glob % (self.dp * micro):
            raise ConfigError(f"batch.global_batch: must be a multiple of dp x micro = "
                              f"{self.dp * micro}, got {glob}")
        return micro, glob // (self.dp * micro)

    def with_assumptions(self, *notes: str) -> Job:
        """This job with ``notes`` added to its assumptions."""
        from dataclasses import replace

        return replace(self, assumptions=tuple(dict.fromkeys(self.assumptions + notes)))
