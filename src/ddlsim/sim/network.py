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

Cost: links are aggregated exactly into classes (:class:`~ddlsim.sim.flows.LinkClasses`):
links of equal capacity that every path seen so far uses with the same weight share one
set of counters, so start/finish and the max-min recomputation walk classes, not links.
A symmetric collective (a ring or tree over every NIC of a rail-optimised cluster, the
intra-node stage over every GPU) touches a handful of classes however many GPUs there
are; only the first sight of a path (splitting classes, O(links)) and reading per-link
counters grow with the cluster. Asymmetry (a slow link, a point-to-point flow on one NIC)
splits the classes it touches, down to one per link, with the same rates bit for bit.
Collectives keep the number of flows per collective constant (not growing with GPUs).

Counters per link: ``bytes_carried`` (weight x bytes of finished flows plus progress of
running ones) and ``busy_s`` (time during which at least one flow was active on it,
whether or not it was the bottleneck). Latency: :meth:`Network.transfer` adds the path
latency once, after the bandwidth phase (links are not held during it).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import simpy

from ddlsim.errors import ConfigError, SimulationError, unknown_name
from ddlsim.sim.flows import ClassPath, Flow, LinkClasses, Path, fill_numpy, fill_small
from ddlsim.sim.topology import ClusterSpec, link_columns, route

__all__ = ["Flow", "Link", "LinkList", "Network", "Path"]

_REL_TOL = 1e-9  # a flow is done when remaining <= _REL_TOL * nbytes ...
_TIME_TOL_S = 1e-10  # ... or when it would finish within this many seconds
#: Up to this many (flow, link class) incidences among the active flows, max-min filling
#: runs in plain Python over the classes in use; above it, in NumPy over every class. Both
#: do the same float operations in the same order (same rates, bit for bit).
_SMALL_INCIDENCES = 256
#: Rates of an active set of at most this many flows are memoised (see ``_max_min_rates``) ...
_MEMO_MAX_FLOWS = 32
#: ... in a table of at most this many entries (cleared when full).
_MEMO_MAX_ENTRIES = 1 << 16
#: Paths over at most this many classes update the counters element by element
#: (cheaper than NumPy fancy indexing for a handful of classes; same float operations).
_SHORT_PATH = 8
#: Class views of at most this many paths are kept (cleared when full; rebuilt on demand).
_MAX_REPS = 1 << 14


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


class LinkList(Sequence[Link]):
    """``Network.links``: a :class:`Link` per link in index order, each made on first use
    (a 100,000-GPU cluster has 400,000 links; a prediction looks at a few)."""

    def __init__(self, net: Network, ids: list[str], kinds: list[str]) -> None:
        self._net, self.ids, self.kinds = net, ids, kinds
        self._made: dict[int, Link] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self.ids)))]
        i = operator.index(i)
        n = len(self.ids)
        if not -n <= i < n:
            raise IndexError(f"link index out of range: {i}")
        i %= n
        link = self._made.get(i)
        if link is None:
            link = self._made[i] = Link(self._net, i, self.ids[i], self.kinds[i])
        return link


