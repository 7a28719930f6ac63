"""The parameter-server SimPy model (see :mod:`ddlsim.sim.async_ps` for the semantics): the
state of one run with its worker loops, :func:`ps_process` and :func:`simulate_ps`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS, run_budgeted
from ddlsim.sim.ps_setup import PSConfig, PSResult, Shard, overlap_segments
from ddlsim.sim.sync_dp import StepCost, segment_sums
from ddlsim.sim.updates import update_row


class _PS:
    """State of one run; the worker loops are its generator methods."""

    def __init__(self, env: simpy.Environment, net, costs: Sequence[StepCost],
                 worker_gpus: Sequence[int], shards: Sequence[Shard], cfg: PSConfig,
                 rng: np.random.Generator) -> None:
        self.env, self.net, self.cfg, self.rng = env, net, cfg, rng
        self.W, self.S = len(worker_gpus), len(shards)
        self.shards = list(shards)
        speed = np.ones(self.W)
        for w, f in cfg.slow_workers.items():
            if not 0 <= w < self.W:
                raise ConfigError(f"slow_workers: worker must be in [0, {self.W}), got {w}")
            speed[w] = f
        self.base = [np.concatenate([c.fwd_s, c.bwd_s]) * speed[w] for w, c in enumerate(costs)]
        self.const = [float(b.sum()) for b in self.base]
        self.overlap = cfg.overlap and self.S > 1  # one shard: the same schedule either way
        if self.overlap:
            segs = {id(c): overlap_segments(c, shards) for c in costs}
            self.segs = [segs[id(c)] for c in costs]
            self.seg_const = [self._seg_times(w, self.base[w]) for w in range(self.W)]
        self.pull_paths = [[net.route(s.endpoint, g) for s in shards] for g in worker_gpus]
        self.push_paths = [[net.route(g, s.endpoint) for s in shards] for g in worker_gpus]
        cap = cfg.server_concurrency or self.W
        self.tx = [simpy.Resource(env, capacity=cap) for _ in shards]
        self.rx = [simpy.Resource(env, capacity=cap) for _ in shards]
        self.apply_lock = [simpy.Resource(env, capacity=1) for _ in shards]
        self.version = 0  # model-level updates applied
        self.version_event = env.event()
        self.done = env.event()
        self.log: list[tuple] = []
        self.busy = np.zeros(self.W)
        self.computed = np.zeros(self.W, dtype=np.int64)
        self.applied = np.zeros(self.W, dtype=np.int64)
        self.dropped = np.zeros(self.W, dtype=np.int64)
        self.dropped_per_iter: dict[int, int] = {}
        # SSP clocks: applied count per worker; histogram of clock values for the minimum.
        self.clock_count: dict[int, int] = {0: self.W}
        self.min_clock = 0
        self.min_event = env.event()
        self.max_gap = 0
        # Synchronous modes: per version, accepted gradients and per-shard arrivals.
        self.quota = self.W - (cfg.backup_workers if cfg.mode == "backup" else 0)
        self.accepted: dict[int, int] = {}
        self.arrived = [dict() for _ in shards]  # version -> count
        self.shards_done: dict[int, int] = {}
        # Per shard: combined updates applied (synchronous modes) and its change event.
        self.shard_version = [0] * self.S
        self.shard_event = [env.event() for _ in shards]

    # -- pieces --------------------------------------------------------------------------
    def _compute_s(self, w: int) -> float:
        if not self.cfg.noise.active:
            return self.const[w]
        base = self.base[w]
        return float(base @ self.cfg.noise.draw(self.rng, base.shape))

    def _seg_times(self, w: int, kernels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward and backward segment seconds of worker ``w`` for per-kernel ``kernels``."""
        seg = self.segs[w]
        row = kernels[None, :]
        return (segment_sums(row, seg.fwd_cuts)[0], segment_sums(row, seg.bwd_cuts)[0])

    def _compute_segments(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        """This iteration's segment seconds (same noise draws as :meth:`_compute_s`)."""
        if not self.cfg.noise.active:
            return self.seg_const[w]
        base = self.base[w]
        return self._seg_times(w, base * self.cfg.noise.draw(self.rng, base.shape))

    def _pull_one(self, w: int, j: int, box: list):
        with self.tx[j].request() as req:
            yield req
            box.append(self.version)
            yield self.net.transfer(self.pull_paths[w][j], self.shards[j].nbytes)

    def _pull(self, w: int):
        """Pull every shard; returns the model version read."""
        if self.S == 1:
            with self.tx[0].request() as req:
                yield req
                v = self.version
                yield self.net.transfer(self.pull_paths[w][0], self.shards[0].nbytes)
            return v
        box: list[int] = []
        yield self.env.all_of([self.env.process(self._pull_one(w, j, box))
                               for j in range(self.S)])
        return min(box)

    def _push_apply_one(self, w: int, j: int):
        with self.rx[j].request() as req:
            yield req
            yield self.net.transfer(self.push_paths[w][j], self.shards[j].nbytes)
        with self.apply_lock[j].request() as req:
            yield req
            if self.shards[j].apply_s > 0:
                yield self.env.timeout(self.shards[j].apply_s)

    def _push_accumulate_one(self, w: int, j: int, v: int):
        with self.rx[j].request() as req:
            yield req
            yield self.net.transfer(self.push_paths[w][j], self.shards[j].nbytes)
        shard = self.shards[j]
        with self.apply_lock[j].request() as req:
            yield req
            if shard.accumulate_s > 0:
                yield self.env.timeout(shard.accumulate_s)
            n = self.arrived[j].get(v, 0) + 1
            self.arrived[j][v] = n
            if n == self.quota:
                del self.arrived[j][v]
                if shard.apply_s > 0:
                    yield self.env.timeout(shard.apply_s)
                self.shard_version[j] = v + 1
                ev, self.shard_event[j] = self.shard_event[j], self.env.event()
                ev.succeed()
                self._shard_reached(v)

    def _shard_reached(self, v: int) -> None:
        n = self.shards_done.get(v, 0) + 1
        if n < self.S:
            self.shards_done[v] = n
            return
        self.shards_done.pop(v, None)
        self._record(-1, v, self.quota)

    def _record(self, worker: int, v_read: int, n_grads: int) -> None:
        if self.done.triggered:
            return
        self.log.append(update_row(len(self.log), self.env.now, worker, v_read,
                                   self.version + 1, n_grads))
        self.version += 1
        ev, self.version_event = self.version_event, self.env.event()
        ev.succeed()
        if len(self.log) >= self.cfg.updates:
            self.done.succeed()

    def _tick_clock(self, w: int) -> None:
        """Worker ``w`` had one more gradient applied (SSP clocks)."""
        k = int(self.applied[w])
        self.applied[w] = k + 1
        cc = self.clock_count
        cc[k] -= 1
        cc[k + 1] = cc.get(k + 1, 0) + 1
        if k == self.min_clock and cc[k] == 0:
            del cc[k]
            self.min_clock = k + 1
            ev, self.min_event = self.min_event, self.env.event()
            ev.succeed()

    # -- worker loops ----------------------------------------------------------------------
    def async_worker(self, w: int):
        env, ssp, s = self.env, self.cfg.mode == "ssp", self.cfg.staleness_bound
        while True:
            if ssp:
                while self.applied[w] - self.min_clock > s:
                    yield self.min_event
                self.max_gap = max(self.max_gap, int(self.applied[w] - self.min_clock))
            v_read = yield from self._pull(w)
            t = self._compute_s(w)
            yield env.timeout(t)
            self.busy[w] += t
            self.computed[w] += 1
            if self.S == 1:
                yield from self._push_apply_one(w, 0)
            else:
                yield env.all_of([env.process(self._push_apply_one(w, j))
                                  for j in range(self.S)])
            self._record(w, v_read, 1)
            self._tick_clock(w)

    def sync_worker(self, w: int):
        env = self.env
        next_v = 0
        while True:
            while self.version < next_v:
                yield self.version_event
            v_read = yield from self._pull(w)
            t = self._compute_s(w)
            yield env.timeout(t)
            self.busy[w] += t
            self.computed[w] += 1
            n = self.accepted.get(v_read, 0)
            if self.version == v_read and n < self.quota:
                self.accepted[v_read] = n + 1
                self.applied[w] += 1
                if self.S == 1:
                    yield from self._push_accumulate_one(w, 0, v_read)
                else:
                    yield env.all_of([env.process(self._push_accumulate_one(w, j, v_read))
                                      for j in range(self.S)])
            else:
                self.dropped[w] += 1
                self.dropped_per_iter[v_read] = self.dropped_per_iter.get(v_read, 0) + 1
            next_v = v_read + 1


    # -- overlapped schedule (cfg.overlap, S > 1) ----------------------------------------
    def _pull_after(self, w: int, j: int, box: list, after, min_shard_version: int):
        """Pull shard ``j`` once ``after`` (this worker's previous push of ``j`` applied;
        None: nothing) has fired and shard ``j`` has reached ``min_shard_version`` combined
        updates. Appends to ``box`` the model version (async modes) or the shard's version
        (synchronous modes) when the pull is served."""
        if after is not None and not after.processed:
            yield after
        while self.shard_version[j] < min_shard_version:
            yield self.shard_event[j]
        with self.tx[j].request() as req:
            yield req
            box.append(self.version if self.cfg.mode in ("asp", "ssp")
                       else self.shard_version[j])
            yield self.net.transfer(self.pull_paths[w][j], self.shards[j].nbytes)

    def _overlapped_step(self, w: int, pulls: list, push):
        """Forward segment by segment (each once its shards' pulls arrived), then backward
        segment by segment, calling ``push(j)`` for each shard as its gradients complete.
        Returns the compute seconds."""
        env, seg = self.env, self.segs[w]
        fwd_s, bwd_s = self._compute_segments(w)
        pending = 0.0  # forward seconds not yet waited for (merged while pulls are in)
        for need, t in zip(seg.fwd_need, fwd_s, strict=True):
            for j in need:
                if not pulls[j].processed:
                    if pending > 0:
                        yield env.timeout(pending)
                        pending = 0.0
                    if not pulls[j].processed:
                        yield pulls[j]
            pending += t
        if pending > 0:
            yield env.timeout(pending)
        for shards, t in zip(seg.bwd_push, bwd_s, strict=True):
            if t > 0:
                yield env.timeout(t)
            for j in shards:
                push(j)
        total = float(fwd_s.sum() + bwd_s.sum())
        self.busy[w] += total
        self.computed[w] += 1
        return total

    def _push_apply_counted(self, w: int, j: int, ticket: list):
        """Push + apply shard ``j`` (the process ends once applied); the last shard of the
        gradient records the model-level update. ``ticket``: [shards left, version read]."""
        yield from self._push_apply_one(w, j)
        ticket[0] -= 1
        if ticket[0] == 0:
            self._record(w, ticket[1], 1)
            self._tick_clock(w)

    def async_worker_overlap(self, w: int):
        """ASP/SSP, overlapped: the pull of shard ``j`` waits only for this worker's
        previous push of ``j`` to be applied; SSP gates the start of an iteration on
        gradients *computed* (applied or in flight) minus the slowest worker's applied."""
        env, ssp, s = self.env, self.cfg.mode == "ssp", self.cfg.staleness_bound
        applied: list = [None] * self.S  # per shard: previous push applied
        while True:
            if ssp:
                while self.computed[w] - self.min_clock > s:
                    yield self.min_event
                self.max_gap = max(self.max_gap, int(self.computed[w] - self.min_clock))
            box: list[int] = []
            pulls = [env.process(self._pull_after(w, j, box, applied[j], 0))
                     for j in range(self.S)]
            ticket = [self.S, None]

            def push(j, ticket=ticket, box=box):
                if ticket[1] is None:
                    ticket[1] = min(box)  # every pull has arrived before any push
                applied[j] = env.process(self._push_apply_counted(w, j, ticket))

            yield from self._overlapped_step(w, pulls, push)

    def sync_worker_overlap(self, w: int):
        """BSP/backup, overlapped: the pull of shard ``j`` for iteration ``v`` starts once
        shard ``j`` has applied update ``v`` (not the whole model); the backup-worker drop
        is decided when the gradient's first shard is ready."""
        env = self.env
        next_v = 0
        while True:
            box: list[int] = []
            pulls = [env.process(self._pull_after(w, j, box, None, next_v))
                     for j in range(self.S)]
            state: list = [None]  # accepted? decided at the first push

            def push(j, state=state, box=box):
                v_read = min(box)
                if state[0] is None:
                    n = self.accepted.get(v_read, 0)
                    state[0] = self.version == v_read and n < self.quota
                    if state[0]:
                        self.accepted[v_read] = n + 1
                        self.applied[w] += 1
                    else:
                        self.dropped[w] += 1
                        self.dropped_per_iter[v_read] = self.dropped_per_iter.get(v_read, 0) + 1
                if state[0]:
                    env.process(self._push_accumulate_one(w, j, v_read))

            yield from self._overlapped_step(w, pulls, push)
            next_v = min(box) + 1

def ps_process(env: simpy.Environment, net, costs: Sequence[StepCost],
               worker_gpus: Sequence[int], shards: Sequence[Shard], cfg: PSConfig,
               rng: np.random.Generator, result_box: list):
    """SimPy process: run a parameter-server job until ``cfg.updates`` model-level updates.

    Args:
        env: the environment ``net`` runs in.
        net: a :class:`ddlsim.sim.network.Network` over the cluster.
        costs: one :class:`StepCost` per worker (its device's kernel seconds).
        worker_gpus: cluster GPU index of each worker.
        shards: from :func:`plan_shards` (+ :func:`shard_costs`), ``endpoint`` set.
        cfg: the run's options; rng: the only source of randomness.
        result_box: the :class:`PSResult` is appended to it.
    """
    W = len(worker_gpus)
    if W < 1 or len(costs) != W:
        raise ConfigError(f"costs: need one StepCost per worker ({W}), got {len(costs)}")
    if not shards:
        raise ConfigError("shards: need at least one shard, got 0")
    if cfg.mode == "backup" and not cfg.backup_workers < W:
        raise ConfigError(f"backup_workers: must be < workers ({W}), got {cfg.backup_workers}")
    state = _PS(env, net, costs, worker_gpus, shards, cfg, rng)
    if cfg.mode in ("asp", "ssp"):
        body = state.async_worker_overlap if state.overlap else state.async_worker
    else:
        body = state.sync_worker_overlap if state.overlap else state.sync_worker
    for w in range(W):
        env.process(body(w))
    start = env.now
    yield state.done
    ids = set()
    cluster = net.cluster
    for s in shards:
        ids.update({f"gpu{s.endpoint}.tx", f"gpu{s.endpoint}.rx"})
        if cluster.nodes > 1:
            nic = cluster.nic_of(s.endpoint)
            ids.update({f"nic{nic}.tx", f"nic{nic}.rx"})
    links = [rec for rec in net.link_stats() if rec["id"] in ids]
    result_box.append(PSResult(
        mode=cfg.mode, num_workers=W, num_shards=len(shards),
        batch_per_worker=cfg.batch_per_worker, makespan_s=env.now - start,
        update_log=state.log, compute_busy_s=state.busy, grads_computed=state.computed,
        grads_applied=state.applied.copy(), grads_dropped=state.dropped,
        dropped_per_iteration=dict(state.dropped_per_iter), max_clock_gap=state.max_gap,
        server_links=links))


def simulate_ps(net, costs: Sequence[StepCost], worker_gpus: Sequence[int],
                shards: Sequence[Shard], cfg: PSConfig, seed: int = 0,
                max_events: int = DEFAULT_MAX_EVENTS) -> PSResult:
    """Run a parameter-server job on ``net`` (whose ``env`` is used) and return its result.

    ``max_events``: event budget (:mod:`ddlsim.sim.budget`); SimulationError beyond it."""
    env = net.env
    box: list[PSResult] = []
    proc = env.process(ps_process(env, net, costs, worker_gpus, shards, cfg,
                                  np.random.default_rng(seed), box))
    run_budgeted(env, until=proc, max_events=max_events,
                 what="parameter-server simulation")
    return box[0]
