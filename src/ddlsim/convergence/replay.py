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
loss) ends the replay with ``outcome == 'diverged'``: it is a result, not an error. A
replay that trains its budget ends ``collapsed to chance`` (final test accuracy within
0.05 of ``1/classes``), ``reached`` (the target) or ``not reached``; the rules are in
:mod:`ddlsim.convergence.outcomes`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ddlsim.convergence.data import Dataset, load_digits
from ddlsim.convergence.models import get_model
from ddlsim.convergence.outcomes import REACHED, outcome_of
from ddlsim.convergence.replay_config import OUTCOMES, ReplayConfig, ReplayResult
from ddlsim.convergence.train import SampleStream, evaluate, sgd_step
from ddlsim.convergence.update_logs import (
    constant_staleness_log,
    log_rows,
    sync_log,
    tile_update_log,
)
from ddlsim.errors import ConfigError
from ddlsim.kernels import ops
from ddlsim.kernels.backend import get_backend

__all__ = ["OUTCOMES", "ReplayConfig", "ReplayResult", "TimeToAccuracy",
           "constant_staleness_log", "lr_sweep", "replay", "sync_log", "tile_update_log",
           "time_to_accuracy"]

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
    arr = log_rows(update_log)
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
    diverged, diverged_at, first_loss = False, None, None
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
            diverged, diverged_at = True, k
            break
        sgd_step(model.layout, w, acc, v, lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
        versions.put(int(v_written), w)
        if done % eval_every == 0 or done == n_updates:
            ta = do_eval(done, float(t))
            if not math.isfinite(ev[-1][3]):
                diverged, diverged_at = True, k
                break
            if (ttt_s is None and cfg.target_accuracy is not None
                    and ta >= cfg.target_accuracy):
                ttt_s, ttt_u = float(t), done
                if cfg.stop_at_target:
                    break
    wall = time.perf_counter() - start
    outcome = outcome_of(diverged, ev[-1][4], data.classes, ttt_s is not None)
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
        checkpoints=[checkpoints[i] for i in keep], backend=backend.name,
        classes=data.classes)


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
    the target was not reached; ``outcomes``: per seed, ``reached``, ``not reached``,
    ``collapsed to chance`` or ``diverged`` (:mod:`ddlsim.convergence.outcomes`), so a
    failing seed is named, not only left out; statistics are over the seeds that reached
    the target."""

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
        """One flat record. ``outcomes`` and ``times_s`` are per seed, comma-separated in
        seed order (``times_s``: ``nan`` where the target was not reached), so they survive
        a CSV; the statistics are over the seeds that reached the target."""
        return {"target": self.target, "seeds": len(self.seeds), "reached": self.reached,
                "median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s,
                "std_s": self.std_s,
                "median_updates": float(np.median([u for u in self.updates if u >= 0]))
                if self.reached else math.nan,
                "outcomes": ",".join(self.outcomes),
                "times_s": ",".join(f"{t:.6g}" for t in self.times_s)}


def time_to_accuracy(update_log: Sequence[Sequence], config: ReplayConfig, target: float,
                     seeds: Sequence[int] = (0, 1, 2), data: Dataset | None = None,
                     known: ReplayResult | None = None) -> TimeToAccuracy:
    """First simulated time the test accuracy reaches ``target`` (0..1), for each seed
    (initial weights and sample order); each replay stops at the target. ``known``: a
    full replay of this log with ``config`` and ``target`` already run; its seed is read
    from it instead of replayed again (the same updates up to the target)."""
    data = data or load_digits()
    times, updates, outcomes = [], [], []
    for seed in seeds:
        if (known is not None and known.config.seed == seed
                and replace(known.config, progress=False) == replace(
                    config, seed=seed, target_accuracy=target, progress=False)):
            res = known
        else:
            res = replay(update_log, replace(config, seed=seed, target_accuracy=target,
                                             stop_at_target=True), data)
        times.append(math.nan if res.time_to_target_s is None else res.time_to_target_s)
        updates.append(-1 if res.updates_to_target is None else res.updates_to_target)
        outcomes.append(REACHED if res.time_to_target_s is not None else res.outcome)
    return TimeToAccuracy(target, tuple(seeds), tuple(times), tuple(updates), tuple(outcomes))
