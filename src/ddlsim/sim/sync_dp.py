"""Synchronous data parallelism (allreduce), as a SimPy process.

What one iteration does on every GPU (PyTorch DDP's schedule):

1. wait for the data loader's batch (optional throughput limit, prefetch depth 2) and
   copy it host-to-device over PCIe;
2. forward, layer by layer; backward, layer by layer in reverse;
3. gradients are grouped into buckets (default 25 MB, filled in backward order); a
   bucket's allreduce starts on the communication stream as soon as every GPU has
   produced all its gradients, and overlaps the rest of backward; buckets are
   reduced one after another (one NCCL stream);
4. the optimizer step runs after the last bucket; then the next iteration.

Granularity (DESIGN.md, "Simulation fidelity and speed"): per-GPU compute timelines are
NumPy rows (one shared row when no noise, slow GPU or mixed device separates the GPUs);
only the collectives are SimPy processes, a handful of events per bucket. Stragglers stay
exact: a bucket starts when the slowest GPU has it ready. The allreduce is injected as
``allreduce(env, nbytes) -> generator`` (a SimPy process body): a fixed-cost collective
in tests, the flow-level network of :mod:`ddlsim.sim.collectives` in predictions. ZeRO
(:mod:`ddlsim.sim.zero`): buckets reduce-scatter; ``gather`` all-gathers the weights
after the step (stages 1-2) or before the forward, overlapping it (stage 3).
Activation recomputation (``step_cost(recompute=...)``) is priced by the model-parallel
engine's rule, :func:`ddlsim.sim.tensor_costs.recompute_times`: each recomputed layer's
forward runs again just before its backward, as one more kernel of that layer's backward.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS, run_budgeted
from ddlsim.sim.dp_spans import compute_spans
from ddlsim.sim.tensor_costs import recompute_times
from ddlsim.sim.updates import update_row
from ddlsim.units import dtype_bytes

EstimateFn = Callable[[KernelCall, str], float]
AllreduceFn = Callable[[simpy.Environment, float], Generator]

NOISE_DISTRIBUTIONS = ("none", "normal", "lognormal", "gamma")


# --------------------------------------------------------------------------- costs
@dataclass(frozen=True)
class StepCost:
    """Per-kernel seconds of one training step on one device type, grouped by layer.

    ``fwd_s``/``bwd_s``: seconds of each kernel in execution order (backward kernels in
    backward order); ``fwd_bounds``/``bwd_bounds``: layer i's kernels are
    ``[bounds[i], bounds[i+1])``; ``bwd_grad_bytes``: bytes of gradients layer i of the
    backward order produces; ``update_s``: optimizer step seconds; ``layer_names`` in
    forward order. ``bwd_recompute``: per layer of the backward order, whether the first
    kernel of its backward is its recomputed forward (None: nothing is recomputed).
    """

    layer_names: tuple[str, ...]
    fwd_s: np.ndarray
    fwd_bounds: np.ndarray
    bwd_s: np.ndarray
    bwd_bounds: np.ndarray
    bwd_grad_bytes: np.ndarray
    update_s: float
    bwd_recompute: np.ndarray | None = None

    @property
    def fwd_total_s(self) -> float:
        return float(self.fwd_s.sum())

    @property
    def bwd_total_s(self) -> float:
        return float(self.bwd_s.sum())

    @property
    def compute_s(self) -> float:
        """Forward + backward + update seconds of one step, without communication."""
        return self.fwd_total_s + self.bwd_total_s + self.update_s


def step_cost(workload, estimate: EstimateFn, dtype: str,
              grad_dtype: str | None = None, recompute: str = "none") -> StepCost:
    """Price every kernel of ``workload``'s training step with ``estimate(call, dtype)``.

    ``grad_dtype``: element type of the gradients that are allreduced (default ``dtype``;
    mixed precision keeps fp32 gradients, so pass ``"float32"`` there). ``recompute``:
    ``none`` | ``selective`` | ``full``; a recomputed layer's backward starts with the
    seconds :func:`~ddlsim.sim.tensor_costs.recompute_times` gives it.
    """
    layers = list(workload.layers)
    fwd = [[estimate(kc, dtype) for kc in layer.fwd] for layer in layers]
    bwd = [[estimate(kc, dtype) for kc in layer.bwd] for layer in reversed(layers)]
    redo = None
    if recompute != "none":  # the forward again, just before the layer's backward
        extra = recompute_times(layers, np.array([sum(ts) for ts in fwd]), recompute)[::-1]
        redo = extra > 0
        bwd = [[float(x), *ts] if r else ts for x, r, ts in zip(extra, redo, bwd, strict=True)]
    update_s = float(sum(estimate(kc, dtype) for kc in workload.update))
    grad_size = dtype_bytes(grad_dtype or dtype)
    grad = [layer.param_count * grad_size for layer in reversed(layers)]
    return StepCost(
        layer_names=tuple(layer.name for layer in layers),
        fwd_s=np.array([t for ts in fwd for t in ts], dtype=float),
        fwd_bounds=np.cumsum([0] + [len(ts) for ts in fwd]),
        bwd_s=np.array([t for ts in bwd for t in ts], dtype=float),
        bwd_bounds=np.cumsum([0] + [len(ts) for ts in bwd]),
        bwd_grad_bytes=np.array(grad, dtype=float),
        update_s=update_s,
        bwd_recompute=redo,
    )


def make_buckets(bwd_grad_bytes: np.ndarray, bucket_bytes: float) -> list[tuple[int, float]]:
    """Group gradients into buckets in backward order, as PyTorch DDP does.

    Returns ``[(last_layer_index_in_backward_order, bucket_bytes), ...]``: a bucket is
    closed once it holds at least ``bucket_bytes``; the last one takes the remainder.
    Layers without parameters never close a bucket.
    """
    buckets: list[tuple[int, float]] = []
    filled, last = 0.0, -1
    for i, nbytes in enumerate(bwd_grad_bytes):
        if nbytes <= 0:
            continue
        filled += float(nbytes)
        last = i
        if filled >= bucket_bytes:
            buckets.append((i, filled))
            filled = 0.0
    if filled > 0:
        buckets.append((last, filled))
    return buckets


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class NoiseSpec:
    """Per-kernel multiplicative time noise: mean 1, coefficient of variation ``cv``."""

    distribution: str = "none"
    cv: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in NOISE_DISTRIBUTIONS:
            raise ConfigError(f"noise.distribution: must be one of {NOISE_DISTRIBUTIONS}, "
                              f"got {self.distribution!r}")
        if not (0.0 <= self.cv < 10.0) or not np.isfinite(self.cv):
            raise ConfigError(f"noise.cv: must be in [0, 10), got {self.cv!r}")
        if self.distribution == "normal" and self.cv > 0.3:
            # Clipping negative draws at 0 would raise the mean above 1 beyond this CV.
            raise ConfigError(f"noise.cv: must be <= 0.3 for the normal distribution (its "
                              f"mean stays 1 only then; use lognormal or gamma), got "
                              f"{self.cv!r}")

    @property
    def active(self) -> bool:
        return self.distribution != "none" and self.cv > 0

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Multiplicative factors with mean 1 and the configured CV (never negative)."""
        if not self.active:
            return np.ones(shape)
        cv = self.cv
        if self.distribution == "normal":
            return np.clip(rng.normal(1.0, cv, shape), 0.0, None)
        if self.distribution == "lognormal":
            sigma2 = np.log1p(cv * cv)
            return rng.lognormal(-sigma2 / 2.0, np.sqrt(sigma2), shape)
        k = 1.0 / (cv * cv)  # gamma with mean 1: shape k, scale 1/k
        return rng.gamma(k, 1.0 / k, shape)


