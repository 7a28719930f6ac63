"""What a parameter-server run is made of (see :mod:`ddlsim.sim.async_ps`): the modes, the
server shards (:func:`plan_shards`, priced by :func:`shard_costs`), a worker step's overlap
segments, the run's options (:class:`PSConfig`) and its result (:class:`PSResult`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.opspec import call
from ddlsim.sim.sync_dp import EstimateFn, NoiseSpec, StepCost

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
    per shard as its pull arrives (see "Overlap" in :mod:`ddlsim.sim.async_ps`; False:
    pull everything, compute, push everything).
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
