"""The scenario schema (pydantic models, unknown keys forbidden).

Units live in the key names: ``bucket_MB`` (10^6 bytes), ``nic_bandwidth_Gbps``
(10^9 bit/s), ``intra_bandwidth_GBps`` (10^9 byte/s), ``loader_samples_per_s``. The
``si_*`` helpers convert to the package's SI units once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ddlsim import units

PositiveInt = Annotated[int, Field(gt=0, le=10_000_000)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Dtype = Literal["float32", "tf32", "float16", "bfloat16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class WorkloadSpec(_Strict):
    model: str = Field(description="built-in workload name (see `ddlsim models`)")
    batch_per_gpu: PositiveInt = 32
    dtype: Dtype = "float32"
    grad_dtype: Literal["float32", "float16", "bfloat16"] | None = None
    dataset_samples: PositiveInt | None = None


class ClusterSpecFile(_Strict):
    preset: str = "dgx-a100"
    gpus: PositiveInt = 8
    calibrated: bool = True
    nic_bandwidth_Gbps: PositiveFloat | None = None
    intra_bandwidth_GBps: PositiveFloat | None = None


class NoiseSpecFile(_Strict):
    distribution: Literal["none", "normal", "lognormal", "gamma"] = "none"
    cv: Annotated[float, Field(ge=0, lt=10, allow_inf_nan=False)] = 0.0


class FaultsSpec(_Strict):
    slow_gpus: dict[Annotated[int, Field(ge=0)], PositiveFloat] = Field(default_factory=dict)
    slow_links: dict[str, PositiveFloat] = Field(default_factory=dict)
    loader_samples_per_s: PositiveFloat | None = None


class AllreduceStrategy(_Strict):
    kind: Literal["allreduce"]
    name: str | None = None
    algo: Literal["auto", "ring", "tree", "hierarchical"] = "auto"
    bucket_MB: PositiveFloat = 25.0
    overlap: bool = True

    @property
    def label(self) -> str:
        return self.name or f"allreduce-{self.algo}"


Strategy = Annotated[AllreduceStrategy, Field(discriminator="kind")]


class OutputsSpec(_Strict):
    trace: bool = True


class Scenario(_Strict):
    name: str
    description: str = ""
    workload: WorkloadSpec
    cluster: ClusterSpecFile = Field(default_factory=ClusterSpecFile)
    strategies: Annotated[list[Strategy], Field(min_length=1, max_length=32)]
    iterations: Annotated[int, Field(gt=0, le=100_000)] = 20
    noise: NoiseSpecFile = Field(default_factory=NoiseSpecFile)
    faults: FaultsSpec = Field(default_factory=FaultsSpec)
    profile: str | None = None
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)

    @model_validator(mode="after")
    def _unique_labels(self) -> Scenario:
        labels = [s.label for s in self.strategies]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"strategy names must be unique; repeated: {', '.join(dup)}")
        return self

    def si_bucket_bytes(self, strategy: AllreduceStrategy) -> float:
        return strategy.bucket_MB * units.MB
