"""Fitting the global constants of :class:`~ddlsim.api.calibration.Calibration` on the
rows a rule declares, never on rows chosen by id.

The rule (:func:`fit_rows`): every single-GPU throughput or backward-time row (one GPU
isolates the kernels' efficiency from the network) fits the GEMM efficiency of its GPU
family and precision class, one memory-bound efficiency and one factor per framework
(bounded least squares on iteration time, which is linear in the reciprocal
efficiencies); a family/class with no single-GPU row is fitted on the rows of its
smallest pure data-parallel configuration (a 1-D search on the squared log error).
Rows of a zoo model marked experimental (:data:`ddlsim.sim.workloads.EXPERIMENTAL`) never
fit. Every other row is held out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ddlsim.api.calibration import (
    DEFAULT_CALIBRATION,
    EFFICIENCY_BOUNDS,
    Calibration,
    gemm_key,
)
from ddlsim.api.predict import predict, resolve_precision
from ddlsim.errors import ConfigError
from ddlsim.validation.metrics import predicted_value
from ddlsim.validation.rows import RowRun

FIT_RULE = ("single-GPU throughput and backward-time rows fit the GEMM efficiency of their GPU "
            "family/precision class, one memory-bound efficiency and one factor per framework "
            "(bounded least squares on iteration time, PyTorch or unstated framework = 1); "
            "a family/class with no single-GPU row is fitted on the rows of its smallest pure "
            "data-parallel configuration (1-D search on the squared log error); rows of "
            "experimental zoo models never fit; NCCL bus-bandwidth efficiencies are "
            "sim.collectives' constants")

_TIME_KINDS = ("iteration_s", "backprop_s", "epoch_s", "time_to_train_s")
_RATE_KINDS = ("samples_per_s", "tokens_per_s")
_REFERENCE_FRAMEWORKS = ("", "pytorch")


def key_of(run: RowRun) -> str:
    from ddlsim.api.predict import job_device

    compute, gemm, _ = resolve_precision(run.job)
    return gemm_key(job_device(run.job), gemm or compute)


def fit_rows(runs: Sequence[tuple[str, RowRun]]) -> list[str]:
    """Fingerprints of the rows the rule declares fit rows (see the module docstring).
    ``runs``: (fingerprint, run) of every expressible row."""
    from ddlsim.sim.workloads import EXPERIMENTAL

    runs = [(f, r) for f, r in runs if r.job.workload.model not in EXPERIMENTAL]
    single = [(f, r) for f, r in runs if r.job.cluster.gpus == 1
              and r.metric.kind in _RATE_KINDS + ("backprop_s",)]
    keys = {key_of(r) for _, r in single}
    chosen = [f for f, _ in single]
    by_key: dict[str, list[tuple[int, str, RowRun]]] = {}
    for f, r in runs:
        par = r.job.parallelism
        if r.job.strategy.kind not in ("3d", "allreduce") or par.model_parallel > 1:
            continue
        if r.metric.kind in ("scaling_efficiency", "speedup", "time_to_train_s"):
            continue
        k = key_of(r)
        if k not in keys:
            by_key.setdefault(k, []).append((r.job.cluster.gpus, f, r))
    for items in by_key.values():
        smallest = min(g for g, _, _ in items)
        first = next(r for g, _, r in items if g == smallest)
        chosen += [f for g, f, r in items if g == smallest and _same_config(r, first)]
    return chosen


def _same_config(a: RowRun, b: RowRun) -> bool:
    return replace(a.job, assumptions=()) == replace(b.job, assumptions=())


def _as_time(run: RowRun, value: float) -> float:
    return value if run.metric.kind in _TIME_KINDS else 1.0 / value


def _bounded_lstsq(a: np.ndarray, b: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """argmin ||A x - b|| subject to x >= lower, by trying every active set (few columns)."""
    n = a.shape[1]
    best, best_res = lower.astype(float), float(np.sum((a @ lower - b) ** 2))
    for free in itertools.product((False, True), repeat=n):
        idx = [i for i in range(n) if free[i]]
        if not idx:
            continue
        x = lower.astype(float).copy()
        x[idx] = 0.0
        sol, *_ = np.linalg.lstsq(a[:, idx], b - a @ x, rcond=None)
        x[idx] = sol
        if np.all(x >= lower - 1e-12):
            res = float(np.sum((a @ x - b) ** 2))
            if res < best_res - 1e-15:
                best, best_res = x, res
    return best


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int = 24) -> float:
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def _value(run: RowRun, calib: Calibration) -> float:
    v = predicted_value(run, predict(run.job, calib), calib)
    if v is None or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"fit row: metric {run.metric.kind} cannot be predicted")
    return v


def fit(runs: Sequence[RowRun], label: str = "") -> tuple[Calibration, dict[str, str]]:
    """Fit the constants on ``runs`` (the declared fit rows). Returns the calibration and,
    per fitted constant that ended at a bound of its range, the bound it hit."""
    single = [r for r in runs if r.job.cluster.gpus == 1]
    rest = [r for r in runs if r.job.cluster.gpus != 1]
    if not runs:
        raise ConfigError("fit rows: the reference holds no row the fit rule declares")
    keys = sorted({key_of(r) for r in single})
    fws = sorted({r.job.framework if r.job.framework not in _REFERENCE_FRAMEWORKS else ""
                  for r in single})
    cols = keys + [f"mem:{fw}" for fw in fws]
    a, b = np.zeros((len(single), len(cols))), np.zeros(len(single))
    for i, r in enumerate(single):
        k = key_of(r)
        fw = r.job.framework if r.job.framework not in _REFERENCE_FRAMEWORKS else ""

        def t(e_g: float, e_m: float, r=r, k=k) -> float:
            c = Calibration({k: e_g}, e_m)
            return _as_time(r, _value(r, c))
        t11, t21, t12 = t(1.0, 1.0), t(0.5, 1.0), t(1.0, 0.5)
        g, m = t21 - t11, t12 - t11
        t_pub = _as_time(r, r.published)
        a[i, cols.index(k)] = g / t_pub
        a[i, cols.index(f"mem:{fw}")] = m / t_pub
        b[i] = 1.0 - (t11 - g - m) / t_pub
    x = _bounded_lstsq(a, b, np.ones(len(cols))) if single else np.ones(0)
    gemm = {k: float(1.0 / x[i]) for i, k in enumerate(keys)}
    mem = {fw: float(1.0 / x[len(keys) + j]) for j, fw in enumerate(fws)}
    ref = "" if "" in mem or not mem else fws[0]
    e_mem = mem.get(ref, DEFAULT_CALIBRATION.memory_efficiency)
    factors = {fw: v / e_mem for fw, v in mem.items() if fw != ref}
    calib = Calibration(gemm, e_mem, framework_memory_factor=factors, label=label)
    for k in sorted({key_of(r) for r in rest}):
        mine = [r for r in rest if key_of(r) == k] + [r for r in single if key_of(r) == k]

        def loss(e: float, k=k, mine=mine, base=calib) -> float:
            c = replace(base, gemm_efficiency={**base.gemm_efficiency, k: e})
            return sum(math.log(_value(r, c) / r.published) ** 2 for r in mine)
        best = _golden(loss, *EFFICIENCY_BOUNDS)
        calib = replace(calib, gemm_efficiency={**calib.gemm_efficiency, k: best})
    return calib, at_bounds(calib)


def at_bounds(calib: Calibration, tol: float = 2e-3) -> dict[str, str]:
    """Fitted efficiencies that sit at an end of :data:`EFFICIENCY_BOUNDS`."""
    lo, hi = EFFICIENCY_BOUNDS
    out = {}
    for k, v in [*calib.gemm_efficiency.items(), ("memory", calib.memory_efficiency)]:
        if v >= hi - tol:
            out[k] = f"upper bound {hi:g}"
        elif v <= lo + tol:
            out[k] = f"lower bound {lo:g}"
    for k, v in calib.framework_memory_factor.items():
        if v * calib.memory_efficiency >= hi - tol:
            out[f"framework {k}"] = "memory efficiency x factor at 1"
    return out
