"""Layer placement: contiguous layer ranges per pipeline stage (one GPU per stage).

* :func:`manual_bounds`: the user's split (layer counts per stage, torchgpipe's
  ``balance``), validated.
* :func:`partition`: the split that minimises the slowest stage's time subject to each
  stage's memory capacity, for heterogeneous GPUs (stage ``k`` has its own per-layer times,
  capacity and activation multiplier).

Algorithm (exact up to a bisection tolerance on the bottleneck time): for a candidate
bottleneck ``T``, the set of layer indices that ``k`` stages can cover exactly (every
stage non-empty, within ``T`` and within memory) is computed for ``k = 1..p`` with NumPy:
from each reachable start ``i`` stage ``k`` reaches every end in ``(i, maxend_k(i)]``,
where ``maxend_k(i)`` is the farthest end whose time and memory prefix sums stay under the
limits (``searchsorted`` on prefix sums). ``T`` is feasible when ``p`` stages reach ``n``.
Bisection on ``T`` then costs ``O(iterations x p x n log n)`` vectorised work: 1,000
layers onto 64 stages take well under a second (bench/bench_placement.py). A stage's
memory for ``[i, j)`` is ``static[i:j] + act_mult[k] * act[i:j] + fixed[k]`` (weights,
gradients, optimizer state; activations times micro-batches in flight; workspace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError

_BISECT_ITERS = 60
_REL_TOL = 1e-9


@dataclass(frozen=True)
class Partition:
    """A split of ``n`` layers into stages: stage ``k`` holds ``[bounds[k], bounds[k+1])``.

    ``stage_time_s``: per-stage time (sum of its layers' times on its device);
    ``stage_memory_bytes``: per-stage memory by the partitioner's additive model;
    ``fits``: every stage within its capacity; ``note``: why it does not fit, if so.
    """

    bounds: tuple[int, ...]
    stage_time_s: tuple[float, ...]
    stage_memory_bytes: tuple[float, ...]
    fits: bool
    note: str = ""

    @property
    def bottleneck_s(self) -> float:
        return max(self.stage_time_s)

    @property
    def balance(self) -> float:
        """Mean stage time / slowest stage time (1 = perfectly balanced)."""
        return float(np.mean(self.stage_time_s) / self.bottleneck_s) if self.bottleneck_s else 1.0

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(int(b - a) for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True))


def manual_bounds(balance: Sequence[int], n_layers: int) -> tuple[int, ...]:
    """Bounds from layer counts per stage; counts must be >= 1 and sum to ``n_layers``."""
    counts = [int(c) for c in balance]
    if not counts:
        raise ConfigError("balance: must list at least one stage, got []")
    for k, c in enumerate(counts):
        if c < 1:
            raise ConfigError(f"balance[{k}]: every stage needs >= 1 layer, got {c}")
    if sum(counts) != n_layers:
        raise ConfigError(f"balance: layer counts must sum to the {n_layers} layers, "
                          f"got {sum(counts)} ({counts})")
    return tuple(int(x) for x in np.concatenate([[0], np.cumsum(counts)]))


def parse_ranges(text: str, n_layers: int) -> tuple[int, ...]:
    """Bounds from ``"0-9,10-19,20-31"`` (inclusive layer index ranges, one per stage)."""
    counts, expect = [], 0
    for k, part in enumerate(str(text).split(",")):
        try:
            lo, hi = (int(x) for x in part.strip().split("-"))
        except ValueError:
            raise ConfigError(f"ranges[{k}]: expected 'first-last', got {part!r}") from None
        if lo != expect or hi < lo:
            raise ConfigError(f"ranges[{k}]: must start at layer {expect} and end at or after "
                              f"it, got {part!r}")
        counts.append(hi - lo + 1)
        expect = hi + 1
    return manual_bounds(counts, n_layers)


def _per_stage(values, p: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = np.full(p, float(arr))
    if arr.shape != (p,):
        raise ConfigError(f"{name}: needs one value per stage ({p}), got shape {arr.shape}")
    return arr


def _times(layer_time_s, p: int) -> np.ndarray:
    t = np.asarray(layer_time_s, dtype=float)
    if t.ndim == 1:
        t = np.broadcast_to(t, (p, t.size))
    if t.ndim != 2 or t.shape[0] != p:
        raise ConfigError(f"layer_time_s: needs shape (n,) or ({p}, n), got {t.shape}")
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ConfigError("layer_time_s: times must be finite and >= 0")
    return t


class _Problem:
    """Prefix sums shared by every bisection step."""

    def __init__(self, times, static, act, act_mult, capacity, fixed):
        p, n = times.shape
        self.p, self.n = p, n
        zero = np.zeros((p, 1))
        self.tcum = np.concatenate([zero, np.cumsum(times, axis=1)], axis=1)
        scum = np.concatenate([[0.0], np.cumsum(static)])
        acum = np.concatenate([[0.0], np.cumsum(act)])
        self.mcum = scum[None, :] + act_mult[:, None] * acum[None, :]
        self.mem_room = capacity - fixed
        self.idx = np.arange(n + 1)

    def maxend(self, k: int, limit_s: float) -> np.ndarray:
        """Farthest end ``j`` for each start ``i`` that stage ``k`` can take."""
        tc, mc = self.tcum[k], self.mcum[k]
        slack = _REL_TOL * max(limit_s, 1e-30)
        by_time = np.searchsorted(tc, tc + limit_s + slack, side="right") - 1
        room = self.mem_room[k]
        mslack = _REL_TOL * max(abs(room), 1.0)
        by_mem = np.searchsorted(mc, mc + room + mslack, side="right") - 1
        return np.minimum(by_time, by_mem)

    def reach(self, limit_s: float, keep: bool = False):
        """Reachable ends after each number of stages (bool arrays) for bottleneck
        ``limit_s``; with ``keep`` also the per-stage ``maxend`` arrays."""
        n = self.n
        cur = np.zeros(n + 1, dtype=bool)
        cur[0] = True
        history, ends = [cur], []
        for k in range(self.p):
            me = self.maxend(k, limit_s)
            starts = np.nonzero(cur)[0]
            lo, hi = starts + 1, me[starts]
            ok = hi >= lo
            diff = np.zeros(n + 2, dtype=np.int64)
            np.add.at(diff, lo[ok], 1)
            np.add.at(diff, hi[ok] + 1, -1)
            cur = np.cumsum(diff[:-1]) > 0
            if keep:
                history.append(cur)
                ends.append(me)
            if not cur.any():
                break
        return cur, history, ends


def partition(layer_time_s, static_bytes=None, act_bytes=None, act_mult=1.0,
              capacity_bytes=np.inf, fixed_bytes=0.0, stages: int | None = None) -> Partition:
    """Contiguous split minimising the slowest stage subject to memory.

    Args:
        layer_time_s: seconds of each layer (forward + backward of one micro-batch), shape
            ``(n,)`` for identical GPUs or ``(p, n)``: row ``k`` on stage ``k``'s device.
        static_bytes: per-layer weights + gradients + optimizer bytes (default 0).
        act_bytes: per-layer activation bytes of one micro-batch (default 0).
        act_mult: micro-batches in flight per stage (scalar or one per stage).
        capacity_bytes: memory of each stage's GPU, bytes (scalar or per stage).
        fixed_bytes: per-stage bytes that do not depend on the split (workspace).
        stages: ``p`` when ``layer_time_s`` is one-dimensional.

    When no split fits in memory the time-optimal split ignoring memory is returned with
    ``fits=False``; it never raises for lack of memory.
    """
    t = np.asarray(layer_time_s, dtype=float)
    p = int(stages if stages is not None else (t.shape[0] if t.ndim == 2 else 1))
    if p < 1:
        raise ConfigError(f"stages: must be >= 1, got {p}")
    times = _times(t, p)
    n = times.shape[1]
    if n < p:
        raise ConfigError(f"stages: {p} stages need at least {p} layers, got {n}")
    static = np.zeros(n) if static_bytes is None else np.asarray(static_bytes, dtype=float)
    act = np.zeros(n) if act_bytes is None else np.asarray(act_bytes, dtype=float)
    for name, arr in (("static_bytes", static), ("act_bytes", act)):
        if arr.shape != (n,):
            raise ConfigError(f"{name}: needs one value per layer ({n}), got {arr.shape}")
    mult = _per_stage(act_mult, p, "act_mult")
    cap = _per_stage(capacity_bytes, p, "capacity_bytes")
    fixed = _per_stage(fixed_bytes, p, "fixed_bytes")
    prob = _Problem(times, static, act, mult, cap, fixed)

    hi = float(times.sum(axis=1).max()) or 1.0
    fits = bool(prob.reach(hi)[0][n])
    note = ""
    if not fits:
        note = _why_not(prob)
        prob = _Problem(times, static, act, mult, np.full(p, np.inf), fixed)
    lo = float(times.min(axis=0).max()) if n else 0.0
    lo = max(lo, float(times.min(axis=0).sum()) / p) * (1 - 1e-12)
    if prob.reach(lo)[0][n]:
        hi = lo
    for _ in range(_BISECT_ITERS):
        if hi - lo <= _REL_TOL * hi:
            break
        mid = 0.5 * (lo + hi)
        if prob.reach(mid)[0][n]:
            hi = mid
        else:
            lo = mid
    bounds = _reconstruct(prob, hi)
    k = np.arange(p)
    b = np.asarray(bounds)
    stage_t = prob.tcum[k, b[1:]] - prob.tcum[k, b[:-1]]
    stage_m = prob.mcum[k, b[1:]] - prob.mcum[k, b[:-1]] + fixed
    return Partition(bounds, tuple(float(x) for x in stage_t), tuple(float(x) for x in stage_m),
                     fits, note)


def _reconstruct(prob: _Problem, limit_s: float) -> tuple[int, ...]:
    _, history, ends = prob.reach(limit_s, keep=True)
    j = prob.n
    bounds = [j]
    for k in range(prob.p - 1, -1, -1):
        prev = history[k]
        cand = np.nonzero(prev[:j] & (ends[k][:j] >= j))[0]
        if cand.size == 0:  # pragma: no cover - reach() guarantees a predecessor
            raise AssertionError("partition reconstruction failed")
        j = int(cand[-1])
        bounds.append(j)
    return tuple(reversed(bounds))


def _why_not(prob: _Problem) -> str:
    """One line saying where memory runs out."""
    _, history, _ = prob.reach(np.inf, keep=True)
    if len(history) <= prob.p:  # some stage could not take any layer
        k = len(history) - 1
        return (f"no split fits in memory: stage {k} cannot hold even its next layer within "
                f"{prob.mem_room[k] / 2**30:.3g} GiB of room")
    return (f"no split fits in memory: the {prob.p} stages together cannot hold all "
            f"{prob.n} layers")
