"""Goodput under failures: what a strategy's steady-state throughput becomes over a long
training run in which GPUs, nodes and links fail (the model: :mod:`ddlsim.sim.faults`).

* :func:`predict_goodput` takes a prediction (:func:`ddlsim.api.predict`'s, or an
  engine's), a ``ddlsim run`` strategy result, or their ``summary()`` dict,
  and returns a :class:`GoodputResult`: useful samples/s, time lost to failures and to
  checkpoints, expected time-to-train for ``train_samples``.
* :func:`checkpoint_interval_sweep` evaluates goodput over a grid of checkpoint intervals
  and compares the best with Young's ``sqrt(2 C M)`` (reused from :mod:`ddlsim.api.plan`)
  and Daly's higher-order estimate.

Synchronous strategies (allreduce, pipeline, PS-BSP/backup) restart from the last
checkpoint on any failure; asynchronous PS (ASP/SSP) keeps going with fewer workers.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

from ddlsim.api.plan import (
    DATASET_SAMPLES,
    DEFAULT_RESTART_S,
    HOUR_S,
    LLAMA3_MTBF_GPU_HOURS,
    goodput_factor,
    young_daly_interval_s,
)
from ddlsim.errors import ConfigError

#: Checkpoint bytes per parameter: fp32 weights + Adam's two fp32 moments, the K = 12
#: bytes of optimizer state per parameter of mixed-precision Adam (Rajbhandari et al.,
#: "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC'20, Sec. 3.1).
CHECKPOINT_BYTES_PER_PARAM = 12.0

#: Storage write bandwidth (GB/s) seen by one job's checkpoint: an ASSUMPTION (a share of a
#: parallel file system; no published source), to be overridden per cluster.
DEFAULT_STORAGE_GBPS = 2.0

#: Epochs of the default training run: ResNet-50 on ImageNet for 90 epochs (Goyal et al.,
#: "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv 1706.02677, Sec. 5).
DEFAULT_EPOCHS = 90

ASYNC_MODES = ("ps-asp", "ps-ssp")
METHODS = ("simulate", "expected")


@dataclass(frozen=True)
class FaultOptions:
    """Failures and checkpointing of a long run (units in the names).

    ``*_mtbf_hours``: mean time between failures of ONE component of that kind (None:
    never fails); the default charges every interruption to the GPUs, with Meta's Llama 3
    rate (:data:`ddlsim.api.plan.LLAMA3_MTBF_GPU_HOURS`). ``checkpoint_interval_s``: work
    seconds between checkpoints (None: Young's ``sqrt(2 C M)``); ``checkpoint_GB``:
    checkpoint size in 10^9 bytes (None: 12 bytes per model parameter);
    ``storage_GBps``: write bandwidth; ``restart_s``: a sync job's restart;
    ``repair_s``: how long an async worker is out (None: ``restart_s``);
    ``train_samples``: samples to train (None: 90 epochs of the model's dataset);
    ``gpus_per_node``: None: from the prediction's cluster (8 when unknown);
    ``method``: ``expected`` (the closed form, exact for the model; the default because a
    job much shorter than its MTBF sees a failure in few drawn timelines) or ``simulate``
    (the mean of ``trials`` seeded event-driven timelines).
    """

    gpu_mtbf_hours: float | None = LLAMA3_MTBF_GPU_HOURS
    node_mtbf_hours: float | None = None
    link_mtbf_hours: float | None = None
    checkpoint_interval_s: float | None = None
    checkpoint_GB: float | None = None
    storage_GBps: float = DEFAULT_STORAGE_GBPS
    restart_s: float = DEFAULT_RESTART_S
    repair_s: float | None = None
    train_samples: float | None = None
    gpus_per_node: int | None = None
    method: str = "expected"
    trials: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        def positive(name, zero_ok=False):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                and (v >= 0 if zero_ok else v > 0)
            if not ok:
                raise ConfigError(f"{name}: must be a finite number {'>=' if zero_ok else '>'}"
                                  f" 0, got {v!r}")

        for name in ("gpu_mtbf_hours", "node_mtbf_hours", "link_mtbf_hours",
                     "checkpoint_interval_s", "checkpoint_GB", "train_samples"):
            if getattr(self, name) is not None:
                positive(name)
        positive("storage_GBps")
        positive("restart_s", zero_ok=True)
        if self.repair_s is not None:
            positive("repair_s", zero_ok=True)
        for name in ("gpus_per_node", "trials"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method: must be one of {', '.join(METHODS)}, "
                              f"got {self.method!r}")


@dataclass
class GoodputResult:
    """Goodput of one strategy under failures (SI units). ``wall_s`` = ``work_s`` +
    ``checkpoint_s`` + ``lost_to_failures_s`` for ``train_samples`` samples."""

    strategy: str
    kind: str  # "sync" | "async"
    gpus: int
    samples_per_s: float  # failure-free steady state
    train_samples: float
    job_mtbf_s: float
    checkpoint_write_s: float
    checkpoint_interval_s: float
    young_daly_interval_s: float
    work_s: float
    wall_s: float
    checkpoint_s: float
    lost_to_failures_s: float
    restart_s: float
    failures: float  # expected number of failures in the run
    checkpoints: float
    method: str
    trials: int
    first_order_goodput: float | None  # plan.goodput_factor at its own interval (sync)
    failures_by_kind: dict = field(default_factory=dict)

    @property
    def goodput_samples_per_s(self) -> float:
        return self.train_samples / self.wall_s

    @property
    def goodput_fraction(self) -> float:
        return self.work_s / self.wall_s

    @property
    def time_to_train_s(self) -> float:
        return self.wall_s

    def summary(self) -> dict:
        """One flat record (SI units)."""
        row = asdict(self)
        row.pop("failures_by_kind")
        row.update({f"failures_{k}": v for k, v in self.failures_by_kind.items()})
        row.update(goodput_samples_per_s=self.goodput_samples_per_s,
                   goodput_fraction=self.goodput_fraction,
                   time_to_train_s=self.time_to_train_s)
        return row


# --------------------------------------------------------------------------- inputs
def _source_summary(source) -> tuple[dict, object, str | None]:
    """``(summary dict, prediction or None, strategy label or None)`` of a prediction, a
    strategy result (``.prediction``, ``.name``), a :class:`ddlsim.api.Prediction` or a
    summary dict."""
    if isinstance(source, dict):
        return dict(source), None, None
    pred = getattr(source, "prediction", None) or source
    if hasattr(pred, "job") and hasattr(pred, "detail"):  # ddlsim.api.predict's Prediction
        pred = pred.detail
    if not hasattr(pred, "summary"):
        raise ConfigError(f"source: need a prediction, a strategy result or a summary dict, "
                          f"got {type(source).__name__}")
    return dict(pred.summary()), pred, getattr(source, "name", None)


def _kind_of(row: dict, pred) -> str:
    mode = getattr(getattr(pred, "options", None), "mode", None)
    if mode is not None:
        return "async" if f"ps-{mode}" in ASYNC_MODES else "sync"
    label = str(row.get("mode") or row.get("strategy") or "")
    label = label if label.startswith("ps-") else f"ps-{label}" if label in ("asp", "ssp") \
        else label
    return "async" if label in ASYNC_MODES else "sync"


def _gpus_per_node(row: dict, pred, opts: FaultOptions, gpus: int) -> int:
    if opts.gpus_per_node is not None:
        return opts.gpus_per_node
    gpn = getattr(getattr(pred, "cluster", None), "gpus_per_node", None)
    if gpn:
        return int(gpn)
    nodes = row.get("nodes")
    if isinstance(nodes, (int, float)) and nodes >= 1:
        return max(1, math.ceil(gpus / nodes))
    return min(8, gpus)


def _checkpoint_bytes(row: dict, opts: FaultOptions) -> float:
    if opts.checkpoint_GB is not None:
        return opts.checkpoint_GB * 1e9
    from ddlsim.sim.workloads import get_workload

    model = row.get("model")
    if not model:
        raise ConfigError("checkpoint_GB: the source names no model to size the checkpoint "
                          "from; pass checkpoint_GB")
    return float(get_workload(str(model), 1).param_count) * CHECKPOINT_BYTES_PER_PARAM


def _train_samples(row: dict, opts: FaultOptions) -> float:
    if opts.train_samples is not None:
        return float(opts.train_samples)
    model = str(row.get("model"))
    if model not in DATASET_SAMPLES:
        raise ConfigError(f"train_samples: no default dataset size for model {model!r} "
                          f"(known: {', '.join(DATASET_SAMPLES)}); pass train_samples")
    return float(DEFAULT_EPOCHS * DATASET_SAMPLES[model])


@dataclass(frozen=True)
class _Job:
    strategy: str
    kind: str
    gpus: int
    samples_per_s: float
    train_samples: float
    failures: object  # FailureModel
    write_s: float


def _job(source, opts: FaultOptions) -> _Job:
    from ddlsim.sim.faults import FailureModel

    row, pred, label = _source_summary(source)
    sps = row.get("samples_per_s")
    if not isinstance(sps, (int, float)) or not (sps > 0 and math.isfinite(sps)):
        raise ConfigError(f"samples_per_s: the source's throughput must be a finite number "
                          f"> 0, got {sps!r}")
    gpus = row.get("gpus") or row.get("workers")
    if isinstance(gpus, float) and gpus.is_integer():
        gpus = int(gpus)
    if not isinstance(gpus, numbers.Integral) or isinstance(gpus, bool) or gpus < 1:
        raise ConfigError(f"gpus: the source must give an integer GPU count >= 1, "
                          f"got {gpus!r}")
    hours = lambda h: None if h is None else h * HOUR_S  # noqa: E731
    gpus = int(gpus)
    fm = FailureModel(gpus=gpus, gpus_per_node=_gpus_per_node(row, pred, opts, gpus),
                      gpu_mtbf_s=hours(opts.gpu_mtbf_hours),
                      node_mtbf_s=hours(opts.node_mtbf_hours),
                      link_mtbf_s=hours(opts.link_mtbf_hours))
    write_s = _checkpoint_bytes(row, opts) / (opts.storage_GBps * 1e9)
    name = str(label or row.get("strategy") or row.get("algo") or "strategy")
    return _Job(name, _kind_of(row, pred), gpus, float(sps), _train_samples(row, opts), fm,
                write_s)


def _evaluate(job: _Job, opts: FaultOptions, interval_s: float | None) -> GoodputResult:
    from ddlsim.sim import faults

    m = job.failures.job_mtbf_s
    yd = young_daly_interval_s(job.write_s, m) if math.isfinite(m) and job.write_s > 0 \
        else math.inf
    work_s = job.train_samples / job.samples_per_s
    tau = interval_s or opts.checkpoint_interval_s or yd
    if not math.isfinite(tau):
        tau = max(work_s, 1.0)  # nothing fails or checkpoints are free: one interval
    repair = opts.restart_s if opts.repair_s is None else opts.repair_s
    policy = faults.CheckpointPolicy(interval_s=tau, write_s=job.write_s,
                                     restart_s=opts.restart_s, repair_s=repair)
    if opts.method == "expected":
        fn = faults.expected_sync_run if job.kind == "sync" else faults.expected_async_run
        tl = fn(work_s, job.failures, policy)
        trials = 0
    else:
        tl = faults.mean_timeline(faults.simulate_runs(job.kind, work_s, job.failures, policy,
                                                       seed=opts.seed, trials=opts.trials))
        trials = opts.trials
    first = None
    if job.kind == "sync" and opts.gpu_mtbf_hours is not None and job.write_s > 0 \
            and opts.node_mtbf_hours is None and opts.link_mtbf_hours is None:
        first = goodput_factor(job.gpus, opts.gpu_mtbf_hours, job.write_s,
                               opts.restart_s).factor
    return GoodputResult(
        strategy=job.strategy, kind=job.kind, gpus=job.gpus, samples_per_s=job.samples_per_s,
        train_samples=job.train_samples, job_mtbf_s=m, checkpoint_write_s=job.write_s,
        checkpoint_interval_s=tau, young_daly_interval_s=yd, work_s=tl.work_s,
        wall_s=tl.wall_s, checkpoint_s=tl.checkpoint_s, lost_to_failures_s=tl.lost_s,
        restart_s=tl.restart_s, failures=tl.failures, checkpoints=tl.checkpoints,
        method=opts.method, trials=trials, first_order_goodput=first,
        failures_by_kind=dict(tl.failures_by_kind))


def predict_goodput(source, opts: FaultOptions = FaultOptions()) -> GoodputResult:
    """Goodput of a strategy under failures.

    Args:
        source: a ``DPPrediction`` / ``PSPrediction`` / ``PipelinePrediction``, a
            ``ddlsim run`` ``StrategyResult``, or a ``summary()`` dict with
            ``samples_per_s`` and ``gpus`` (or ``workers``), and ``model`` when the
            checkpoint size or training-set size is not given.
        opts: the failure and checkpoint options.
    """
    return _evaluate(_job(source, opts), opts, None)


# --------------------------------------------------------------------------- sweep
@dataclass
class IntervalSweep:
    """Goodput over checkpoint intervals. ``resolution``: ratio between neighbouring
    intervals of the (geometric) grid; ``best_interval_s``: the grid point of highest
    goodput; ``young_daly_interval_s``: ``sqrt(2 C M)``; ``daly_interval_s``: Daly's
    higher-order estimate; ``model_optimum_s``: the exact optimum of the model."""

    results: list[GoodputResult]
    best_interval_s: float
    young_daly_interval_s: float
    daly_interval_s: float
    model_optimum_s: float
    resolution: float

    @property
    def intervals_s(self) -> list[float]:
        return [r.checkpoint_interval_s for r in self.results]

    def frame(self):
        import pandas as pd

        return pd.DataFrame([r.summary() for r in self.results])

    def within_resolution(self, reference_s: float) -> bool:
        """Whether ``reference_s`` lies within one grid step of the best interval."""
        return 1.0 / self.resolution <= self.best_interval_s / reference_s <= self.resolution


def checkpoint_interval_sweep(source, opts: FaultOptions = FaultOptions(),
                              intervals_s=None, points: int = 25,
                              span: float = 4.0) -> IntervalSweep:
    """Goodput at each checkpoint interval (synchronous strategies).

    Args:
        source, opts: as :func:`predict_goodput` (``opts.checkpoint_interval_s`` ignored).
        intervals_s: the grid (s); None: ``points`` intervals spaced geometrically from
            Young's optimum / ``span`` to Young's optimum x ``span``.
    """
    from ddlsim.sim.faults import daly_interval_s, model_optimum_interval_s

    job = _job(source, opts)
    if job.kind != "sync":
        raise ConfigError("checkpoint_interval_sweep: an asynchronous PS job loses no work "
                          "to worker failures, so its goodput only falls with more "
                          "checkpoints; sweep a synchronous strategy")
    m = job.failures.job_mtbf_s
    if not (math.isfinite(m) and job.write_s > 0):
        raise ConfigError("checkpoint_interval_sweep: needs failures (an MTBF) and a "
                          "checkpoint that costs time (checkpoint_GB > 0)")
    yd = young_daly_interval_s(job.write_s, m)
    if intervals_s is None:
        if not (isinstance(points, int) and points >= 3 and span > 1):
            raise ConfigError(f"points/span: need points >= 3 and span > 1, "
                              f"got {points!r}/{span!r}")
        ratio = span ** (2.0 / (points - 1))
        grid = [yd / span * ratio ** i for i in range(points)]
    else:
        grid = sorted(float(x) for x in intervals_s)
        if len(grid) < 2 or grid[0] <= 0 or not all(math.isfinite(x) for x in grid):
            raise ConfigError(f"intervals_s: need >= 2 finite intervals > 0, got {grid!r}")
        ratio = max(b / a for a, b in zip(grid, grid[1:], strict=False))
    results = [_evaluate(job, opts, tau) for tau in grid]
    best = max(results, key=lambda r: r.goodput_samples_per_s)
    return IntervalSweep(results=results, best_interval_s=best.checkpoint_interval_s,
                         young_daly_interval_s=yd, daly_interval_s=daly_interval_s(job.write_s, m),
                         model_optimum_s=model_optimum_interval_s(job.write_s, m),
                         resolution=ratio)


# --------------------------------------------------------------------------- scenarios
GOODPUT_COLUMNS = ("goodput_samples_per_s", "goodput_fraction", "time_to_train_s",
                   "lost_to_failures_s", "checkpoint_s", "checkpoint_interval_s",
                   "young_daly_interval_s", "failures")


def scenario_fault_options(scenario, seed: int | None = None) -> FaultOptions | None:
    """FaultOptions of a scenario's ``faults.failures`` section (None when absent).

    With no MTBF in the section, the per-GPU Llama 3 default applies; otherwise only the
    MTBFs given. Raises ConfigError when the training-set size cannot be defaulted."""
    spec = getattr(scenario.faults, "failures", None)
    if spec is None:
        return None
    given = {k: v for k, v in spec.model_dump().items() if v is not None}
    if not any(k.endswith("_mtbf_hours") for k in given):
        given["gpu_mtbf_hours"] = LLAMA3_MTBF_GPU_HOURS
    else:
        given.setdefault("gpu_mtbf_hours", None)
    opts = FaultOptions(**given, seed=scenario.seed if seed is None else seed)
    _train_samples({"model": scenario.workload.model}, opts)  # fail before simulating
    return opts


def goodput_columns(result: GoodputResult) -> dict:
    """The columns ``ddlsim run`` adds to a strategy's summary row."""
    s = result.summary()
    return {k: s[k] for k in GOODPUT_COLUMNS}
