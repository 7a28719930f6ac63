"""Failures and checkpointing over a long training run.

The simulators give a strategy's steady-state throughput; this module spreads that over
the hours or days of a real run in which components fail.

**Failure model.** GPUs, nodes and links fail independently with exponential lifetimes
of per-component MTBF (a renewal process per component: a replaced part fails at the
same rate). A job on ``gpus`` GPUs in nodes of ``gpus_per_node`` has ``gpus`` GPUs,
``nodes`` hosts and ``nodes`` links (each node's uplink: NIC + cable + switch port).
The superposition is a Poisson process of rate
``gpus / gpu_mtbf + nodes / node_mtbf + nodes / link_mtbf`` (the job's MTBF is its
inverse). Every draw comes from a seeded :class:`numpy.random.Generator`.

**Synchronous strategies** (allreduce, pipeline, PS-BSP/backup) stop on any failure:
the work since the last checkpoint is lost, the job restarts (``restart_s``: detect,
replace the node from a spare pool, reload; a failure during the restart starts it
again) and resumes from the last checkpoint. A checkpoint is written after every
``interval_s`` seconds of work and takes ``write_s`` = size / storage bandwidth, during
which training pauses; a failure during a write loses the interval. No checkpoint is
written after the last interval. With failure rate ``lam``, an interval of ``L`` seconds
(work + write) takes in expectation ``exp(lam R) (exp(lam L) - 1) / lam`` (Daly 2006's
complete model, exact for this process): :func:`expected_sync_run` sums it,
:func:`simulate_sync_run` draws the timeline event by event.

**Asynchronous parameter servers** (ASP, SSP) keep going: a failed GPU's worker is out
for ``repair_s``; a node or link failure takes the node's workers out; throughput is the
steady-state throughput times the fraction of workers alive (the servers are assumed on
reliable hosts: their failure would make the job behave like a synchronous one).
A worker is out at a given time when some failure that hits it fell in the last
``repair_s`` seconds (a failure while out extends the repair), so in steady state it is
alive with probability ``exp(-lam_worker repair_s)``. Checkpoints (of the servers) still
pause training for ``write_s`` every ``interval_s`` seconds of training.

Sources: J. W. Young, "A first order approximation to the optimum checkpoint interval",
CACM 17(9):530-531, 1974 (``sqrt(2 C M)``); J. T. Daly, "A higher order estimate of the
optimum checkpoint interval for restart dumps", Future Generation Computer Systems
22(3):303-312, 2006 (the complete model and :func:`daly_interval_s`).
"""

from __future__ import annotations

import math

import numpy as np

from ddlsim.errors import ConfigError, SimulationError
from ddlsim.sim.fault_specs import (
    FAILURE_KINDS,
    CheckpointPolicy,
    FailureModel,
    FaultTimeline,
    positive,
)

__all__ = [
    "FAILURE_KINDS", "MAX_TIMELINE_EVENTS", "CheckpointPolicy", "FailureModel", "FaultTimeline",
    "daly_interval_s", "expected_async_run", "expected_sync_run", "mean_timeline",
    "model_optimum_interval_s", "simulate_async_run", "simulate_runs", "simulate_sync_run",
]

#: Most events (failures + intervals) one drawn timeline may take; a run that needs more
#: is one whose failures come (almost) faster than it can checkpoint.
MAX_TIMELINE_EVENTS = 10_000_000


