"""The scenario schema (pydantic models, unknown keys forbidden).

Units live in the key names: ``bucket_MB`` (10^6 bytes), ``nic_bandwidth_Gbps``
(10^9 bit/s), ``intra_bandwidth_GBps`` (10^9 byte/s), ``loader_samples_per_s``. The
``si_*`` helpers convert to the package's SI units once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(gt=0, le=10_000_000)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Dtype = Literal["float32", "tf32", "float16", "bfloat16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


LoraTarget = Literal["qkv", "q", "k", "v", "o", "gate", "up", "down"]


class WorkloadSpec(_Strict):
    """``dtype`` unset: the GPU's usual mixed precision (bf16 where it has it, else fp16,
    else fp32); ``grad_dtype`` unset: fp32 gradient reduction for mixed precision.
    ``lora_rank``: LoRA fine-tuning with adapters of that rank on ``lora_targets`` (unset:
    qkv and o) with adapter dropout ``lora_dropout`` (unset: 0.1), the base frozen (the
    MLPerf Llama-2 70B recipe: ``lora_rank: 16``); unset: full training."""

    model: str = Field(description="built-in workload name (see `ddlsim models`)")
    batch_per_gpu: PositiveInt = 32
    dtype: Dtype | None = None
    grad_dtype: Literal["float32", "float16", "bfloat16"] | None = None
    fp8: bool = False
    lora_rank: Annotated[int, Field(gt=0, le=65536)] | None = None
    lora_targets: Annotated[list[LoraTarget], Field(min_length=1)] | None = None
    lora_dropout: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _lora_needs_rank(self) -> WorkloadSpec:
        if self.lora_rank is None and (self.lora_targets is not None
                                       or self.lora_dropout is not None):
            raise ValueError("lora_targets and lora_dropout need lora_rank (LoRA fine-tuning)")
        return self


class ClusterSpecFile(_Strict):
    """A preset, and the fields of your own cluster that differ from it: ``device``
    (catalog name, see `ddlsim devices`), ``gpus_per_node``, ``nics_per_node``, NIC and
    intra-node bandwidth and latency (units in the key names)."""

    preset: str = "dgx-a100"
    gpus: PositiveInt = 8
    device: str | None = None
    gpus_per_node: Annotated[int, Field(gt=0, le=1024)] | None = None
    nics_per_node: Annotated[int, Field(gt=0, le=1024)] | None = None
    calibrated: bool = True
    nic_bandwidth_Gbps: PositiveFloat | None = None
    nic_latency_us: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    intra_bandwidth_GBps: PositiveFloat | None = None
    intra_latency_us: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class NoiseSpecFile(_Strict):
    distribution: Literal["none", "normal", "lognormal", "gamma"] = "none"
    cv: Annotated[float, Field(ge=0, lt=10, allow_inf_nan=False)] = 0.0


NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class FailuresSpec(_Strict):
    """Component failures and checkpointing over a long run (see
    :mod:`ddlsim.sim.faults`). MTBFs are per component, in hours; none given: every
    interruption charged to the GPUs at Meta's Llama 3 rate (``ddlsim.api.plan``).
    Unset keys take :class:`ddlsim.api.faults.FaultOptions`' defaults."""

    gpu_mtbf_hours: PositiveFloat | None = None
    node_mtbf_hours: PositiveFloat | None = None
    link_mtbf_hours: PositiveFloat | None = None
    checkpoint_interval_s: PositiveFloat | None = Field(
        None, description="work seconds between checkpoints (unset: Young's sqrt(2 C M))")
    checkpoint_GB: PositiveFloat | None = Field(
        None, description="checkpoint size, 10^9 bytes (unset: 12 bytes per parameter)")
    storage_GBps: PositiveFloat | None = None
    restart_s: NonNegativeFloat | None = None
    repair_s: NonNegativeFloat | None = None
    train_samples: Annotated[float, Field(gt=0, le=1e18, allow_inf_nan=False)] | None = None
    method: Literal["expected", "simulate"] | None = None
    trials: Annotated[int, Field(gt=0, le=10_000)] | None = None


class FaultsSpec(_Strict):
    slow_gpus: dict[Annotated[int, Field(ge=0)], PositiveFloat] = Field(default_factory=dict)
    slow_links: dict[str, PositiveFloat] = Field(default_factory=dict)
    loader_samples_per_s: PositiveFloat | None = None
    failures: FailuresSpec | None = None


class AllreduceStrategy(_Strict):
    kind: Literal["allreduce"]
    name: str | None = None
    algo: Literal["auto", "ring", "tree", "hierarchical"] = "auto"
    bucket_MB: PositiveFloat = 25.0
    overlap: bool = True

    @property
    def label(self) -> str:
        return self.name or f"allreduce-{self.algo}"


