"""The pieces of the fluid network model (:mod:`ddlsim.sim.network`) that know nothing of
SimPy's clock: a :class:`Path` (links and weights), an active :class:`Flow`, the exact
aggregation of links into classes (:class:`LinkClasses`, :class:`ClassPath`), and weighted
max-min fair rates by progressive filling over classes (:func:`fill_small`,
:func:`fill_numpy`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import simpy

from ddlsim.errors import ConfigError, SimulationError


@dataclass(frozen=True)
class Path:
    """Links a flow uses: sorted unique link indices and the weight of each.

    Build with :meth:`Network.path`; reusable across many flows (collectives cache them).
    ``latency_s`` is a default latency for transfers over this path (s).
    """

    idx: np.ndarray  # int64, sorted, unique
    weights: np.ndarray  # float64, >= 1, same length
    latency_s: float = 0.0

    @property
    def num_links(self) -> int:
        return int(self.idx.size)

    @cached_property
    def pairs(self) -> tuple[tuple[int, float], ...]:
        """``(link index, weight)`` per link, as Python numbers (for the small-set filling)."""
        return tuple(zip(self.idx.tolist(), self.weights.tolist(), strict=True))

    @cached_property
    def link_set(self) -> frozenset[int]:
        """The link indices, for O(1) membership tests."""
        return frozenset(self.idx.tolist())


class Flow:
    """An active transfer. ``done`` is the event that fires when it (and its latency) ends."""

    __slots__ = ("path", "nbytes", "remaining", "rate", "t_last", "done", "latency_s",
                 "start_s")

    def __init__(self, path: Path, nbytes: float, latency_s: float, done: simpy.Event,
                 now: float) -> None:
        self.path = path
        self.nbytes = nbytes
        self.remaining = nbytes
        self.rate = 0.0
        self.t_last = now
        self.done = done
        self.latency_s = latency_s
        self.start_s = now


class ClassPath:
    """A :class:`Path` in terms of link classes (:class:`LinkClasses`): class ids (sorted),
    the path's weight on each (uniform over a class's links), the same as Python pairs and
    as a set, and the partition version it was derived under."""

    __slots__ = ("idx", "weights", "pairs", "ids", "version")

    def __init__(self, idx: np.ndarray, weights: np.ndarray, version: int) -> None:
        self.idx = idx
        self.weights = weights
        self.pairs = tuple(zip(idx.tolist(), weights.tolist(), strict=True))
        self.ids = frozenset(self.idx.tolist())
        self.version = version


class LinkClasses:
    """Exact aggregation of links: a partition of the links into classes whose members have
    the same capacity and the same weight in every path seen so far (:meth:`refine`).

    Members of a class then carry identical loads, bytes and busy intervals, so the fluid
    model keeps one counter per class instead of one per link and does the same float
    operations: a ring or tree over every NIC of 12,500 nodes touches a handful of classes,
    not 25,000 links. A path that uses part of a class splits it (counters copied), so a
    non-symmetric cluster or flow degrades towards one class per link, never to a wrong
    answer. Ties between classes break on their lowest member link index (``minm``), as
    the per-link filling breaks them on the link index.

    Args:
        cap: capacity per link (B/s); the initial classes group equal capacities.
        aggregate: False gives one class per link for good (the per-link model: the
            reference the aggregation is tested against).
    """

    _COUNTERS = ("cap", "load", "carried", "busy", "since")

    def __init__(self, cap: np.ndarray, aggregate: bool = True) -> None:
        if not isinstance(aggregate, bool):
            raise ConfigError(f"aggregate: must be True or False, got {aggregate!r}")
        if aggregate:
            values, first, inverse = np.unique(cap, return_index=True, return_inverse=True)
        else:
            values, first, inverse = cap, np.arange(cap.size), np.arange(cap.size)
        n = values.size
        self.cls_of = inverse.astype(np.int64).reshape(-1)  # class id per link
        self.n = n
        self.cap = values.astype(np.float64)
        self.load = np.zeros(n)  # sum of weights of active flows (any member)
        self.carried = np.zeros(n)  # bytes of finished flows (per member)
        self.busy = np.zeros(n)  # closed busy intervals, s
        self.since = np.zeros(n)
        self.size = np.bincount(self.cls_of, minlength=n).astype(np.int64)
        self.minm = first.astype(np.int64)  # lowest member link index
        self.version = 0  # bumped whenever a class splits

    def _grow(self, extra: int) -> None:
        need = self.n + extra
        if need > self.cap.size:
            new = max(need, 2 * self.cap.size)
            for name in self._COUNTERS + ("size", "minm"):
                old = getattr(self, name)
                arr = np.zeros(new, dtype=old.dtype)
                arr[:self.n] = old[:self.n]
                setattr(self, name, arr)

    def refine(self, idx: np.ndarray, weights: np.ndarray) -> None:
        """Split classes so that the path ``(idx, weights)`` (sorted unique links) covers
        whole classes with one weight each."""
        if idx.size == 0:
            return
        c = self.cls_of[idx]
        order = np.lexsort((weights, c))  # stable: members stay ascending in a group
        cs, ws, members = c[order], weights[order], idx[order]
        brk = np.ones(cs.size, dtype=bool)
        brk[1:] = (cs[1:] != cs[:-1]) | (ws[1:] != ws[:-1])
        starts = np.flatnonzero(brk)
        counts = np.diff(np.append(starts, cs.size))
        gc = cs[starts]
        cls_first = np.ones(gc.size, dtype=bool)
        cls_first[1:] = gc[1:] != gc[:-1]
        cstart = np.flatnonzero(cls_first)
        full = np.add.reduceat(counts, cstart) == self.size[gc[cstart]]
        keep = np.zeros(gc.size, dtype=bool)
        keep[cstart[full]] = True  # a wholly covered class keeps its id for its first group
        relabel = ~keep
        if not relabel.any():
            return
        old = gc[relabel]
        new = np.arange(self.n, self.n + old.size)
        self._grow(old.size)
        for name in self._COUNTERS:
            arr = getattr(self, name)
            arr[new] = arr[old]
        np.subtract.at(self.size, old, counts[relabel])
        self.size[new] = counts[relabel]
        ids = gc.copy()
        ids[relabel] = new
        self.n += old.size
        self.cls_of[members] = np.repeat(ids, counts)
        self.minm[ids] = members[starts]  # groups cover their (new or kept) class wholly
        partial = gc[cstart[~full]]  # these keep their id for the members not in the path
        lost = partial[np.isin(self.minm[partial], members)]
        if lost.size:  # a partly covered class lost its lowest member: find the new one
            u, first = np.unique(self.cls_of, return_index=True)
            self.minm[u] = first
        self.version += 1

    def rep(self, idx: np.ndarray, weights: np.ndarray) -> ClassPath:
        """The refined path ``(idx, weights)`` as classes (see :meth:`refine`)."""
        if idx.size <= 8:
            pairs = dict(zip(self.cls_of[idx].tolist(), weights.tolist(), strict=True))
            keys = sorted(pairs)
            return ClassPath(np.array(keys, dtype=np.int64),
                             np.array([pairs[k] for k in keys]), self.version)
        u, first = np.unique(self.cls_of[idx], return_index=True)
        return ClassPath(u, weights[first], self.version)

    def per_link(self, values: np.ndarray) -> np.ndarray:
        """A per-class array (one of the counters) spread to the links."""
        return values[self.cls_of]


def fill_small(active: list[Flow], reps: list[ClassPath], cap: np.ndarray,
               minm: np.ndarray) -> None:
    """Progressive filling in Python over only the classes the active flows use: sets each
    flow's ``rate`` from the class capacities ``cap`` (B/s); ``reps[k]`` is ``active[k]``'s
    path as classes, ``minm`` each class's lowest link index (ties)."""
    rem: dict[int, float] = {}
    load: dict[int, float] = {}
    for r in reps:
        for i, w in r.pairs:
            if i in load:
                load[i] += w
            else:
                load[i] = w
                rem[i] = float(cap[i])
    unfrozen = list(zip(active, reps, strict=True))
    inf = float("inf")
    while unfrozen:
        best, bottleneck = inf, -1
        for i, ld in load.items():
            if ld > 0:
                share = rem[i] / ld
                if share < best or (share == best and bottleneck >= 0
                                    and minm[i] < minm[bottleneck]):
                    best, bottleneck = share, i
        rate = best if best > 0.0 else 0.0
        keep = []
        for f, r in unfrozen:
            if bottleneck in r.ids:
                f.rate = rate
                for i, w in r.pairs:
                    rem[i] -= w * rate
                    load[i] -= w
            else:
                keep.append((f, r))
        if len(keep) == len(unfrozen):  # pragma: no cover - numerical safety net
            raise SimulationError("max-min filling made no progress")
        unfrozen = keep


