"""The pieces of the fluid network model (:mod:`ddlsim.sim.network`) that know nothing of
SimPy's clock: a :class:`Path` (links and weights), an active :class:`Flow`, and weighted
max-min fair rates by progressive filling (:func:`fill_small`, :func:`fill_numpy`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import simpy

from ddlsim.errors import SimulationError


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


def fill_small(active: list[Flow], cap: np.ndarray) -> None:
    """Progressive filling in Python over only the links the active flows use: sets each
    flow's ``rate`` from the link capacities ``cap`` (B/s, indexed like the links)."""
    rem: dict[int, float] = {}
    load: dict[int, float] = {}
    for f in active:
        for i, w in f.path.pairs:
            if i in load:
                load[i] += w
            else:
                load[i] = w
                rem[i] = float(cap[i])
    unfrozen = active
    inf = float("inf")
    while unfrozen:
        best, bottleneck = inf, -1
        for i, ld in load.items():
            if ld > 0:
                share = rem[i] / ld
                if share < best or (share == best and i < bottleneck):
                    best, bottleneck = share, i
        rate = best if best > 0.0 else 0.0
        keep = []
        for f in unfrozen:
            if bottleneck in f.path.link_set:
                f.rate = rate
                for i, w in f.path.pairs:
                    rem[i] -= w * rate
                    load[i] -= w
            else:
                keep.append(f)
        if len(keep) == len(unfrozen):  # pragma: no cover - numerical safety net
            raise SimulationError("max-min filling made no progress")
        unfrozen = keep


def fill_numpy(active: list[Flow], cap: np.ndarray, load: np.ndarray) -> None:
    """Progressive filling with NumPy over every link (for flows over many links): sets
    each flow's ``rate`` from the capacities ``cap`` and the active flows' summed
    weights ``load`` per link (neither is modified)."""
    rem = cap.copy()
    load = load.copy()
    unfrozen = active
    share = np.empty_like(rem)
    while unfrozen:
        share.fill(np.inf)
        np.divide(rem, load, out=share, where=load > 0)
        bottleneck = int(np.argmin(share))
        rate = max(float(share[bottleneck]), 0.0)
        keep = []
        for f in unfrozen:
            if bottleneck in f.path.link_set:
                f.rate = rate
                idx = f.path.idx
                rem[idx] -= f.path.weights * rate
                load[idx] -= f.path.weights
            else:
                keep.append(f)
        if len(keep) == len(unfrozen):  # pragma: no cover - numerical safety net
            raise SimulationError("max-min filling made no progress")
        unfrozen = keep
