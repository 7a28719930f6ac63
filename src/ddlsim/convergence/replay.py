"""Replay an update log with real training: every update applies the gradient the
simulated system would have applied.

The log follows :data:`ddlsim.sim.updates.UPDATE_LOG_COLUMNS` (``update, time_s, worker,
version_read, version_written, staleness, n_grads``). Row ``k`` is replayed as:

1. take the weights of version ``version_read`` from a ring of past versions (sized to
   the log's largest staleness + 2; version 0 is the initial weights);
2. draw samples from one seeded stream of training indices, in update order:
   ``workers x batch_per_worker`` for a combined update (``worker == -1``; the first
   ``n_grads`` shards are used, the rest - backup workers whose gradients arrived late -
   are dropped), ``n_grads x batch_per_worker`` for a single worker's update;
3. compute each shard's gradient, add them with :func:`ddlsim.kernels.ops.grad_sum` (the
   reduction of an allreduce) and divide by ``n_grads``;
4. apply SGD with momentum to the *current* weights with the schedule's rate for
   ``global batch = n_grads x batch_per_worker`` and the row's staleness, and store the
   result as version ``version_written``.

So a sync log (staleness 0, ``n_grads = W``) is mini-batch SGD on a global batch of
``W x b``; an async, SSP or backup-worker log is SGD with exactly the recorded
staleness; gradients the simulator dropped are not in the log and are never applied.

Divergence (a non-finite loss, or a loss above ``divergence_factor`` x the first update's
loss) ends the replay with ``outcome == 'diverged'``: it is a result, not an error.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ddlsim.convergence.data import Dataset, load_digits
from ddlsim.convergence.models import get_model
from ddlsim.convergence.train import LRSchedule, SampleStream, evaluate, sgd_step
from ddlsim.errors import ConfigError
from ddlsim.kernels import ops
from ddlsim.kernels.backend import get_backend
from ddlsim.sim.updates import UPDATE_LOG_COLUMNS, update_row

OUTCOMES = ("completed", "reached-target", "diverged")


@dataclass(frozen=True)
class ReplayConfig:
    """How to train while replaying a log.

    ``model``: ``'lenet-digits'`` or ``'mlp'``; ``batch_per_worker``: samples per worker
    gradient; ``workers``: shards drawn per combined (``worker == -1``) update (None: the
    log's largest ``n_grads``); ``schedule``: learning rate; ``momentum``,
    ``weight_decay``: SGD (dimensionless); ``seed``: initial weights and sample order;
    ``eval_every``: updates between test evaluations (None: about 4 per epoch);
    ``target_accuracy``: test accuracy (0..1) whose first reach is reported;
    ``stop_at_target``: end the replay there; ``divergence_factor``: loss growth that
    counts as divergence; ``device``: ``'cpu'``, ``'gpu'`` or ``'auto'``;
    ``keep_checkpoints``: weight snapshots kept for the noise-scale estimate.
    """

    model: str = "lenet-digits"
    batch_per_worker: int = 32
    workers: int | None = None
    schedule: LRSchedule = field(default_factory=LRSchedule)
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    seed: int = 0
    eval_every: int | None = None
    target_accuracy: float | None = 0.97
    stop_at_target: bool = False
    divergence_factor: float = 1e3
    device: str = "cpu"
    dtype: str = "float32"
    keep_checkpoints: int = 8
    progress: bool = False  # a progress bar over the replayed updates

    def __post_init__(self) -> None:
        get_model(self.model)  # validates the name
        if self.batch_per_worker < 1:
            raise ConfigError(f"batch_per_worker: must be >= 1, got {self.batch_per_worker}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers: must be >= 1 or None, got {self.workers}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum: must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must be >= 0, got {self.weight_decay!r}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"eval_every: must be >= 1 or None, got {self.eval_every}")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ConfigError(f"target_accuracy: must be in (0, 1], "
                              f"got {self.target_accuracy!r}")
        if not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor: must be > 1, got {self.divergence_factor!r}")


@dataclass
class ReplayResult:
    """What a replay produced. Per-update arrays (one entry per applied update):
    ``update_time_s`` (simulated s), ``loss`` (mean batch cross-entropy at the weights
    read), ``lr``, ``staleness``. Per-evaluation arrays: ``eval_update`` (updates applied
    before the evaluation), ``eval_time_s``, ``test_loss``, ``test_acc`` (0..1),
    ``eval_epochs`` (training samples drawn / training-set size).
    ``time_to_target_s`` / ``updates_to_target``: first evaluation at or above the target
    (None when not reached). ``wall_s``: real seconds the replay took."""

    config: ReplayConfig
    dataset: str
    outcome: str
    update_time_s: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    staleness: np.ndarray
    eval_update: np.ndarray
    eval_time_s: np.ndarray
    eval_epochs: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    time_to_target_s: float | None
    updates_to_target: int | None
    diverged_at_update: int | None
    wall_s: float
    final_weights: np.ndarray
    checkpoints: list[tuple[int, np.ndarray]]
    backend: str

    @property
    def updates_applied(self) -> int:
        """Updates applied before the replay ended."""
        return int(self.loss.shape[0])

    @property
    def final_accuracy(self) -> float:
        """Test accuracy at the last evaluation (nan if none)."""
        return float(self.test_acc[-1]) if self.test_acc.size else math.nan

    @property
    def updates_per_s(self) -> float:
        """Applied updates per real (wall-clock) second of the replay."""
        return self.updates_applied / self.wall_s if self.wall_s > 0 else math.inf

    def summary(self) -> dict:
        """One flat record (SI units, accuracy 0..1)."""
        return {
            "model": self.config.model, "dataset": self.dataset, "outcome": self.outcome,
            "base_lr": self.config.schedule.base_lr, "seed": self.config.seed,
            "updates": self.updates_applied, "final_test_acc": self.final_accuracy,
            "final_test_loss": float(self.test_loss[-1]) if self.test_loss.size else math.nan,
            "target_accuracy": self.config.target_accuracy,
            "time_to_target_s": self.time_to_target_s,
            "updates_to_target": self.updates_to_target,
            "diverged_at_update": self.diverged_at_update,
            "max_staleness": int(self.staleness.max()) if self.staleness.size else 0,
            "wall_s": self.wall_s, "updates_per_s": self.updates_per_s,
        }


# --------------------------------------------------------------------------- logs

def _rows(update_log: Sequence[Sequence]) -> np.ndarray:
    """The log as a float64 ``[n, 7]`` array, validated."""
    n_cols = len(UPDATE_LOG_COLUMNS)
    rows = [tuple(r) for r in update_log]
    if not rows:
        raise ConfigError("update_log: must hold at least one row, got 0")
    bad = next((i for i, r in enumerate(rows) if len(r) != n_cols), None)
    if bad is not None:
        raise ConfigError(f"update_log[{bad}]: must have {n_cols} fields "
                          f"{UPDATE_LOG_COLUMNS}, got {len(rows[bad])}")
    arr = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ConfigError("update_log: every field must be finite")
    checks = (
        (np.diff(arr[:, 1]) < 0, "time_s must not decrease"),
        (arr[:, 6] < 1, "n_grads must be >= 1"),
        (arr[:, 3] < 0, "version_read must be >= 0"),
        (arr[:, 5] != arr[:, 4] - 1 - arr[:, 3], "staleness must equal "
                                                  "version_written - 1 - version_read"),
        (arr[:, 5] < 0, "staleness must be >= 0"),
    )
    for mask, rule in checks:
        if np.any(mask):
            i = int(np.argmax(mask)) + (1 if rule.startswith("time_s") else 0)
            raise ConfigError(f"update_log[{i}]: {rule}, got row {rows[i]}")
    return arr


def sync_log(updates: int, workers: int, iteration_s: float = 1.0,
             n_grads: int | None = None) -> list[tuple]:
    """A synchronous log: ``updates`` rows, one per ``iteration_s`` (simulated s),
    ``n_grads`` (default ``workers``) gradients combined, staleness 0."""
    n = workers if n_grads is None else n_grads
    return [update_row(k, (k + 1) * iteration_s, -1, k, k + 1, n) for k in range(updates)]


def constant_staleness_log(updates: int, staleness: int, workers: int = 1,
                           update_interval_s: float = 1.0) -> list[tuple]:
    """An asynchronous log where update ``k`` reads version ``max(0, k - staleness)``
    (round-robin workers, one update per ``update_interval_s`` simulated s): the
    fixed-delay model of the staleness literature."""
    if staleness < 0:
        raise ConfigError(f"staleness: must be >= 0, got {staleness}")
    return [update_row(k, (k + 1) * update_interval_s, k % workers, max(0, k - staleness),
                       k + 1, 1) for k in range(updates)]


def tile_update_log(update_log: Sequence[Sequence], updates: int) -> list[tuple]:
    """Repeat a (steady-state) log until it holds ``updates`` rows: each repetition is
    shifted by the log's last time and last written version. Lets a short simulation
    drive a long training run; the timing pattern is assumed to repeat."""
    arr = _rows(update_log)
    period_t = float(arr[-1, 1])
    period_v = int(arr[-1, 4])
    out = []
    k = 0
    while len(out) < updates:
        rep, i = divmod(k, arr.shape[0])
        r = arr[i]
        out.append(update_row(len(out), float(r[1]) + rep * period_t, int(r[2]),
                              int(r[3]) + rep * period_v, int(r[4]) + rep * period_v,
                              int(r[6])))
        k += 1
    return out


# --------------------------------------------------------------------------- replay

class _Versions:
    """Ring of past weight versions (version -> copy), at most ``capacity`` kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.store: OrderedDict[int, Any] = OrderedDict()

    def put(self, version: int, w: Any) -> None:
        self.store[version] = w.copy()
        self.store.move_to_end(version)
        while len(self.store) > self.capacity:
            self.store.popitem(last=False)

    def get(self, version: int, row: int) -> Any:
        if version not in self.store:
            held = list(self.store)
            raise ConfigError(f"update_log[{row}]: version_read {version} is not available "
                              f"(held versions {held[0]}..{held[-1]}); versions must be "
                              f"written before they are read")
        return self.store[version]


def _default_eval_every(n_train: int, global_batch: int) -> int:
    return max(1, n_train // (4 * global_batch))


def replay(update_log: Sequence[Sequence], config: ReplayConfig | None = None,
           data: Dataset | None = None) -> ReplayResult:
    """Train ``config.model`` on ``data`` (default: the digits) applying the updates of
    ``update_log`` in order; see the module docstring for the exact semantics."""
    cfg = config or ReplayConfig()
    arr = _rows(update_log)
    data = data or load_digits()
    model = get_model(cfg.model)
    if cfg.model == "mlp" and len(data.input_shape) > 1:
        data = data.flat()
    backend = get_backend(cfg.device)
    xp = backend.xp
    dtype = backend.dtype(cfg.dtype)
    x_train = xp.asarray(data.x_train.astype(dtype))
    y_train = xp.asarray(data.y_train)
    x_test = xp.asarray(data.x_test.astype(dtype))
    y_test = xp.asarray(data.y_test)

    max_grads = int(arr[:, 6].max())
    workers = cfg.workers or max_grads
    if workers < max_grads:
        raise ConfigError(f"workers: must be >= the log's largest n_grads {max_grads}, "
                          f"got {workers}")
    b = cfg.batch_per_worker
    n_updates = arr.shape[0]
    eval_every = cfg.eval_every or _default_eval_every(data.n_train, max_grads * b)

    w = model.layout.init(cfg.seed, xp, cfg.dtype)
    v = xp.zeros_like(w)
    acc = xp.zeros_like(w)
    shard_g = xp.zeros_like(w)
    versions = _Versions(int(arr[:, 5].max()) + 2)
    versions.put(0, w)
    stream = SampleStream(data.n_train, cfg.seed)

    losses = np.empty(n_updates)
    lrs = np.empty(n_updates)
    ev: list[tuple[int, float, float, float, float]] = []
    checkpoints: list[tuple[int, np.ndarray]] = []

    def do_eval(k: int, t: float) -> float:
        tl, ta = evaluate(model, w, x_test, y_test)
        ev.append((k, t, stream.epochs, tl, ta))
        checkpoints.append((k, backend.asnumpy(w).copy()))
        return ta

    start = time.perf_counter()
    do_eval(0, 0.0)
    outcome, diverged_at, first_loss = "completed", None, None
    ttt_s, ttt_u = None, None
    done = 0
    from tqdm.auto import tqdm

    for k in tqdm(range(n_updates), desc="replaying updates", unit="update",
                  disable=not cfg.progress, leave=False):
        _, t, worker, v_read, v_written, stale, n_grads = arr[k]
        n_grads = int(n_grads)
        w_read = versions.get(int(v_read), k)
        drawn = workers if worker < 0 else n_grads
        idx = stream.take(drawn * b)
        acc.fill(0)
        loss_sum = 0.0
        for s in range(n_grads):
            sl = idx[s * b:(s + 1) * b]
            ib = xp.asarray(sl)
            loss, _ = model.loss_and_grad(w_read, x_train[ib], y_train[ib], out=shard_g)
            ops.grad_sum(acc, shard_g)
            loss_sum += float(loss)
        if n_grads > 1:
            acc *= 1.0 / n_grads
        loss_k = loss_sum / n_grads
        losses[k] = loss_k
        first_loss = loss_k if first_loss is None else first_loss
        lr = cfg.schedule.lr_at(k, n_grads * b, int(stale), n_updates)
        lrs[k] = lr
        done = k + 1
        if not math.isfinite(loss_k) or loss_k > cfg.divergence_factor * first_loss:
            outcome, diverged_at = "diverged", k
            break
        sgd_step(model.layout, w, acc, v, lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
        versions.put(int(v_written), w)
        if done % eval_every == 0 or done == n_updates:
            ta = do_eval(done, float(t))
            if not math.isfinite(ev[-1][3]):
                outcome, diverged_at = "diverged", k
                break
            if (ttt_s is None and cfg.target_accuracy is not None
                    and ta >= cfg.target_accuracy):
                ttt_s, ttt_u = float(t), done
                if cfg.stop_at_target:
                    outcome = "reached-target"
                    break
    wall = time.perf_counter() - start
    if outcome == "completed" and ttt_s is not None:
        outcome = "reached-target"
    evs = np.asarray(ev, dtype=np.float64).reshape(-1, 5)
    keep = np.unique(np.linspace(0, len(checkpoints) - 1,
                                 min(cfg.keep_checkpoints, len(checkpoints))).round().astype(int))
    return ReplayResult(
        config=cfg, dataset=data.name, outcome=outcome,
        update_time_s=arr[:done, 1].copy(), loss=losses[:done], lr=lrs[:done],
        staleness=arr[:done, 5].astype(int), eval_update=evs[:, 0].astype(int),
        eval_time_s=evs[:, 1], eval_epochs=evs[:, 2], test_loss=evs[:, 3],
        test_acc=evs[:, 4], time_to_target_s=ttt_s, updates_to_target=ttt_u,
        diverged_at_update=diverged_at, wall_s=wall, final_weights=backend.asnumpy(w).copy(),
        checkpoints=[checkpoints[i] for i in keep], backend=backend.name)


# --------------------------------------------------------------------------- sweeps

def lr_sweep(update_log: Sequence[Sequence], config: ReplayConfig, lrs: Sequence[float],
             data: Dataset | None = None) -> list[ReplayResult]:
    """One replay per base learning rate in ``lrs`` (other settings from ``config``);
    diverged runs are results with ``outcome == 'diverged'``."""
    data = data or load_digits()
    return [replay(update_log, replace(config, schedule=replace(config.schedule, base_lr=lr)),
                   data) for lr in lrs]


@dataclass(frozen=True)
class TimeToAccuracy:
    """Time-to-accuracy over seeds. ``times_s`` / ``updates``: per seed, nan / -1 where
    the target was not reached; statistics are over the seeds that reached it."""

    target: float
    seeds: tuple[int, ...]
    times_s: tuple[float, ...]
    updates: tuple[int, ...]
    outcomes: tuple[str, ...]

    @property
    def reached(self) -> int:
        """Seeds that reached the target."""
        return sum(1 for t in self.times_s if math.isfinite(t))

    def _ok(self) -> np.ndarray:
        t = np.asarray(self.times_s)
        return t[np.isfinite(t)]

    @property
    def median_s(self) -> float:
        """Median time over the seeds that reached the target (nan if none did)."""
        ok = self._ok()
        return float(np.median(ok)) if ok.size else math.nan

    @property
    def min_s(self) -> float:
        """Fastest seed (nan if none reached the target)."""
        ok = self._ok()
        return float(ok.min()) if ok.size else math.nan

    @property
    def max_s(self) -> float:
        """Slowest seed that reached the target (nan if none did)."""
        ok = self._ok()
        return float(ok.max()) if ok.size else math.nan

    @property
    def std_s(self) -> float:
        """Sample standard deviation over the seeds that reached it (nan below 2)."""
        ok = self._ok()
        return float(ok.std(ddof=1)) if ok.size > 1 else math.nan

    def summary(self) -> dict:
        """One flat record."""
        return {"target": self.target, "seeds": len(self.seeds), "reached": self.reached,
                "median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s,
                "std_s": self.std_s,
                "median_updates": float(np.median([u for u in self.updates if u >= 0]))
                if self.reached else math.nan}


def time_to_accuracy(update_log: Sequence[Sequence], config: ReplayConfig, target: float,
                     seeds: Sequence[int] = (0, 1, 2),
                     data: Dataset | None = None) -> TimeToAccuracy:
    """First simulated time the test accuracy reaches ``target`` (0..1), for each seed
    (initial weights and sample order); each replay stops at the target."""
    data = data or load_digits()
    times, updates, outcomes = [], [], []
    for seed in seeds:
        res = replay(update_log, replace(config, seed=seed, target_accuracy=target,
                                         stop_at_target=True), data)
        times.append(math.nan if res.time_to_target_s is None else res.time_to_target_s)
        updates.append(-1 if res.updates_to_target is None else res.updates_to_target)
        outcomes.append(res.outcome)
    return TimeToAccuracy(target, tuple(seeds), tuple(times), tuple(updates), tuple(outcomes))