def fill_numpy(active: list[Flow], reps: list[ClassPath], cap: np.ndarray, load: np.ndarray,
               minm: np.ndarray) -> None:
    """Progressive filling with NumPy over every class (for flows over many classes): sets
    each flow's ``rate`` from the capacities ``cap`` and the active flows' summed weights
    ``load`` per class (neither is modified); arguments as for :func:`fill_small`."""
    rem = cap.copy()
    load = load.copy()
    unfrozen = list(zip(active, reps, strict=True))
    share = np.empty_like(rem)
    while unfrozen:
        share.fill(np.inf)
        np.divide(rem, load, out=share, where=load > 0)
        bottleneck = int(np.argmin(share))
        ties = np.flatnonzero(share == share[bottleneck])
        if ties.size > 1:
            bottleneck = int(ties[np.argmin(minm[ties])])
        rate = max(float(share[bottleneck]), 0.0)
        keep = []
        for f, r in unfrozen:
            if bottleneck in r.ids:
                f.rate = rate
                rem[r.idx] -= r.weights * rate
                load[r.idx] -= r.weights
            else:
                keep.append((f, r))
        if len(keep) == len(unfrozen):  # pragma: no cover - numerical safety net
            raise SimulationError("max-min filling made no progress")
        unfrozen = keep