class PSStrategy(_Strict):
    """Parameter servers: ``mode`` asp | ssp | bsp | backup."""

    kind: Literal["ps"]
    name: str | None = None
    mode: Literal["asp", "ssp", "bsp", "backup"] = "asp"
    shards: Annotated[int, Field(gt=0, le=4096)] = 1
    placement: Literal["colocated", "hosts"] = "colocated"
    server_nic_Gbps: PositiveFloat | None = None
    staleness_bound: Annotated[int, Field(ge=0, le=10_000)] = 3
    backup_workers: Annotated[int, Field(ge=0, le=100_000)] = 1
    updates: Annotated[int, Field(gt=0, le=10_000_000)] | None = None

    @property
    def label(self) -> str:
        return self.name or f"ps-{self.mode}"


class PipelineStrategy(_Strict):
    """Model parallelism: layers placed on ``stages`` GPUs (x ``tp`` x ``dp``); ``dp``
    unset: what ``cluster.gpus`` leaves after ``tp x stages``."""

    kind: Literal["pipeline"]
    name: str | None = None
    schedule: Literal["naive", "gpipe", "1f1b"] = "1f1b"
    stages: Annotated[int, Field(gt=0, le=4096)] = 4
    micro_batches: Annotated[int, Field(gt=0, le=100_000)] = 8
    micro_batch: Annotated[int, Field(gt=0, le=1_000_000)] = 4
    tp: Annotated[int, Field(gt=0, le=1024)] = 1
    dp: Annotated[int, Field(gt=0, le=100_000)] | None = None
    placement: Literal["auto", "blocks", "manual"] = "auto"
    balance: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    recompute: Literal["none", "selective", "full"] = "none"
    sequence_parallel: bool = False
    tp_comm_overlap: bool | None = None  # None: on with sequence_parallel and tp > 1
    overlap_grad_reduce: bool = True  # DP reduction in buckets during the last backward

    @property
    def label(self) -> str:
        dp = "" if self.dp is None else f"-dp{self.dp}"
        return self.name or f"{self.schedule}-pp{self.stages}-tp{self.tp}{dp}"


Strategy = Annotated[AllreduceStrategy | PSStrategy | PipelineStrategy,
                     Field(discriminator="kind")]

REPLAY_MODELS = ("lenet-digits", "mlp")


class ConvergenceSpec(_Strict):
    """Real training on the 8x8 digits that replays each strategy's update log. ``proxy``:
    the model trained when the scenario's workload cannot be trained here (a ResNet-50
    scenario replays its strategies' update logs on ``lenet-digits`` at ``proxy_batch``
    samples per worker): the real-training check of the schedule, not of the model."""

    target_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.97
    epochs: Annotated[float, Field(gt=0, le=1000)] = 10.0
    lr: PositiveFloat = 0.02
    lr_policy: Literal["constant", "linear-warmup", "step", "cosine"] = "constant"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    staleness_aware: bool = False
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0, 1, 2])
    lrs: list[PositiveFloat] = Field(default_factory=list,
                                     description="learning rates of an optional sweep")
    proxy: Literal["lenet-digits", "mlp"] | None = None
    proxy_batch: Annotated[int, Field(gt=0, le=4096)] = 32


class OutputsSpec(_Strict):
    trace: bool = True


class Scenario(_Strict):
    # The name becomes the default report folder (out/<name>): a plain file name only.
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    description: str = ""
    workload: WorkloadSpec
    cluster: ClusterSpecFile = Field(default_factory=ClusterSpecFile)
    strategies: Annotated[list[Strategy], Field(min_length=1, max_length=32)]
    iterations: Annotated[int, Field(gt=0, le=100_000)] = 20
    noise: NoiseSpecFile = Field(default_factory=NoiseSpecFile)
    faults: FaultsSpec = Field(default_factory=FaultsSpec)
    profile: str | None = None
    calibration: str = Field("stored", description="stored | default | a calibration .json")
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    convergence: ConvergenceSpec | None = None
    benchmark: str | None = Field(None, description="MLPerf Training benchmark whose "
                                  "reference convergence points give each strategy's time to "
                                  "train ('auto': the workload's)")

    @model_validator(mode="after")
    def _unique_labels(self) -> Scenario:
        labels = [s.label for s in self.strategies]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"strategy names must be unique; repeated: {', '.join(dup)}")
        if (self.convergence is not None and self.convergence.proxy is None
                and self.workload.model not in REPLAY_MODELS):
            raise ValueError(f"convergence replay trains for real on the 8x8 digits: "
                             f"workload.model must be one of {', '.join(REPLAY_MODELS)}, "
                             f"or convergence.proxy must name one, got workload.model "
                             f"{self.workload.model!r}")
        return self