@dataclass(frozen=True)
class SyncDPConfig:
    """Options of one synchronous data-parallel run (SI units).

    ``batch_per_gpu``: samples per GPU per iteration; ``bucket_bytes``: DDP bucket size
    (25 MB default, PyTorch DDP's ``bucket_cap_mb=25``); ``overlap``: start bucket
    allreduces during backward (False: after the whole backward); ``h2d_bytes_per_sample``
    and ``h2d_bw_bytes_per_s``: the input copy over PCIe; ``loader_samples_per_s``: data
    loader throughput per GPU (None: unlimited); ``slow_gpus``: rank -> time factor (2.0
    = twice as slow); ``trace_iterations``: iterations whose spans are kept for the trace.
    """

    iterations: int = 10
    batch_per_gpu: int = 32
    bucket_bytes: float = 25e6
    overlap: bool = True
    h2d_bytes_per_sample: float = 0.0
    h2d_bw_bytes_per_s: float = 25e9
    loader_samples_per_s: float | None = None
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    slow_gpus: Mapping[int, float] = field(default_factory=dict)
    trace_iterations: Sequence[int] = ()
    trace_ranks: Sequence[int] = (0,)
    zero: int = 0  # ZeRO: 1-2 gather weights after the step, 3 before forward (+ buckets)
    gather_bytes: float = 0.0  # weight bytes each ZeRO all-gather carries

    def __post_init__(self) -> None:
        checks = [
            ("iterations", self.iterations, self.iterations >= 1, ">= 1"),
            ("batch_per_gpu", self.batch_per_gpu, self.batch_per_gpu >= 1, ">= 1"),
            ("bucket_bytes", self.bucket_bytes, self.bucket_bytes > 0, "> 0"),
            ("h2d_bytes_per_sample", self.h2d_bytes_per_sample,
             self.h2d_bytes_per_sample >= 0, ">= 0"),
            ("h2d_bw_bytes_per_s", self.h2d_bw_bytes_per_s, self.h2d_bw_bytes_per_s > 0, "> 0"),
        ]
        if self.loader_samples_per_s is not None:
            checks.append(("loader_samples_per_s", self.loader_samples_per_s,
                           self.loader_samples_per_s > 0, "> 0"))
        for name, value, ok, rule in checks:
            if not ok or not np.isfinite(value):
                raise ConfigError(f"{name}: must be {rule}, got {value!r}")
        for rank, factor in self.slow_gpus.items():
            if not (np.isfinite(factor) and factor > 0):
                raise ConfigError(f"slow_gpus[{rank}]: factor must be > 0, got {factor!r}")