class Network:
    """The links of ``cluster`` as SimPy-side shared resources.

    Args:
        env: the simulation environment (shared with compute processes).
        cluster: topology; one :class:`Link` per directional link.
        aggregate: keep counters per class of equivalent links (default); False keeps them
            per link (same results, cost linear in the links a flow crosses).
    """

    def __init__(self, env: simpy.Environment, cluster: ClusterSpec,
                 aggregate: bool = True) -> None:
        self.env = env
        self.cluster = cluster
        ids, kinds, caps, lats = link_columns(cluster)
        self.links = LinkList(self, ids, kinds)
        self._by_id: dict[str, int] | None = None  # link id -> index, built on first use
        self._cap = np.array(caps, dtype=np.float64)
        self._lat = np.array(lats, dtype=np.float64)
        self._lc = LinkClasses(self._cap, aggregate)  # per-class load, bytes, busy intervals
        # id(path) -> (path, its ClassPath); holding the path keeps its id from being reused
        self._reps: dict[int, tuple[Path, ClassPath]] = {}
        self._active: list[Flow] = []
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
        if self._by_id is None:
            self._by_id = {lid: i for i, lid in enumerate(self.links.ids)}
        try:
            return self.links[self._by_id[link_id]]
        except KeyError:
            raise unknown_name("link", link_id, self._by_id, "link id") from None

    def set_capacity(self, link_id: str, bw_Bps: float) -> None:
        """Change one link's capacity now (bytes/s); running flows adapt immediately."""
        if not bw_Bps > 0:
            raise ConfigError(f"bw_Bps: must be > 0, got {bw_Bps!r}")
        self._settle()
        i = self.link(link_id).index
        self._cap[i] = float(bw_Bps)
        lc = self._lc
        lc.refine(np.array([i], dtype=np.int64), np.ones(1))  # the link becomes its own class
        lc.cap[lc.cls_of[i]] = float(bw_Bps)
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
        rep = self._rep(links)
        self._settle()
        self._occupy(rep, self.env.now)
        self._active.append(flow)
        self._mark_dirty()
        return done

    def _rep(self, path: Path) -> ClassPath:
        """``path`` as link classes; its first sight refines the classes (O(links))."""
        hit = self._reps.get(id(path))
        lc = self._lc
        if hit is not None and hit[0] is path:
            if hit[1].version == lc.version:
                return hit[1]
        else:
            if len(self._reps) >= _MAX_REPS:
                self._reps.clear()
            lc.refine(path.idx, path.weights)
        rep = lc.rep(path.idx, path.weights)
        self._reps[id(path)] = (path, rep)
        return rep

    def _occupy(self, path: ClassPath, now: float) -> None:
        """Add ``path``'s weights to the class loads; idle classes start a busy interval."""
        load, since = self._lc.load, self._lc.since
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
        """Remove a finished flow from the class loads and count its bytes; classes left
        idle close their busy interval. Weights are integers, so a load <= 0.5 means idle."""
        path = self._rep(flow.path)
        lc = self._lc
        load, carried, busy, since = lc.load, lc.carried, lc.busy, lc.since
        nbytes = flow.nbytes
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
        out = self._lc.per_link(self._lc.carried)
        now = self.env.now
        for f in self._active:
            moved = f.nbytes - (f.remaining - f.rate * (now - f.t_last))
            out[f.path.idx] += f.path.weights * moved
        return out

    def busy_time_s(self) -> np.ndarray:
        """Seconds per link during which at least one flow was active on it."""
        lc = self._lc
        on = lc.load[:lc.n] > 0
        return lc.per_link(lc.busy[:lc.n] + np.where(on, self.env.now - lc.since[:lc.n], 0.0))

    def link_stats(self) -> list[dict[str, float | str]]:
        """One record per link: id, kind, capacity_Bps, bytes_carried, busy_s, utilization
        (bytes carried / (capacity x now); 0 at time 0)."""
        carried, busy, now = self.bytes_carried(), self.busy_time_s(), self.env.now
        util = carried / (self._cap * now) if now > 0 else np.zeros(len(self.links))
        return [{"id": lid, "kind": kind, "capacity_Bps": cap, "bytes_carried": c,
                 "busy_s": b, "utilization": u}
                for lid, kind, cap, c, b, u in zip(self.links.ids, self.links.kinds,
                                                   self._cap.tolist(), carried.tolist(),
                                                   busy.tolist(), util.tolist(), strict=True)]

    @property
    def active_flows(self) -> int:
        return len(self._active)

    @property
    def link_classes(self) -> int:
        """Classes of equivalent links so far (:class:`~ddlsim.sim.flows.LinkClasses`)."""
        return self._lc.n

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
        agree bit for bit. They run over link classes, whose members have equal shares, so
        the rounds and float operations are those of the per-link filling (a class's lowest
        link index breaks ties).
        """
        active = self._active
        if not active:
            return
        lc = self._lc
        if len(active) == 1:
            path = self._rep(active[0].path)
            if path.idx.size <= _SHORT_PATH:
                cap = lc.cap
                active[0].rate = float(min(cap[i] / w for i, w in path.pairs))
            else:
                active[0].rate = float(np.min(lc.cap[path.idx] / path.weights))
            return
        key = None
        if len(active) <= _MEMO_MAX_FLOWS:
            key = tuple([id(f.path) for f in active])
            hit = self._memo.get(key)
            if hit is not None:
                for f, rate in zip(active, hit[1], strict=True):
                    f.rate = rate
                return
        reps = [self._rep(f.path) for f in active]
        if sum(len(r.pairs) for r in reps) <= _SMALL_INCIDENCES:
            fill_small(active, reps, lc.cap, lc.minm)
        else:
            n = lc.n
            fill_numpy(active, reps, lc.cap[:n], lc.load[:n], lc.minm[:n])
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
            self._release(f, now)
            f.remaining = 0.0
            self._finish_later(f)
        if finished:
            self._max_min_rates()
        self._schedule_next()
