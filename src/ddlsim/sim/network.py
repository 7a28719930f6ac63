"""Flow-level (fluid) network model on top of SimPy.

A :class:`Flow` moves ``nbytes`` over a set of links at one rate; every link it uses
carries ``weight * nbytes`` bytes (a link used twice by the same flow, e.g. a ring that
crosses one NIC twice, has weight 2). A *multi-link flow* moves in lock-step over all its
links: one flow can stand for a whole ring step of ``p`` ranks.

**Sharing: weighted max-min fairness** (progressive filling). Each link ``L`` has
capacity ``c_L``; rates ``r_f`` satisfy ``sum_f w_fL r_f <= c_L``. All flows grow
together; when a link saturates, the flows crossing it freeze at their current rate and
the rest keep growing. So a flow bottlenecked elsewhere does not waste its share of a
link: its leftover goes to the others. Rates are recomputed whenever a flow starts or
ends (once per simulated instant, however many flows start in it), and the completion
of the earliest-finishing flow is (re)scheduled; stale wake-ups are ignored.

Cost: start/finish updates the per-link counters for the links the flow touches
(vectorised NumPy). The max-min recomputation costs
O(bottleneck rounds x links) NumPy work, rounds <= number of active flows; collectives
keep the number of flows per collective constant (not growing with GPUs), so the
simulator's cost grows linearly with links, i.e. with GPUs.

Counters per link: ``bytes_carried`` (weight x bytes of finished flows plus progress of
running ones) and ``busy_s`` (time during which at least one flow was active on it,
whether or not it was the bottleneck). Latency: :meth:`Network.transfer` adds the path
latency once, after the bandwidth phase (links are not held during it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from ddlsim.errors import ConfigError, SimulationError, unknown_name
from ddlsim.sim.flows import Flow, Path, fill_numpy, fill_small
from ddlsim.sim.topology import ClusterSpec, link_table, route

__all__ = ["Flow", "Link", "Network", "Path"]

_REL_TOL = 1e-9  # a flow is done when remaining <= _REL_TOL * nbytes ...
_TIME_TOL_S = 1e-10  # ... or when it would finish within this many seconds
#: Up to this many (flow, link) incidences among the active flows, max-min filling runs in
#: plain Python over the links in use; above it (rings over hundreds of links), in NumPy over
#: every link. Both do the same float operations in the same order (same rates, bit for bit).
_SMALL_INCIDENCES = 256
#: Rates of an active set of at most this many flows are memoised (see ``_max_min_rates``) ...
_MEMO_MAX_FLOWS = 32
#: ... in a table of at most this many entries (cleared when full).
_MEMO_MAX_ENTRIES = 1 << 16
#: Paths of at most this many links update the per-link counters element by element
#: (cheaper than NumPy fancy indexing for a handful of links; same float operations).
_SHORT_PATH = 8


class Link:
    """View of one directional link; counters are read live from its :class:`Network`."""

    __slots__ = ("_net", "index", "id", "kind")

    def __init__(self, net: Network, index: int, link_id: str, kind: str) -> None:
        self._net = net
        self.index = index
        self.id = link_id
        self.kind = kind

    @property
    def capacity_Bps(self) -> float:
        return float(self._net._cap[self.index])

    @property
    def latency_s(self) -> float:
        return float(self._net._lat[self.index])

    @property
    def bytes_carried(self) -> float:
        return float(self._net.bytes_carried()[self.index])

    @property
    def busy_s(self) -> float:
        return float(self._net.busy_time_s()[self.index])

    def __repr__(self) -> str:
        return f"Link({self.id}, {self.capacity_Bps:.3g} B/s)"


class Network:
    """The links of ``cluster`` as SimPy-side shared resources.

    Args:
        env: the simulation environment (shared with compute processes).
        cluster: topology; one :class:`Link` per directional link.
    """

    def __init__(self, env: simpy.Environment, cluster: ClusterSpec) -> None:
        self.env = env
        self.cluster = cluster
        table = link_table(cluster)
        self.links = [Link(self, i, lid, kind) for i, (lid, kind, _, _) in enumerate(table)]
        self._by_id = {link.id: link for link in self.links}
        self._cap = np.array([row[2] for row in table], dtype=np.float64)
        self._lat = np.array([row[3] for row in table], dtype=np.float64)
        n = len(table)
        self._load = np.zeros(n)  # sum of weights of active flows per link
        self._carried = np.zeros(n)  # bytes of finished flows
        self._busy = np.zeros(n)  # closed busy intervals, s
        self._busy_since = np.zeros(n)
        self._active: list[Flow] = []
        self._incidences = 0  # sum of num_links over active flows
        # (id(path) of each active flow, in order) -> (the paths, their rates); holding the
        # paths keeps their ids from being reused while the entry exists.
        self._memo: dict[tuple[int, ...], tuple[tuple[Path, ...], tuple[float, ...]]] = {}
        self._gen = 0
        self._dirty = False
        self.flows_started = 0
        self.cache: dict[object, object] = {}  # for collectives' reusable plans

    # -- links ---------------------------------------------------------------------------
    def link(self, link_id: str) -> Link:
        """The link with this id (e.g. ``'nic3.tx'``)."""
        try:
            return self._by_id[link_id]
        except KeyError:
            raise unknown_name("link", link_id, self._by_id, "link id") from None

    def set_capacity(self, link_id: str, bw_Bps: float) -> None:
        """Change one link's capacity now (bytes/s); running flows adapt immediately."""
        if not bw_Bps > 0:
            raise ConfigError(f"bw_Bps: must be > 0, got {bw_Bps!r}")
        self._settle()
        self._cap[self.link(link_id).index] = float(bw_Bps)
        self._memo.clear()  # memoised rates were for the old capacities
        self._mark_dirty()

    def path(self, links: Sequence[int], latency_s: float = 0.0) -> Path:
        """A :class:`Path` from link indices (repeats count as weight)."""
        arr = np.asarray(links, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.links)):
            raise ConfigError(f"links: indices must be in [0, {len(self.links)}), got {links!r}")
        idx, counts = np.unique(arr, return_counts=True)
        return Path(idx, counts.astype(np.float64), float(latency_s))

    def route(self, src: int, dst: int, channel: int | None = None) -> Path:
        """Path (with latency) from GPU ``src`` to GPU ``dst``; see :func:`topology.route`."""
        links, lat = route(self.cluster, src, dst, channel)
        return self.path(links, lat)

    # -- transfers ---------------------------------------------------------------------------
    def transfer(self, links: Path | Sequence[int], nbytes: float,
                 latency_s: float | None = None) -> simpy.Event:
        """Start moving ``nbytes`` (per unit weight) over ``links``; returns the done event.

        Args:
            links: a :class:`Path` or link indices.
            nbytes: bytes each link carries per unit of weight (>= 0).
            latency_s: added once after the bandwidth phase; default the path's latency
                (for a raw index list, the sum of its links' latencies).
        """
        if not isinstance(links, Path):
            links = self.path(links)
            links = Path(links.idx, links.weights,
                         float(self._lat[links.idx] @ links.weights) if links.num_links else 0.0)
        if not nbytes >= 0:
            raise ConfigError(f"nbytes: must be >= 0, got {nbytes!r}")
        lat = links.latency_s if latency_s is None else float(latency_s)
        done = self.env.event()
        flow = Flow(links, float(nbytes), lat, done, self.env.now)
        self.flows_started += 1
        if flow.nbytes <= 0 or links.num_links == 0:
            self._finish_later(flow)
            return done
        self._settle()
        self._occupy(links, self.env.now)
        self._active.append(flow)
        self._incidences += links.num_links
        self._mark_dirty()
        return done

    def _occupy(self, path: Path, now: float) -> None:
        """Add ``path``'s weights to the link loads; idle links start a busy interval."""
        load, since = self._load, self._busy_since
        if path.idx.size <= _SHORT_PATH:
            for i, w in path.pairs:
                if load[i] == 0:
                    since[i] = now
                load[i] += w
            return
        idx = path.idx
        since[idx[load[idx] == 0]] = now
        load[idx] += path.weights

    def _release(self, flow: Flow, now: float) -> None:
        """Remove a finished flow from the link loads and count its bytes; links left idle
        close their busy interval. Weights are integers, so a load <= 0.5 means idle."""
        load, carried, busy, since = self._load, self._carried, self._busy, self._busy_since
        nbytes = flow.nbytes
        path = flow.path
        if path.idx.size <= _SHORT_PATH:
            for i, w in path.pairs:
                left = load[i] - w
                carried[i] += w * nbytes
                if left <= 0.5:
                    load[i] = 0.0
                    busy[i] += now - since[i]
                else:
                    load[i] = left
            return
        idx, w = path.idx, path.weights
        load[idx] -= w
        carried[idx] += w * nbytes
        freed = idx[load[idx] <= 0.5]
        load[freed] = 0.0
        busy[freed] += now - since[freed]

    def _finish_later(self, flow: Flow) -> None:
        if flow.latency_s > 0:
            ev = self.env.timeout(flow.latency_s)
            ev.callbacks.append(lambda _e, f=flow: f.done.succeed(f))
        else:
            flow.done.succeed(flow)

    # -- counters -----------------------------------------------------------------------------
    def bytes_carried(self) -> np.ndarray:
        """Bytes carried per link so far (finished flows plus progress of running ones)."""
        out = self._carried.copy()
        now = self.env.now
        for f in self._active:
            moved = f.nbytes - (f.remaining - f.rate * (now - f.t_last))
            out[f.path.idx] += f.path.weights * moved
        return out

    def busy_time_s(self) -> np.ndarray:
        """Seconds per link during which at least one flow was active on it."""
        out = self._busy.copy()
        on = self._load > 0
        out[on] += self.env.now - self._busy_since[on]
        return out

    def link_stats(self) -> list[dict[str, float | str]]:
        """One record per link: id, kind, capacity_Bps, bytes_carried, busy_s, utilization
        (bytes carried / (capacity x now); 0 at time 0)."""
        carried, busy, now = self.bytes_carried(), self.busy_time_s(), self.env.now
        rows = []
        for link in self.links:
            i = link.index
            util = carried[i] / (self._cap[i] * now) if now > 0 else 0.0
            rows.append({"id": link.id, "kind": link.kind, "capacity_Bps": float(self._cap[i]),
                         "bytes_carried": float(carried[i]), "busy_s": float(busy[i]),
                         "utilization": float(util)})
        return rows

    @property
    def active_flows(self) -> int:
        return len(self._active)

    # -- the fluid engine ---------------------------------------------------------------------
    def _settle(self) -> None:
        """Advance every active flow's remaining bytes to now."""
        now = self.env.now
        for f in self._active:
            if f.rate > 0 and now > f.t_last:
                f.remaining -= f.rate * (now - f.t_last)
            f.t_last = now

    def _mark_dirty(self) -> None:
        """Recompute rates once at the end of this instant (batches simultaneous starts)."""
        if not self._dirty:
            self._dirty = True
            ev = self.env.timeout(0)
            ev.callbacks.append(self._recompute)

    def _recompute(self, _event: object = None) -> None:
        self._dirty = False
        self._settle()
        self._max_min_rates()
        self._schedule_next()

    def _max_min_rates(self) -> None:
        """Weighted max-min fair rates by progressive filling.

        Each round picks the link with the smallest fair share ``remaining capacity / load``
        (ties: lowest link index), freezes the unfrozen flows crossing it at that share (in
        start order) and removes their use from every link they cross. The small-set and the
        NumPy variants (:func:`~ddlsim.sim.flows.fill_small`,
        :func:`~ddlsim.sim.flows.fill_numpy`) perform exactly these float operations, so they
        agree bit for bit.
        """
        active = self._active
        if not active:
            return
        if len(active) == 1:
            path = active[0].path
            if path.idx.size <= _SHORT_PATH:
                cap = self._cap
                active[0].rate = float(min(cap[i] / w for i, w in path.pairs))
            else:
                active[0].rate = float(np.min(self._cap[path.idx] / path.weights))
            return
        key = None
        if len(active) <= _MEMO_MAX_FLOWS:
            key = tuple([id(f.path) for f in active])
            hit = self._memo.get(key)
            if hit is not None:
                for f, rate in zip(active, hit[1], strict=True):
                    f.rate = rate
                return
        if self._incidences <= _SMALL_INCIDENCES:
            fill_small(active, self._cap)
        else:
            fill_numpy(active, self._cap, self._load)
        if key is not None:
            if len(self._memo) >= _MEMO_MAX_ENTRIES:
                self._memo.clear()
            self._memo[key] = (tuple([f.path for f in active]), tuple([f.rate for f in active]))

    def _schedule_next(self) -> None:
        self._gen += 1
        if not self._active:
            return
        dt = np.inf
        for f in self._active:
            if f.rate > 0:
                d = f.remaining / f.rate
                if d < dt:
                    dt = d
        if not np.isfinite(dt):
            if self._dirty:  # a recomputation is already pending this instant
                return
            raise SimulationError("active flows with zero rate")  # pragma: no cover
        gen = self._gen
        ev = self.env.timeout(max(dt, 0.0))
        ev.callbacks.append(lambda _e: self._on_wakeup(gen))

    def _on_wakeup(self, gen: int) -> None:
        if gen != self._gen:
            return  # superseded by a later recomputation
        self._settle()
        now = self.env.now
        still, finished = [], []
        t_tol = _TIME_TOL_S + 1e-15 * now  # absorbs float rounding of env.now + dt
        for f in self._active:
            slack = _REL_TOL * f.nbytes
            by_time = f.rate * t_tol
            if by_time > slack:
                slack = by_time
            (finished if f.remaining <= slack else still).append(f)
        self._active = still
        for f in finished:
            self._incidences -= f.path.idx.size
            self._release(f, now)
            f.remaining = 0.0
            self._finish_later(f)
        if finished:
            self._max_min_rates()
        self._schedule_next()