# --------------------------------------------------------------------------- results
@dataclass
class SyncDPResult:
    """What a run produced. Times are absolute simulated seconds unless named ``*_s``
    durations. ``update_log`` rows follow :data:`ddlsim.sim.updates.UPDATE_LOG_COLUMNS`
    (worker -1: the update combines all workers' gradients)."""

    num_gpus: int
    batch_per_gpu: int
    iteration_end: np.ndarray  # time each iteration's last optimizer step ended
    exposed_comm_s: np.ndarray  # per iteration: time the step was extended by communication
    compute_busy_s: np.ndarray  # per GPU: seconds of compute (h2d + fwd + bwd + update)
    comm_busy_s: float  # seconds the communication stream was busy
    buckets: list[tuple]  # (iteration, bucket, nbytes, ready, start, end)
    update_log: list[tuple]
    spans: list[tuple]  # (track, name, start, duration) for the chosen iterations

    @property
    def iteration_times_s(self) -> np.ndarray:
        return np.diff(np.concatenate([[0.0], self.iteration_end]))

    @property
    def makespan_s(self) -> float:
        return float(self.iteration_end[-1])

    @property
    def samples_per_s(self) -> float:
        return self.num_gpus * self.batch_per_gpu * len(self.iteration_end) / self.makespan_s

    @property
    def compute_idle_s(self) -> np.ndarray:
        return self.makespan_s - self.compute_busy_s


