"""Convergence replay: what ``ddlsim converge`` calls.

Takes an update log (from a sync or async simulation, or built by hand), trains the model
on the 8x8 digits (or user data) applying exactly those updates, and reports loss and
test accuracy against simulated time, time-to-accuracy over seeds, and learning-rate
sweeps. A log shorter than the training budget is tiled (its timing pattern repeated),
so a short simulation can drive a full training run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ddlsim.convergence.data import Dataset, load_digits
from ddlsim.convergence.replay import (
    ReplayConfig,
    ReplayResult,
    TimeToAccuracy,
    lr_sweep,
    replay,
    tile_update_log,
    time_to_accuracy,
)
from ddlsim.convergence.train import LRSchedule
from ddlsim.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class ReplayOptions:
    """Options of a convergence replay (``ddlsim converge``).

    ``epochs``: training budget in passes over the training set (the log is tiled or cut
    to fit); ``lr``: base learning rate; ``lr_policy``: ``constant``, ``linear-warmup``
    (needs ``reference_batch``), ``step``, ``cosine``; ``target_accuracy``: 0..1;
    ``seeds``: seeds for the time-to-accuracy spread (empty: skip it).
    """

    model: str = "lenet-digits"
    batch_per_worker: int = 32
    workers: int | None = None
    epochs: float = 10.0
    lr: float = 0.02
    lr_policy: str = "constant"
    reference_batch: int | None = None
    warmup_updates: int = 0
    step_every: int = 0
    step_gamma: float = 0.1
    staleness_aware: bool = False
    momentum: float = 0.9
    weight_decay: float = 0.0
    target_accuracy: float = 0.97
    seed: int = 0
    seeds: tuple[int, ...] = field(default=())
    eval_every: int | None = None
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.epochs > 0:
            raise ConfigError(f"epochs: must be > 0, got {self.epochs!r}")
        self.config()  # validates the rest

    def schedule(self) -> LRSchedule:
        """The learning-rate schedule these options describe."""
        return LRSchedule(self.lr, self.lr_policy, self.reference_batch, self.warmup_updates,
                          self.step_every, self.step_gamma, self.staleness_aware)

    def config(self) -> ReplayConfig:
        """The :class:`ReplayConfig` these options describe."""
        return ReplayConfig(model=self.model, batch_per_worker=self.batch_per_worker,
                            workers=self.workers, schedule=self.schedule(),
                            momentum=self.momentum, weight_decay=self.weight_decay,
                            seed=self.seed, eval_every=self.eval_every,
                            target_accuracy=self.target_accuracy, device=self.device,
                            progress=self.progress)


@dataclass
class ConvergencePrediction:
    """A replay and, when seeds were given, the time-to-accuracy spread."""

    options: ReplayOptions
    result: ReplayResult
    simulated_rows: int
    replayed_rows: int
    tta: TimeToAccuracy | None = None

    def summary(self) -> dict:
        """One flat record (SI units, accuracies 0..1). ``outcome`` is the replay's
        (``reached``, ``not reached``, ``collapsed to chance`` or ``diverged``); with seeds,
        ``tta_*`` adds the spread: ``tta_seeds``, ``tta_reached`` (seeds that reached the
        target), ``tta_median_s``/``tta_min_s``/``tta_max_s`` (over those), and per seed
        ``tta_outcomes`` and ``tta_times_s`` (comma-separated, seed order)."""
        out = dict(self.result.summary())
        out.update(simulated_log_rows=self.simulated_rows, replayed_log_rows=self.replayed_rows)
        if self.tta is not None:
            out.update({f"tta_{k}": v for k, v in self.tta.summary().items()})
        return out


def budget_log(update_log: Sequence[Sequence], opts: ReplayOptions,
               n_train: int) -> list[tuple]:
    """The log tiled (or cut) to ``opts.epochs`` passes over ``n_train`` samples, counting
    ``workers x batch`` samples per combined row and ``n_grads x batch`` per worker row."""
    rows = [tuple(r) for r in update_log]
    if not rows:
        raise ConfigError("update_log: must hold at least one row, got 0")
    workers = opts.workers or max(int(r[6]) for r in rows)
    per_row = [(workers if r[2] < 0 else int(r[6])) * opts.batch_per_worker for r in rows]
    mean_samples = sum(per_row) / len(per_row)
    updates = max(1, math.ceil(opts.epochs * n_train / mean_samples))
    return tile_update_log(rows, updates)


def _data(opts: ReplayOptions, data: Dataset | None) -> Dataset:
    return data if data is not None else load_digits()


def replay_prediction(update_log: Sequence[Sequence], opts: ReplayOptions | None = None,
                      data: Dataset | None = None) -> ConvergencePrediction:
    """Replay ``update_log`` for ``opts.epochs`` epochs (plus time-to-accuracy over
    ``opts.seeds`` when given)."""
    opts = opts or ReplayOptions()
    data = _data(opts, data)
    log = budget_log(update_log, opts, data.n_train)
    result = replay(log, opts.config(), data)
    tta = (time_to_accuracy(log, opts.config(), opts.target_accuracy, opts.seeds, data,
                            known=result) if opts.seeds else None)
    return ConvergencePrediction(opts, result, len(list(update_log)), len(log), tta)


def lr_sweep_prediction(update_log: Sequence[Sequence], opts: ReplayOptions,
                        lrs: Sequence[float], data: Dataset | None = None) -> list[ReplayResult]:
    """One replay per learning rate (same budget and seed); divergence is an outcome."""
    if not lrs:
        raise ConfigError("lrs: must list at least one learning rate, got none")
    data = _data(opts, data)
    log = budget_log(update_log, opts, data.n_train)
    return lr_sweep(log, opts.config(), lrs, data)


def converge(job, opts: ReplayOptions | None = None, data: Dataset | None = None,
             calibration="stored") -> tuple[object, ConvergencePrediction]:
    """Predict ``job`` (an allreduce or parameter-server :class:`~ddlsim.job.Job` whose
    model is the replay's) with :func:`ddlsim.api.predict`, then replay its update log on
    real data. Returns ``(prediction, convergence_prediction)``; the replay's per-worker
    batch is the job's micro-batch."""
    from dataclasses import replace

    from ddlsim.api.predict import predict

    opts = opts or ReplayOptions()
    if job.strategy.kind not in ("allreduce", "ps"):
        raise ConfigError(f"strategy.kind: the replay needs weight updates (allreduce or ps), "
                          f"got {job.strategy.kind!r}")
    if job.workload.model.replace("_", "-") != opts.model:
        raise ConfigError(f"model: the simulation's {job.workload.model!r} must equal the "
                          f"replay's {opts.model!r}")
    micro, _ = job.resolve_batch()
    if micro != opts.batch_per_worker:
        opts = replace(opts, batch_per_worker=micro)
    pred = predict(job, calibration)
    return pred, replay_prediction(pred.detail.result.update_log, opts, data)


CONVERGE_STRATEGIES = ("allreduce", "bsp", "asp", "ssp", "backup")


@dataclass(frozen=True)
class StrategyRunOptions:
    """How the update log of one strategy is simulated before its replay.

    ``workers``: GPUs / PS workers; ``cluster``: preset; ``sim_updates``: model-level
    updates (sync iterations or async applied gradients) to simulate; the log is then tiled
    to the replay budget; ``staleness_bound``/``backup_workers`` for SSP/backup; ``noise_cv``
    and ``straggler`` (worker, factor) make workers unequal; ``calibration``: as for
    :func:`ddlsim.api.predict`.
    """

    workers: int = 8
    cluster: str = "dgx-a100"
    sim_updates: int = 64
    staleness_bound: int = 3
    backup_workers: int = 1
    noise_cv: float = 0.0
    straggler: tuple[int, float] | None = None
    seed: int = 0
    calibration: str = "stored"


def strategy_job(strategy: str, model: str, batch_per_worker: int, so: StrategyRunOptions):
    """The :class:`~ddlsim.job.Job` that simulates ``strategy`` (allreduce or a PS mode)
    for ``model`` as ``so`` says."""
    from ddlsim.job import Batch, Cluster, Job, Strategy, Workload

    if strategy not in CONVERGE_STRATEGIES:
        raise unknown_name("strategy", strategy, CONVERGE_STRATEGIES, "strategy")
    ps = strategy != "allreduce"
    updates = so.sim_updates * (1 if strategy in ("asp", "ssp") else so.workers)
    return Job(workload=Workload(model), cluster=Cluster(so.cluster, so.workers),
               batch=Batch(micro=batch_per_worker),
               strategy=Strategy(kind="ps" if ps else "allreduce",
                                 ps_mode=strategy if ps else "asp", updates=updates,
                                 staleness_bound=so.staleness_bound,
                                 backup_workers=so.backup_workers),
               iterations=so.sim_updates, seed=so.seed,
               noise="lognormal" if so.noise_cv > 0 else "none", noise_cv=so.noise_cv,
               slow_gpus=(so.straggler,) if so.straggler else ())


def simulated_update_log(strategy: str, model: str, batch_per_worker: int,
                         so: StrategyRunOptions) -> tuple[list[tuple], dict]:
    """Simulate ``strategy`` for ``model`` and return ``(update_log, throughput summary)``."""
    from ddlsim.api.predict import predict

    pred = predict(strategy_job(strategy, model, batch_per_worker, so), so.calibration)
    return list(pred.detail.result.update_log), pred.detail.summary()


def converge_strategies(strategies: Sequence[str], opts: ReplayOptions,
                        so: StrategyRunOptions = StrategyRunOptions(),
                        data: Dataset | None = None) -> dict[str, ConvergencePrediction]:
    """Simulate each strategy, replay its update log on real data, and return the
    predictions by strategy name (same data, budget, learning rate and seeds for all)."""
    from dataclasses import replace

    data = _data(opts, data)
    out = {}
    for strategy in strategies:
        log, _ = simulated_update_log(strategy, opts.model, opts.batch_per_worker, so)
        out[strategy] = replay_prediction(log, replace(opts, workers=so.workers), data)
    return out