# --------------------------------------------------------------------------- intervals
def daly_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly's (2006, eq. 37) higher-order optimum interval (s):
    ``sqrt(2 C M) (1 + sqrt(C / 2M) / 3 + C / 18M) - C`` for ``C < 2M``, else ``M``."""
    c, m = positive("checkpoint_s", checkpoint_s), positive("mtbf_s", mtbf_s)
    if c >= 2.0 * m:
        return m
    x = c / (2.0 * m)
    return math.sqrt(2.0 * c * m) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - c


def model_optimum_interval_s(checkpoint_s: float, mtbf_s: float) -> float:
    """The interval minimising this module's expected wall time per unit of work,
    ``(exp((tau + C) / M) - 1) / tau`` (golden-section search on log tau)."""
    c, m = positive("checkpoint_s", checkpoint_s, allow_zero=True), positive("mtbf_s", mtbf_s)

    def cost(log_tau: float) -> float:
        tau = math.exp(log_tau)
        return math.expm1((tau + c) / m) / tau

    lo, hi = math.log(m) - 30.0, math.log(m) + 3.0
    g = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(200):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if cost(a) < cost(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2.0)


# --------------------------------------------------------------------------- sync
def _segments(work_s: float, interval_s: float) -> tuple[int, float]:
    """``(n, last)``: ``n`` intervals of work, the last one ``last`` seconds long."""
    n = max(1, math.ceil(work_s / interval_s - 1e-9))
    return n, work_s - (n - 1) * interval_s


def expected_sync_run(work_s: float, failures: FailureModel,
                      policy: CheckpointPolicy) -> FaultTimeline:
    """Expected timeline of a synchronous job needing ``work_s`` seconds of failure-free
    training (exact for the model above; ``failures`` is the expected count).

    Raises SimulationError when the expected time overflows (failures come far faster
    than an interval can complete)."""
    positive("work_s", work_s, allow_zero=True)
    lam = failures.job_rate_per_s
    n, last = _segments(work_s, policy.interval_s)
    full = policy.interval_s + policy.write_s
    ckpt = (n - 1) * policy.write_s
    if lam == 0.0:
        wall = work_s + ckpt
    else:
        try:
            seg = lambda length: math.exp(lam * policy.restart_s) * math.expm1(lam * length) / lam  # noqa: E731
            wall = (n - 1) * seg(full) + seg(last)
        except OverflowError:
            wall = math.inf
        if not math.isfinite(wall):
            raise SimulationError(
                f"failures every {1 / lam:.3g} s on average: a {full:.3g} s checkpoint "
                f"interval practically never completes; checkpoint more often or raise the "
                f"MTBF")
    lost_total = wall - work_s - ckpt
    fails = lam * wall
    # Expected restart time per failure: restarts that themselves fail are cut short.
    per_restart = (-math.expm1(-lam * policy.restart_s) / lam if lam > 0 else 0.0)
    restart = min(fails * per_restart, lost_total)
    rates = failures.rates_per_s()
    by_kind = {k: fails * r / lam if lam > 0 else 0.0 for k, r in rates.items()}
    return FaultTimeline(wall_s=wall, work_s=work_s, checkpoint_s=ckpt,
                         lost_work_s=lost_total - restart, restart_s=restart,
                         failures=fails, checkpoints=n - 1, failures_by_kind=by_kind)


def _draw_kind(rng: np.random.Generator, kinds: list[str], cum: np.ndarray) -> str:
    return kinds[int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))]


def simulate_sync_run(work_s: float, failures: FailureModel, policy: CheckpointPolicy,
                      rng: np.random.Generator,
                      max_events: int = MAX_TIMELINE_EVENTS) -> FaultTimeline:
    """Draw one timeline of a synchronous job (see the module docstring).

    Args:
        work_s: failure-free training seconds the job needs (samples / samples_per_s).
        failures: the components and their MTBFs; policy: checkpointing and restart.
        rng: the only source of randomness.
        max_events: SimulationError beyond this many intervals + failures.
    """
    positive("work_s", work_s, allow_zero=True)
    lam = failures.job_rate_per_s
    rates = failures.rates_per_s()
    kinds = [k for k in FAILURE_KINDS if rates[k] > 0]
    cum = np.cumsum([rates[k] for k in kinds]) if kinds else np.zeros(0)
    mean_gap = 1.0 / lam if lam > 0 else math.inf

    def gap() -> float:
        return float(rng.exponential(mean_gap)) if lam > 0 else math.inf

    tau, c, r = policy.interval_s, policy.write_s, policy.restart_s
    t, done, next_fail = 0.0, 0.0, gap()
    out = FaultTimeline(0.0, work_s, 0.0, 0.0, 0.0, 0, 0, {k: 0 for k in FAILURE_KINDS})
    events = 0

    def count() -> None:
        nonlocal events
        events += 1
        if events > max_events:
            raise SimulationError(
                f"fault timeline: exceeded {max_events:,} events (failures every "
                f"{mean_gap:.3g} s on average against {tau:.3g} s checkpoint intervals "
                f"and {r:.3g} s restarts); checkpoint more often or raise the MTBF")

    while work_s - done > 1e-9 * max(work_s, 1.0):
        count()
        seg = min(tau, work_s - done)
        write = c if work_s - done - seg > 1e-9 * max(work_s, 1.0) else 0.0
        end = t + seg + write
        if next_fail >= end:
            t, done = end, done + seg
            if write:
                out.checkpoint_s += write
                out.checkpoints += 1
            continue
        out.lost_work_s += next_fail - t  # the interval's work and partial write
        t = next_fail
        while True:  # a failure, then a restart that a new failure starts over
            count()
            out.failures += 1
            out.failures_by_kind[_draw_kind(rng, kinds, cum)] += 1
            nxt = t + gap()
            if nxt >= t + r:
                out.restart_s += r
                t, next_fail = t + r, nxt
                break
            out.restart_s += nxt - t
            t = nxt
    out.wall_s = t
    return out


# --------------------------------------------------------------------------- async
def expected_async_run(work_s: float, failures: FailureModel,
                       policy: CheckpointPolicy) -> FaultTimeline:
    """Steady-state expectation for asynchronous PS: workers alive with probability
    ``exp(-lam_worker repair_s)``, a checkpoint pause of ``write_s`` per ``interval_s``
    of training. ``work_s``: failure-free seconds with every worker alive."""
    positive("work_s", work_s, allow_zero=True)
    alive = math.exp(-failures.worker_rate_per_s * policy.repair_s)
    train_wall = work_s / alive
    n, _ = _segments(train_wall, policy.interval_s)
    ckpt = (n - 1) * policy.write_s
    fails = failures.job_rate_per_s * (train_wall + ckpt)
    rates, lam = failures.rates_per_s(), failures.job_rate_per_s
    return FaultTimeline(wall_s=train_wall + ckpt, work_s=work_s, checkpoint_s=ckpt,
                         lost_work_s=train_wall - work_s, restart_s=0.0,
                         failures=fails, checkpoints=n - 1,
                         failures_by_kind={k: fails * v / lam if lam else 0.0
                                           for k, v in rates.items()})


def simulate_async_run(work_s: float, failures: FailureModel, policy: CheckpointPolicy,
                       rng: np.random.Generator,
                       max_events: int = MAX_TIMELINE_EVENTS) -> FaultTimeline:
    """Draw one timeline of an asynchronous PS job whose throughput is proportional to
    the workers alive (worker ``w`` sits on node ``w // gpus_per_node``).

    ``lost_work_s`` is the training wall time times the fraction of workers out
    (integrated), i.e. the failure-free seconds of work the cluster missed."""
    positive("work_s", work_s, allow_zero=True)
    W, gpn = failures.gpus, failures.gpus_per_node
    rates = failures.rates_per_s()
    kinds = [k for k in FAILURE_KINDS if rates[k] > 0]
    cum = np.cumsum([rates[k] for k in kinds]) if kinds else np.zeros(0)
    lam = failures.job_rate_per_s
    tau, c, d = policy.interval_s, policy.write_s, policy.repair_s
    down_until = np.zeros(W)

    def gap() -> float:
        return float(rng.exponential(1.0 / lam)) if lam > 0 else math.inf

    out = FaultTimeline(0.0, work_s, 0.0, 0.0, 0.0, 0, 0, {k: 0 for k in FAILURE_KINDS})
    t, done, next_fail = 0.0, 0.0, gap()
    training, phase_end = True, tau
    eps = 1e-9 * max(work_s, 1.0)
    for _ in range(max_events):
        if work_s - done <= eps:
            out.wall_s = t
            return out
        out_mask = down_until > t
        alive = W - int(np.count_nonzero(out_mask))
        next_repair = float(down_until[out_mask].min()) if alive < W else math.inf
        rate = alive / W if training else 0.0
        finish = t + (work_s - done) / rate if rate > 0 else math.inf
        t_next = min(next_fail, next_repair, phase_end, finish)
        dt = t_next - t
        if training:
            done += rate * dt
            out.lost_work_s += (1.0 - rate) * dt
        else:
            out.checkpoint_s += dt
        t = t_next
        if t_next == finish:
            done = work_s
        elif t_next == phase_end:
            if training:
                out.checkpoints += 1
            training = not training
            phase_end = t + (tau if training else c)
        elif t_next == next_fail:
            kind = _draw_kind(rng, kinds, cum)
            out.failures += 1
            out.failures_by_kind[kind] += 1
            if kind == "gpu":
                w = int(rng.integers(W))
                hit = slice(w, w + 1)
            else:
                node = int(rng.integers(failures.nodes))
                hit = slice(node * gpn, min((node + 1) * gpn, W))
            down_until[hit] = np.maximum(down_until[hit], t + d)
            next_fail = t + gap()
    raise SimulationError(f"fault timeline: exceeded {max_events:,} events; raise the MTBF "
                          f"or lengthen the checkpoint interval")


def simulate_runs(kind: str, work_s: float, failures: FailureModel, policy: CheckpointPolicy,
                  seed: int = 0, trials: int = 1) -> list[FaultTimeline]:
    """``trials`` independent timelines (``kind`` "sync" or "async") from one seeded
    generator: the same seed gives the same timelines."""
    if kind not in ("sync", "async"):
        raise ConfigError(f"kind: must be 'sync' or 'async', got {kind!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials: must be an integer >= 1, got {trials!r}")
    rng = np.random.default_rng(seed)
    fn = simulate_sync_run if kind == "sync" else simulate_async_run
    return [fn(work_s, failures, policy, rng) for _ in range(trials)]


def mean_timeline(runs: list[FaultTimeline]) -> FaultTimeline:
    """The average of several timelines (counts become expectations)."""
    n = len(runs)
    avg = lambda name: float(np.mean([getattr(r, name) for r in runs]))  # noqa: E731
    return FaultTimeline(
        wall_s=avg("wall_s"), work_s=avg("work_s"), checkpoint_s=avg("checkpoint_s"),
        lost_work_s=avg("lost_work_s"), restart_s=avg("restart_s"),
        failures=avg("failures"), checkpoints=avg("checkpoints"),
        failures_by_kind={k: sum(r.failures_by_kind.get(k, 0) for r in runs) / n
                          for k in FAILURE_KINDS})