# --------------------------------------------------------------------------- model
def _rank_rows(costs: Sequence[StepCost], cfg: SyncDPConfig, num_gpus: int):
    """Base per-kernel times as matrices with one row per distinct GPU timeline.

    Returns ``(fwd [R,K], bwd [R,K'], update [R], row_of_rank [num_gpus])``. Without noise,
    GPUs of the same device and speed share one row; with noise every GPU has its own.
    """
    if not cfg.noise.active and not cfg.slow_gpus and all(c is costs[0] for c in costs):
        c = costs[0]  # identical GPUs: the one row the loop below would make, in O(1)
        one_row = np.zeros(num_gpus, dtype=int)
        return c.fwd_s[None] * 1.0, c.bwd_s[None] * 1.0, np.array([c.update_s * 1.0]), one_row
    speed = np.ones(num_gpus)
    for rank, factor in cfg.slow_gpus.items():
        if not 0 <= rank < num_gpus:
            raise ConfigError(f"slow_gpus: rank must be in [0, {num_gpus}), got {rank}")
        speed[rank] = factor
    device_index: dict[int, int] = {}
    keys = np.empty(num_gpus, dtype=int)
    rows: dict[tuple, int] = {}
    reps: list[int] = []
    for rank, cost in enumerate(costs):
        dev = device_index.setdefault(id(cost), len(device_index))
        key = (rank,) if cfg.noise.active else (dev, float(speed[rank]))
        if key not in rows:
            rows[key] = len(reps)
            reps.append(rank)
        keys[rank] = rows[key]
    fwd = np.stack([costs[r].fwd_s * speed[r] for r in reps])
    bwd = np.stack([costs[r].bwd_s * speed[r] for r in reps])
    upd = np.array([costs[r].update_s * speed[r] for r in reps])
    return fwd, bwd, upd, keys


