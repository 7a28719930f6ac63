"""What a fault study is given and what it returns (see :mod:`ddlsim.sim.faults`): the
components and their MTBFs (:class:`FailureModel`), the checkpoint policy and the
:class:`FaultTimeline` of one run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ddlsim.errors import ConfigError

FAILURE_KINDS = ("gpu", "node", "link")


def positive(name: str, value: float, allow_zero: bool = False) -> float:
    """``value`` as a float if finite and > 0 (>= 0 with ``allow_zero``); ConfigError
    naming ``name``."""
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok \
            or not math.isfinite(value):
        rule = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}: must be a finite number {rule}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FailureModel:
    """Components of a job and their MTBFs (seconds; None: that kind never fails)."""

    gpus: int
    gpus_per_node: int = 8
    gpu_mtbf_s: float | None = None
    node_mtbf_s: float | None = None
    link_mtbf_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("gpus", "gpus_per_node"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {v!r}")
        for name in ("gpu_mtbf_s", "node_mtbf_s", "link_mtbf_s"):
            v = getattr(self, name)
            if v is not None:
                positive(name, v)

    @property
    def nodes(self) -> int:
        return -(-self.gpus // self.gpus_per_node)

    def _rate(self, mtbf_s: float | None) -> float:
        return 0.0 if mtbf_s is None else 1.0 / mtbf_s

    def rates_per_s(self) -> dict[str, float]:
        """Failure rate (1/s) of the whole job, per kind of component."""
        return {"gpu": self.gpus * self._rate(self.gpu_mtbf_s),
                "node": self.nodes * self._rate(self.node_mtbf_s),
                "link": self.nodes * self._rate(self.link_mtbf_s)}

    @property
    def job_rate_per_s(self) -> float:
        return float(sum(self.rates_per_s().values()))

    @property
    def job_mtbf_s(self) -> float:
        """Mean time between failures of the job (s); inf when nothing fails."""
        lam = self.job_rate_per_s
        return math.inf if lam == 0 else 1.0 / lam

    @property
    def worker_rate_per_s(self) -> float:
        """Rate (1/s) of failures that take one given worker out (its GPU, node, link)."""
        return (self._rate(self.gpu_mtbf_s) + self._rate(self.node_mtbf_s)
                + self._rate(self.link_mtbf_s))


@dataclass(frozen=True)
class CheckpointPolicy:
    """``interval_s``: seconds of work between checkpoints; ``write_s``: one checkpoint
    write (size / storage bandwidth); ``restart_s``: a sync job's restart after a
    failure; ``repair_s``: how long an async worker is out after a failure."""

    interval_s: float
    write_s: float
    restart_s: float = 0.0
    repair_s: float = 0.0

    def __post_init__(self) -> None:
        positive("interval_s", self.interval_s)
        positive("write_s", self.write_s, allow_zero=True)
        positive("restart_s", self.restart_s, allow_zero=True)
        positive("repair_s", self.repair_s, allow_zero=True)


@dataclass
class FaultTimeline:
    """Where the wall time of one run went (seconds). ``wall_s = work_s + checkpoint_s +
    lost_s`` where ``lost_s`` is time lost to failures (sync: work and checkpoint writes
    redone plus restarts; async: worker-time missing, as a fraction of the cluster)."""

    wall_s: float
    work_s: float
    checkpoint_s: float
    lost_work_s: float
    restart_s: float
    failures: float  # a count in a drawn timeline, an expectation in an average
    checkpoints: float
    failures_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def lost_s(self) -> float:
        return self.lost_work_s + self.restart_s

    @property
    def goodput_fraction(self) -> float:
        return self.work_s / self.wall_s if self.wall_s > 0 else 1.0
