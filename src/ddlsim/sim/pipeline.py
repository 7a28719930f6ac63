"""Pipeline schedules as SimPy processes: naive model parallelism, GPipe and 1F1B.

One process per stage runs that stage's ordered list of operations, ``F j`` (forward of
micro-batch ``j``) and ``B j`` (backward). A forward waits for micro-batch ``j``'s
activations from the previous stage, a backward for its gradient from the next stage;
when an operation ends its output is sent to the neighbour on a separate communication
stream (``send(env, src_stage, dst_stage, nbytes)``, injected: a fixed cost in tests, a
flow over the topology's links in :mod:`ddlsim.api.pipeline`). After its last backward a
stage allreduces its gradients across data-parallel replicas (``allreduce(env, stage,
nbytes)``, injected) and runs its optimizer step; the next iteration starts when every
stage has stepped (global gradient-norm clipping synchronises them in Megatron-LM).

Orders per stage ``k`` of ``p`` with ``m`` micro-batches:

* ``naive``: ``F0 B0 F1 B1 ...``: one micro-batch in the pipeline at a time (with
  ``m = 1`` this is plain model parallelism; utilisation ``1/p`` for uniform stages).
* ``gpipe``: ``F0 .. F(m-1)`` then ``B0 .. B(m-1)`` (flush at the end): ``m``
  micro-batches of activations in flight (Huang et al. 2019, arXiv 1811.06965).
* ``1f1b`` (PipeDream-Flush, Narayanan et al. 2021, arXiv 2006.09503): ``w = min(p-k-1,
  m)`` warm-up forwards, then alternating ``F``/``B``, then the remaining backwards: at
  most ``p - k`` micro-batches in flight.
* ``1f1b`` with ``vp = v > 1`` (interleaved 1F1B, Narayanan et al. SC'21, arXiv
  2104.04473, Sec. 2.2.2): the model is cut into ``p v`` virtual stages (chunks) and GPU
  ``k`` holds chunks ``k, k + p, ..., k + (v-1) p``, so a micro-batch crosses every GPU
  ``v`` times. Order as Megatron-Core (``get_schedule_table`` / ``get_pp_rank_microbatches``
  in ``megatron/core/pipeline_parallel/schedules.py``): the ``m v`` forward steps run
  micro-batches in groups of ``p``, all chunks of one group in chunk order before the next
  group; backward step ``i`` is forward step ``i``'s micro-batch on the mirrored chunk
  ``v-1-c``; ``min(2 (p-k-1) + (v-1) p, m v)`` warm-up forwards, then alternating, then
  the remaining backwards. Needs ``m % p == 0``. With equal chunks and free communication
  the pipeline bubble is ``(p-1)/v`` stage-times instead of ``p-1``: iteration time
  ``(m + (p-1)/v) (t_f + t_b)``, and every micro-batch makes ``p v - 1`` sends each way
  instead of ``p - 1``.

Identical data-parallel replicas and the GPUs of a tensor-parallel group are folded: one
representative pipeline is simulated (see :mod:`ddlsim.sim.tensor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import simpy

from ddlsim.errors import ConfigError
from ddlsim.sim.budget import DEFAULT_MAX_EVENTS, run_budgeted
from ddlsim.sim.memory import SCHEDULES, check_name
from ddlsim.sim.updates import update_row

SendFn = Callable[[simpy.Environment, int, int, float], Generator]
AllreduceFn = Callable[[simpy.Environment, int, float], Generator]


@dataclass(frozen=True)
class StageCost:
    """What one stage costs per micro-batch (s) and what it sends (B).

    ``fwd_s`` / ``bwd_s``: forward and backward of one micro-batch (backward includes any
    recomputation and tensor-parallel collectives); ``act_bytes``: activations sent to
    the next stage per micro-batch; ``grad_bytes``: gradient sent to the previous stage
    per micro-batch (the size of this stage's input); ``update_s``: optimizer step;
    ``dp_bytes``: gradient bytes this stage's GPU allreduces across replicas.
    """

    fwd_s: float
    bwd_s: float
    act_bytes: float = 0.0
    grad_bytes: float = 0.0
    update_s: float = 0.0
    dp_bytes: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fwd_s", "bwd_s", "act_bytes", "grad_bytes", "update_s", "dp_bytes"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """``schedule``: naive | gpipe | 1f1b; ``micro_batches``: m per iteration and
    replica; ``iterations``; ``dp``: data-parallel replicas (for the update log); ``vp``:
    model chunks per GPU (``> 1``: interleaved 1F1B; the costs are then one per virtual
    stage, ``p vp`` of them); ``grad_bucket_bytes`` ``> 0``: overlap the data-parallel
    gradient reduction with the backward (Megatron-Core ``overlap_grad_reduce``, NeMo
    ``overlap_grad_sync``): a chunk's ``dp_bytes`` leave in ``b = ceil(dp_bytes /
    grad_bucket_bytes)`` equal buckets during its last backward, the i-th ready ``i/b``
    of the way through it, reduced one after another on the GPU's communication stream;
    0: one reduction after the last backward."""

    schedule: str = "1f1b"
    micro_batches: int = 4
    iterations: int = 1
    dp: int = 1
    vp: int = 1
    grad_bucket_bytes: float = 0.0

    def __post_init__(self) -> None:
        check_name("schedule", self.schedule, SCHEDULES)
        for name in ("micro_batches", "iterations", "dp", "vp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if not (isinstance(self.grad_bucket_bytes, int | float)
                and 0 <= self.grad_bucket_bytes < float("inf")):
            raise ConfigError(f"grad_bucket_bytes: must be a finite number >= 0, got "
                              f"{self.grad_bucket_bytes!r}")
        if self.vp > 1 and self.schedule != "1f1b":
            raise ConfigError(f"vp: virtual pipeline stages (vp={self.vp}) need the 1f1b "
                              f"schedule (interleaved 1F1B), got schedule {self.schedule!r}")


def check_interleaving(stages: int, micro_batches: int, vp: int) -> None:
    """ConfigError unless ``vp`` chunks per GPU can interleave on ``stages`` GPUs with
    ``micro_batches`` micro-batches (Megatron: ``pp >= 2`` and ``m % pp == 0``)."""
    if vp == 1:
        return
    if stages < 2:
        raise ConfigError(f"vp: the interleaved schedule (vp={vp}) needs at least 2 pipeline "
                          f"stages, got pp={stages}")
    if micro_batches % stages:
        raise ConfigError(f"micro_batches: the interleaved schedule (vp={vp}) runs "
                          f"micro-batches in groups of pp={stages}, so it needs a multiple "
                          f"of {stages}, got {micro_batches}")


def interleaved_order(stage: int, stages: int, m: int, vp: int
                      ) -> list[tuple[str, int, int]]:
    """``('F'|'B', chunk, micro_batch)`` operations GPU ``stage`` runs under interleaved
    1F1B with ``vp`` chunks per GPU (Megatron-Core's order, see the module docstring);
    chunk ``c`` of GPU ``k`` is virtual stage ``c * stages + k``."""
    check_interleaving(stages, m, vp)
    table = [(j, c) for g0 in range(0, m, stages) for c in range(vp)
             for j in range(g0, g0 + stages)]
    total = m * vp
    warm = min(2 * (stages - stage - 1) + (vp - 1) * stages, total)

    def fwd(i: int) -> tuple[str, int, int]:
        return ("F", table[i][1], table[i][0])

    def bwd(i: int) -> tuple[str, int, int]:
        return ("B", vp - 1 - table[i][1], table[i][0])

    ops = [fwd(i) for i in range(warm)]
    for i in range(total - warm):
        ops += [fwd(warm + i), bwd(i)]
    return ops + [bwd(i) for i in range(total - warm, total)]


def stage_order(schedule: str, stage: int, stages: int, m: int) -> list[tuple[str, int]]:
    """The ``('F'|'B', micro_batch)`` operations stage ``stage`` runs, in order."""
    check_name("schedule", schedule, SCHEDULES)
    if schedule == "naive":
        return [op for j in range(m) for op in (("F", j), ("B", j))]
    if schedule == "gpipe":
        return [("F", j) for j in range(m)] + [("B", j) for j in range(m)]
    warm = min(stages - stage - 1, m)
    ops = [("F", j) for j in range(warm)]
    for i in range(m - warm):
        ops += [("F", warm + i), ("B", i)]
    ops += [("B", j) for j in range(m - warm, m)]
    return ops


@dataclass
class PipelineResult:
    """What a pipeline run did. Times are absolute simulated seconds.

    ``stages``: GPUs of the pipeline (``p``); ``vp``: model chunks per GPU. ``ops``:
    ``(iteration, stage, kind, micro_batch, start, end)`` for every compute operation (kind
    ``F``/``B``; ``stage`` is the GPU), ``op_chunks``: the chunk of each (0 without
    interleaving); ``sends``: ``(iteration, src, dst, kind, micro_batch, start, end)``
    between GPUs; ``allreduces``: ``(iteration, stage, nbytes, start, end)``; ``updates``:
    ``(iteration, stage, start, end)``; ``peak_in_flight``: per GPU, the most
    (chunk, micro-batch) activations held at once; ``update_log``: one row per iteration
    (:mod:`ddlsim.sim.updates`).
    """

    stages: int
    micro_batches: int
    schedule: str
    iteration_end: list[float]
    ops: list[tuple] = field(default_factory=list)
    sends: list[tuple] = field(default_factory=list)
    allreduces: list[tuple] = field(default_factory=list)
    updates: list[tuple] = field(default_factory=list)
    peak_in_flight: list[int] = field(default_factory=list)
    update_log: list[tuple] = field(default_factory=list)
    vp: int = 1
    op_chunks: list[int] = field(default_factory=list)

    @property
    def iteration_times_s(self) -> list[float]:
        ends = [0.0, *self.iteration_end]
        return [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]

    @property
    def makespan_s(self) -> float:
        return self.iteration_end[-1]

    @property
    def sends_per_iteration(self) -> float:
        """Point-to-point sends between GPUs per iteration (activations and gradients):
        ``2 m (p - 1)`` for a plain pipeline, ``2 m (p v - 1)`` interleaved."""
        return len(self.sends) / len(self.iteration_end) if self.iteration_end else 0.0

    def busy_s(self) -> list[float]:
        """Compute seconds (forward + backward) per stage over the run."""
        busy = [0.0] * self.stages
        for _, k, _, _, start, end in self.ops:
            busy[k] += end - start
        return busy

    @property
    def bubble_fraction(self) -> float:
        """Share of GPU-time not spent computing F/B over the makespan (mean over the GPUs):
        ``1 - sum(busy) / (p * makespan)``. Equal stages, free communication, no optimizer
        time: ``(p-1)/m / (1 + (p-1)/m)`` (GPipe, 1F1B), ``(p-1)/(v m) / (1 + (p-1)/(v m))``
        interleaved."""
        busy = self.busy_s()
        return 1.0 - sum(busy) / (self.stages * self.makespan_s)


def _orders(cfg: PipelineConfig, p: int) -> list[list[tuple[str, int, int]]]:
    """Per GPU, its ``(kind, virtual stage, micro_batch)`` operations."""
    m, v = cfg.micro_batches, cfg.vp
    if v == 1:
        return [[(kind, k, j) for kind, j in stage_order(cfg.schedule, k, p, m)]
                for k in range(p)]
    return [[(kind, c * p + k, j) for kind, c, j in interleaved_order(k, p, m, v)]
            for k in range(p)]


def pipeline_process(env: simpy.Environment, costs: Sequence[StageCost], cfg: PipelineConfig,
                     send: SendFn | None, allreduce: AllreduceFn | None,
                     result: PipelineResult) -> Generator:
    """SimPy process: run ``cfg.iterations`` iterations of the pipeline ``costs`` (one per
    virtual stage: ``p * cfg.vp``)."""
    v, m = cfg.vp, cfg.micro_batches
    n = len(costs)
    p = n // v
    orders = _orders(cfg, p)
    in_flight = [0] * p
    peak = [0] * p

    def transfer(it, src, dst, kind, j, nbytes, done):
        start = env.now
        if send is not None and nbytes > 0:
            yield from send(env, src, dst, nbytes)
        result.sends.append((it, src, dst, kind, j, start, env.now))
        done.succeed()

    last_bwd = {(k, vs): i for k, order in enumerate(orders)  # the chunk's last backward
                for i, (kind, vs, _) in enumerate(order) if kind == "B"}

    def buckets(it, k, stream, vs, start):
        """Reduce chunk ``vs``'s gradients in ``nb`` buckets during its last backward."""
        cost = costs[vs]
        nb = max(1, math.ceil(cost.dp_bytes / cfg.grad_bucket_bytes))
        for i in range(1, nb + 1):
            ready = start + cost.bwd_s * i / nb
            if ready > env.now:
                yield env.timeout(ready - env.now)
            with stream.request() as turn:
                yield turn
                t0 = env.now
                yield from allreduce(env, k, cost.dp_bytes / nb)
                result.allreduces.append((it, k, cost.dp_bytes / nb, t0, env.now))

    def stage(it, k, act_ready, grad_ready, finished):
        overlap = cfg.grad_bucket_bytes > 0 and allreduce is not None
        stream = simpy.Resource(env, capacity=1) if overlap else None
        pending = []
        for idx, (kind, vs, j) in enumerate(orders[k]):
            cost = costs[vs]
            if kind == "F":
                if vs > 0:
                    yield act_ready[vs][j]
                in_flight[k] += 1
                peak[k] = max(peak[k], in_flight[k])
                start = env.now
                yield env.timeout(cost.fwd_s)
                result.ops.append((it, k, "F", j, start, env.now))
                result.op_chunks.append(vs // p)
                if vs < n - 1:
                    env.process(transfer(it, k, (vs + 1) % p, "act", j, cost.act_bytes,
                                         act_ready[vs + 1][j]))
            else:
                if vs < n - 1:
                    yield grad_ready[vs][j]
                start = env.now
                if overlap and cost.dp_bytes > 0 and idx == last_bwd[k, vs]:
                    pending.append(env.process(buckets(it, k, stream, vs, start)))
                yield env.timeout(cost.bwd_s)
                in_flight[k] -= 1
                result.ops.append((it, k, "B", j, start, env.now))
                result.op_chunks.append(vs // p)
                if vs > 0:
                    env.process(transfer(it, k, (vs - 1) % p, "grad", j, cost.grad_bytes,
                                         grad_ready[vs - 1][j]))
        mine = [costs[c * p + k] for c in range(v)]
        dp_bytes = sum(c.dp_bytes for c in mine)
        if pending:
            yield env.all_of(pending)
        elif allreduce is not None and dp_bytes > 0:
            start = env.now
            yield from allreduce(env, k, dp_bytes)
            result.allreduces.append((it, k, dp_bytes, start, env.now))
        start = env.now
        yield env.timeout(sum(c.update_s for c in mine))
        result.updates.append((it, k, start, env.now))
        finished.succeed()

    for it in range(cfg.iterations):
        act_ready = [[env.event() for _ in range(m)] for _ in range(n)]
        grad_ready = [[env.event() for _ in range(m)] for _ in range(n)]
        finished = [env.event() for _ in range(p)]
        for k in range(p):
            env.process(stage(it, k, act_ready, grad_ready, finished[k]))
        yield env.all_of(finished)
        result.iteration_end.append(env.now)
        result.update_log.append(update_row(it, env.now, -1, it, it + 1, cfg.dp))
    result.peak_in_flight = peak


def simulate_pipeline(costs: Sequence[StageCost], cfg: PipelineConfig,
                      send: SendFn | None = None, allreduce: AllreduceFn | None = None,
                      env: simpy.Environment | None = None,
                      max_events: int = DEFAULT_MAX_EVENTS) -> PipelineResult:
    """Run the pipeline to completion. ``costs``: one per stage, or with ``cfg.vp > 1`` one
    per virtual stage in model order (virtual stage ``i`` on GPU ``i % p``). ``send`` /
    ``allreduce`` None: free communication. ``max_events``: event budget
    (:mod:`ddlsim.sim.budget`); SimulationError beyond it."""
    if not costs:
        raise ConfigError("costs: need at least one stage, got 0")
    if len(costs) % cfg.vp:
        raise ConfigError(f"costs: the interleaved schedule needs pp x vp virtual stages, "
                          f"a multiple of vp={cfg.vp}, got {len(costs)}")
    p = len(costs) // cfg.vp
    check_interleaving(p, cfg.micro_batches, cfg.vp)
    env = env or simpy.Environment()
    result = PipelineResult(stages=p, micro_batches=cfg.micro_batches,
                            schedule=cfg.schedule, iteration_end=[], vp=cfg.vp)
    env.process(pipeline_process(env, costs, cfg, send, allreduce, result))
    run_budgeted(env, max_events=max_events, what="pipeline simulation")
    return result
