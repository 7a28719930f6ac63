"""Parameter-server data parallelism: ASP, SSP, BSP and backup workers, as SimPy processes.

The model
---------
``S`` server shards hold the parameters, split by bytes into contiguous layer ranges
(:func:`plan_shards`). Each shard lives on an *endpoint*: a GPU of the cluster (servers
colocated with workers) or the first device of an extra server host node; its traffic
goes through that endpoint's links (NIC when across nodes). ``W`` workers run one
process each (they interleave, so they cannot share a timeline as in sync DP):

Without overlap (``overlap=False``):

* **pull**: for every shard, one flow ``shard endpoint -> worker GPU`` of the shard's
  bytes (weights travel in the gradient dtype);
* **compute**: forward + backward seconds of :class:`~ddlsim.sim.sync_dp.StepCost`
  (per-kernel times x the worker's slow factor x per-kernel
  :class:`~ddlsim.sim.sync_dp.NoiseSpec` factors drawn from one seeded generator);
* **push**: for every shard, one flow ``worker GPU -> shard endpoint`` of the shard's
  gradient bytes, then the shard applies it.

Flows run on :class:`ddlsim.sim.network.Network` (max-min sharing of every link they
cross). A server serves at most ``server_concurrency`` transfers per direction at a
time (``0``: no limit, all transfers share the links max-min fairly, as TCP flows do;
``1``: one message at a time, the rest queue FIFO). ``1`` keeps the number of concurrent
flows at ``O(S)`` instead of ``O(W)`` and so the simulator fast (see DESIGN.md,
"Simulation fidelity and speed"); with one shard it gives the same saturated throughput
(the server NIC is busy whenever work is queued). With several shards and FIFO, workers
that request at the same instant are served in the same order by every shard, so one
worker's NIC can throttle all shards at once (a convoy): use 0 (or >= 2) there.
A shard applies one update at a time (a ``simpy.Resource`` of capacity 1); its update
time (``Shard.apply_s``: the ``sgd_update`` calls of its layers on the server device,
``Shard.accumulate_s``: the ``grad_sum`` calls, used by the synchronous modes) comes
from the cost model through :func:`shard_costs`.

Modes
-----
``asp``     each worker: pull, compute, push; each shard applies every gradient as it
            arrives; the worker pulls again once its own gradient has been applied on
            every shard (its pull request queues behind its push, as in ps-lite).
``ssp``     as ``asp``, but a worker that has had ``k`` gradients applied may start its
            next pull only when the slowest worker has had at least ``k - s`` applied
            (``staleness_bound`` ``s``; ``s = 0`` is lock-step).
``bsp``     synchronous PS: each shard accumulates the W gradients of iteration ``v``
            (one ``grad_sum`` each), applies one combined update and so reaches version
            ``v + 1``; workers pull once the whole model is at ``v + 1``.
``backup``  as ``bsp`` with ``b`` backup workers (Chen et al. 2016, "Revisiting
            distributed synchronous SGD"): the first ``W - b`` gradients computed on
            version ``v`` are applied; a gradient that is computed later, or on a version
            that is already superseded, is dropped. The drop is decided when the gradient
            is ready (the worker learns the iteration is full and does not push it), so
            dropped gradients use no server bandwidth.

Overlap (``PSConfig.overlap``, opt-in)
--------------------------------------
Real PS frameworks (MXNet KVStore ``dist_sync``/``dist_async``, ps-lite) push each
parameter's gradient as soon as backward produces it and pull per key. With ``overlap``
and ``S > 1`` a worker's step is cut into segments (:func:`overlap_segments`: one per
shard when the :class:`StepCost` has one layer per shard-covered layer; one segment for a
one-layer cost):

* **forward** runs shard by shard in forward order; shard ``j``'s layers start once shard
  ``j``'s pull has arrived (pulls of later shards overlap the forward of earlier ones);
* **backward** runs shard by shard in backward order (the last shard first); shard ``j``'s
  push starts as soon as its layers' backward is done (per-layer backward seconds summed
  with :func:`ddlsim.sim.sync_dp._segment_sums`), overlapping the rest of backward;
* **pulls**: in ``asp``/``ssp`` the pull of shard ``j`` waits only for this worker's
  previous push of ``j`` to be applied (ps-lite orders a key's pull after its push); in
  ``bsp``/``backup`` it waits until shard ``j`` (not the whole model) has applied the
  iteration's combined update. SSP gates an iteration's start on gradients *computed*
  minus the slowest worker's applied count, so the bound still holds. A backup worker's
  drop is decided when its first shard's gradient is ready.

``version_read`` keeps its conservative rule, so with several shards a worker whose read
of an early shard precedes the model-level completion of its own previous gradient counts
that gradient as missing (staleness up to 1 higher than the weights it read); and shards
pulled early are really read earlier, so under a server bottleneck mean staleness can
grow a lot (256 workers, 4 FIFO shards: 253 -> 456 updates). Events per
update stay ``O(S)``. With one shard the schedule is the same as without overlap.
Overlap is not always faster under max-min sharing: early pulls and pushes share links
with the critical last shard's push (no priorities, unlike MXNet's), so with few coarse
shards colocated with the workers it can be slower (tested only where links are not
shared between directions). It is off by default for that reason and for speed: staggered
per-shard transfers give the network more distinct flow sets to solve (the 256-worker,
4-shard benchmark takes about 1.8x longer).

The update log
--------------
One row per **model-level** update (:data:`ddlsim.sim.updates.UPDATE_LOG_COLUMNS`): an
asynchronous gradient counts as applied when every shard has applied it; the model
version is the number of model-level updates applied so far. ``version_read`` is the
model version when the worker's pull was served (with several shards: the version when
the first shard's pull was served, so staleness is never underestimated). Synchronous
modes log one row per iteration with worker ``-1``, ``version_read = v`` and ``n_grads``
= gradients combined (``W`` or ``W - b``); staleness is 0.

Stopping: the run ends at the ``cfg.updates``-th model-level update; work in flight then
is discarded (compute busy time is counted when a compute phase ends).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.opspec import call
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS, run_budgeted
from ddlsim.sim.sync_dp import EstimateFn, NoiseSpec, StepCost, _segment_sums
from ddlsim.sim.updates import update_row

PS_MODES = ("asp", "ssp", "bsp", "backup")


# --------------------------------------------------------------------------- shards
@dataclass(frozen=True)
class Shard:
    """One server shard: layers ``[first_layer, end_layer)`` (forward order).

    ``nbytes``: bytes of its parameters/gradients; ``layer_numels``: parameters of each of
    its layers (> 0 only); ``endpoint``: GPU index (in the cluster) whose links its traffic
    uses; ``apply_s``: seconds of one optimizer update on the server device;
    ``accumulate_s``: seconds of adding one gradient into the accumulation buffer.
    """

    index: int
    first_layer: int
    end_layer: int
    nbytes: float
    layer_numels: tuple[int, ...]
    endpoint: int = 0
    apply_s: float = 0.0
    accumulate_s: float = 0.0

    @property
    def numel(self) -> int:
        return int(sum(self.layer_numels))


def plan_shards(layer_bytes: Sequence[float], num_shards: int, elem_bytes: int,
                endpoints: Sequence[int] | None = None) -> list[Shard]:
    """Split layers (forward order, ``layer_bytes`` per layer in bytes) into ``num_shards``
    contiguous ranges balanced by bytes.

    Cut ``k`` goes at the layer boundary whose cumulative bytes is closest to
    ``k x total / num_shards``, kept strictly increasing so every shard holds at least one
    layer with parameters. ``elem_bytes``: bytes per parameter (for ``numel``);
    ``endpoints``: shard -> GPU index (default 0 for all).
    """
    sizes = np.asarray(layer_bytes, dtype=float)
    with_params = np.flatnonzero(sizes > 0)
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ConfigError(f"num_shards: must be an integer >= 1, got {num_shards!r}")
    if num_shards > with_params.size:
        raise ConfigError(f"num_shards: must be <= {with_params.size} (layers with "
                          f"parameters), got {num_shards}")
    if endpoints is not None and len(endpoints) != num_shards:
        raise ConfigError(f"endpoints: need one per shard ({num_shards}), got {len(endpoints)}")
    # Candidate cut positions: just after each layer with parameters (except the last).
    cum = np.cumsum(sizes)
    total = float(cum[-1])
    cand = with_params[:-1] + 1  # cut before layer index cand
    cuts: list[int] = []
    lo = 0  # index into cand
    for k in range(1, num_shards):
        hi = cand.size - (num_shards - 1 - k)  # leave room for the remaining cuts
        window = cand[lo:hi]
        target = k * total / num_shards
        best = lo + int(np.argmin(np.abs(cum[window - 1] - target)))
        cuts.append(int(cand[best]))
        lo = best + 1
    bounds = [0] + cuts + [sizes.size]
    shards = []
    for j in range(num_shards):
        a, b = bounds[j], bounds[j + 1]
        numels = tuple(int(round(s / elem_bytes)) for s in sizes[a:b] if s > 0)
        shards.append(Shard(index=j, first_layer=a, end_layer=b, nbytes=float(sizes[a:b].sum()),
                            layer_numels=numels,
                            endpoint=int(endpoints[j]) if endpoints is not None else 0))
    return shards


def shard_costs(shards: Sequence[Shard], estimate: EstimateFn, dtype: str) -> list[Shard]:
    """Shards with ``apply_s`` (``sgd_update`` per layer) and ``accumulate_s``
    (``grad_sum`` per layer) priced by ``estimate(call, dtype)`` on the server device."""
    from dataclasses import replace

    out = []
    for s in shards:
        apply_s = sum(estimate(call("sgd_update", numel=n), dtype) for n in s.layer_numels)
        acc_s = sum(estimate(call("grad_sum", numel=n), dtype) for n in s.layer_numels)
        out.append(replace(s, apply_s=float(apply_s), accumulate_s=float(acc_s)))
    return out


# --------------------------------------------------------------------------- overlap
@dataclass(frozen=True)
class _Segments:
    """A worker's step cut into compute segments for the overlapped schedule.

    ``fwd_cuts``/``bwd_cuts``: kernel indices (into fwd kernels followed by bwd kernels)
    bounding the forward segments (forward order) and backward segments (backward order);
    ``fwd_need[g]``: shards whose pull must have arrived before forward segment ``g``;
    ``bwd_push[g]``: shards whose gradients are complete once backward segment ``g`` ends.
    """

    fwd_cuts: np.ndarray
    bwd_cuts: np.ndarray
    fwd_need: tuple[tuple[int, ...], ...]
    bwd_push: tuple[tuple[int, ...], ...]


def overlap_segments(cost: StepCost, shards: Sequence[Shard]) -> _Segments:
    """Segments of ``cost`` for ``shards`` (contiguous layer ranges in forward order).

    When ``cost`` has one layer per shard-covered layer, forward segment ``j`` is shard
    ``j``'s layers and backward segment ``g`` is shard ``S-1-g``'s layers (backward runs
    the last layers first, so the last shard's gradients are ready first). A one-layer
    ``cost`` (no per-layer detail) is one segment that needs every pull and completes every
    shard. Anything else is a ConfigError.
    """
    n_layers = len(cost.fwd_bounds) - 1
    covered = shards[-1].end_layer
    nf = int(cost.fwd_bounds[-1])
    S = len(shards)
    for j, sh in enumerate(shards):
        start = 0 if j == 0 else shards[j - 1].end_layer
        if sh.first_layer != start or sh.end_layer <= sh.first_layer:
            raise ConfigError(f"shards: overlap needs contiguous layer ranges from 0 in "
                              f"shard order, shard {j} is [{sh.first_layer}, {sh.end_layer})")
    if n_layers == covered:
        fb, bb = cost.fwd_bounds, cost.bwd_bounds
        fwd = [int(fb[sh.first_layer]) for sh in shards] + [nf]
        # Backward order index of forward layer l is L-1-l; shard S-1-g covers
        # backward indices [L - end, L - first).
        bwd = [nf + int(bb[n_layers - shards[S - 1 - g].end_layer]) for g in range(S)]
        bwd.append(nf + int(bb[-1]))
        return _Segments(np.array(fwd), np.array(bwd), tuple((j,) for j in range(S)),
                         tuple((S - 1 - g,) for g in range(S)))
    if n_layers == 1:
        everything = tuple(range(S))
        return _Segments(np.array([0, nf]), np.array([nf, nf + int(cost.bwd_bounds[-1])]),
                         (everything,), (everything,))
    raise ConfigError(f"costs: overlap needs one cost layer per shard-covered layer "
                      f"({covered}) or a single layer, got {n_layers} layers")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PSConfig:
    """Options of one parameter-server run (SI units).

    ``mode``: one of :data:`PS_MODES`; ``updates``: model-level updates to apply before the
    run stops; ``batch_per_worker``: samples per gradient; ``staleness_bound``: SSP's ``s``;
    ``backup_workers``: ``b`` of the ``backup`` mode; ``slow_workers``: worker -> compute
    time factor; ``server_concurrency``: transfers a shard serves at once per direction
    (0: no limit, every transfer shares the links max-min fairly as TCP flows do; 1: FIFO,
    the fastest to simulate); ``overlap``: per-shard pushes during backward and forward
    per shard as its pull arrives (see "Overlap" in the module docstring; False: pull
    everything, compute, push everything).
    """

    mode: str = "asp"
    updates: int = 100
    batch_per_worker: int = 32
    staleness_bound: int = 3
    backup_workers: int = 0
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    slow_workers: Mapping[int, float] = field(default_factory=dict)
    server_concurrency: int = 1
    overlap: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.overlap, bool):
            raise ConfigError(f"overlap: must be a bool, got {self.overlap!r}")
        if self.mode not in PS_MODES:
            raise unknown_name("mode", self.mode, PS_MODES, "mode")
        for name, value, minimum in (("updates", self.updates, 1),
                                     ("batch_per_worker", self.batch_per_worker, 1),
                                     ("staleness_bound", self.staleness_bound, 0),
                                     ("backup_workers", self.backup_workers, 0),
                                     ("server_concurrency", self.server_concurrency, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")
        for w, factor in self.slow_workers.items():
            if not (np.isfinite(factor) and factor > 0):
                raise ConfigError(f"slow_workers[{w}]: factor must be > 0, got {factor!r}")


# --------------------------------------------------------------------------- results
@dataclass
class PSResult:
    """What a parameter-server run produced (times in simulated seconds).

    ``update_log``: rows of :data:`~ddlsim.sim.updates.UPDATE_LOG_COLUMNS` (model-level);
    ``compute_busy_s``/``grads_computed``/``grads_applied``/``grads_dropped``: per worker;
    ``dropped_per_iteration``: synchronous modes, version -> gradients dropped that were
    computed on it; ``max_clock_gap``: largest ``k_w - min_v k_v`` seen when a worker
    started an iteration (SSP bound check); ``server_links``: link records of the
    shards' endpoints (id, kind, capacity_Bps, bytes_carried, busy_s, utilization).
    """

    mode: str
    num_workers: int
    num_shards: int
    batch_per_worker: int
    makespan_s: float
    update_log: list[tuple]
    compute_busy_s: np.ndarray
    grads_computed: np.ndarray
    grads_applied: np.ndarray
    grads_dropped: np.ndarray
    dropped_per_iteration: dict[int, int]
    max_clock_gap: int
    server_links: list[dict]
    events: int = 0

    @property
    def num_updates(self) -> int:
        return len(self.update_log)

    @property
    def updates_per_s(self) -> float:
        return self.num_updates / self.makespan_s if self.makespan_s > 0 else 0.0

    @property
    def samples_per_s(self) -> float:
        """Samples whose gradients were applied, per second."""
        n = sum(row[6] for row in self.update_log)
        return n * self.batch_per_worker / self.makespan_s if self.makespan_s > 0 else 0.0

    @property
    def worker_utilization(self) -> np.ndarray:
        """Fraction of the run each worker spent computing."""
        return self.compute_busy_s / self.makespan_s if self.makespan_s > 0 else self.compute_busy_s

    @property
    def staleness(self) -> np.ndarray:
        return np.array([row[5] for row in self.update_log], dtype=np.int64)

    def staleness_stats(self) -> dict[str, float]:
        """Mean, median (p50), 99th percentile and maximum staleness (updates)."""
        s = self.staleness
        if s.size == 0:
            return {"mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
        return {"mean": float(s.mean()), "p50": float(np.percentile(s, 50)),
                "p99": float(np.percentile(s, 99)), "max": float(s.max())}

    def staleness_histogram(self) -> np.ndarray:
        """``h[k]``: number of updates with staleness ``k``."""
        return np.bincount(self.staleness) if self.num_updates else np.zeros(1, dtype=np.int64)


# --------------------------------------------------------------------------- model
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
        return (_segment_sums(row, seg.fwd_cuts)[0], _segment_sums(row, seg.bwd_cuts)[0])

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