def segment_sums(times: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum columns of ``times`` [R,K] over segments ``[bounds[i], bounds[i+1])``."""
    cs = np.concatenate([np.zeros((times.shape[0], 1)), np.cumsum(times, axis=1)], axis=1)
    return cs[:, bounds[1:]] - cs[:, bounds[:-1]]


def sync_dp_process(env: simpy.Environment, costs: Sequence[StepCost], allreduce: AllreduceFn,
                    cfg: SyncDPConfig, rng: np.random.Generator, result_box: list,
                    gather: AllreduceFn | None = None) -> Generator:
    """SimPy process: run ``cfg.iterations`` iterations on ``len(costs)`` GPUs.

    ``costs[rank]``: the StepCost of that GPU's device; ``allreduce(env, nbytes)``: the
    collective's process body (per bucket); ``gather(env, nbytes)``: the ZeRO weight
    all-gather (``cfg.zero``, :mod:`ddlsim.sim.zero`); the result goes to ``result_box``.
    """
    num_gpus = len(costs)
    if num_gpus < 1:
        raise ConfigError(f"costs: need one StepCost per GPU, got {num_gpus}")
    ref = costs[0]
    fwd_base, bwd_base, upd_base, row_of = _rank_rows(costs, cfg, num_gpus)
    rows = fwd_base.shape[0]
    buckets = make_buckets(ref.bwd_grad_bytes, cfg.bucket_bytes)
    h2d_s = cfg.batch_per_gpu * cfg.h2d_bytes_per_sample / cfg.h2d_bw_bytes_per_s
    loader_s = (cfg.batch_per_gpu / cfg.loader_samples_per_s
                if cfg.loader_samples_per_s else 0.0)
    trace_iters = set(cfg.trace_iterations)
    trace_ranks = [(r, int(row_of[r])) for r in cfg.trace_ranks if 0 <= r < num_gpus]

    start = np.full(rows, env.now)
    loader_done: list[np.ndarray] = []  # batch i produced by the loader at loader_done[i]
    consumed: list[np.ndarray] = []  # batch i taken by the GPU at consumed[i]
    iteration_end = np.empty(cfg.iterations)
    exposed = np.empty(cfg.iterations)
    busy = np.zeros(rows)
    comm_busy = 0.0
    bucket_log: list[tuple] = []
    update_log: list[tuple] = []
    spans: list[tuple] = []

    for it in range(cfg.iterations):
        fwd_k = fwd_base * cfg.noise.draw(rng, fwd_base.shape)
        bwd_k = bwd_base * cfg.noise.draw(rng, bwd_base.shape)
        upd = upd_base * cfg.noise.draw(rng, upd_base.shape)
        fwd_l = segment_sums(fwd_k, ref.fwd_bounds)
        bwd_l = segment_sums(bwd_k, ref.bwd_bounds)

        # Data: one loader per GPU producing batches in order, at most two ahead of the
        # GPU (prefetch depth 2): batch i starts once batch i-1 is produced and batch i-2
        # has been taken.
        if loader_s > 0:
            prev = loader_done[it - 1] if it >= 1 else np.full(rows, 0.0)
            slot = consumed[it - 2] if it >= 2 else np.full(rows, 0.0)
            loader_done.append(np.maximum(prev, slot) + loader_s)
            data_ready = np.maximum(start, loader_done[it])
            consumed.append(data_ready)
        else:
            data_ready = start
        t_fwd = data_ready + h2d_s
        fwd_end = t_fwd + fwd_l.sum(axis=1)
        if cfg.zero == 3 and gather is not None:  # prefetched weights: overlap the forward
            yield env.timeout(max(float(data_ready.max()) - env.now, 0.0))
            yield env.process(gather(env, cfg.gather_bytes))
            fwd_end = np.maximum(fwd_end, env.now)
        bwd_layer_end = fwd_end[:, None] + np.cumsum(bwd_l, axis=1)
        bwd_end = bwd_layer_end[:, -1] if bwd_l.shape[1] else fwd_end

        # Communication stream: buckets in order, each after every GPU has it ready.
        comm_end = env.now
        tracing = it in trace_iters
        for b, (last_layer, nbytes) in enumerate(buckets):
            ready = float(bwd_layer_end[:, last_layer].max() if cfg.overlap else bwd_end.max())
            begin = max(ready, comm_end)
            if begin > env.now:
                yield env.timeout(begin - env.now)
            yield env.process(allreduce(env, nbytes))
            comm_end = env.now
            comm_busy += comm_end - begin
            bucket_log.append((it, b, nbytes, ready, begin, comm_end))
            if tracing:
                for r, _ in trace_ranks:
                    spans.append((f"gpu{r} comm", f"allreduce bucket {b}", begin,
                                  comm_end - begin))
        upd_start = np.maximum(bwd_end, comm_end)
        upd_end = upd_start + upd
        iteration_end[it] = float(upd_end.max())
        if cfg.zero in (1, 2) and gather is not None:  # updated weight shards, exposed
            yield env.timeout(iteration_end[it] - env.now)
            yield env.process(gather(env, cfg.gather_bytes))
            upd_end = np.full(rows, env.now)
            iteration_end[it] = env.now
        exposed[it] = iteration_end[it] - float((bwd_end + upd).max())
        busy += h2d_s + fwd_l.sum(axis=1) + bwd_l.sum(axis=1) + upd
        update_log.append(update_row(it, float(iteration_end[it]), -1, it, it + 1, num_gpus))
        if tracing:
            for r, row in trace_ranks:
                spans.extend(compute_spans(r, ref, t_fwd[row], fwd_l[row], fwd_end[row],
                                            bwd_l[row], upd_start[row], upd[row], h2d_s,
                                            bwd_k[row]))
        if iteration_end[it] > env.now:
            yield env.timeout(iteration_end[it] - env.now)
        start = upd_end

    result_box.append(SyncDPResult(
        num_gpus=num_gpus, batch_per_gpu=cfg.batch_per_gpu, iteration_end=iteration_end,
        exposed_comm_s=exposed, compute_busy_s=busy[row_of], comm_busy_s=comm_busy,
        buckets=bucket_log, update_log=update_log, spans=spans,
    ))


def simulate_sync_dp(costs: Sequence[StepCost], allreduce: AllreduceFn, cfg: SyncDPConfig,
                     seed: int = 0, env: simpy.Environment | None = None,
                     max_events: int = DEFAULT_MAX_EVENTS, gather: AllreduceFn | None = None
                     ) -> SyncDPResult:
    """Run a synchronous data-parallel job to completion and return its result.

    ``max_events``: event budget (:mod:`ddlsim.sim.budget`); SimulationError beyond it."""
    env = env or simpy.Environment()
    box: list[SyncDPResult] = []
    env.process(sync_dp_process(env, costs, allreduce, cfg, np.random.default_rng(seed), box,
                              gather))
    run_budgeted(env, max_events=max_events, what="sync data-parallel simulation")
    return box[0]
