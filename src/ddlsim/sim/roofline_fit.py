"""The roofline path's two parameters fitted to measured times: ``t = overhead_s +
roofline_s / efficiency`` in log space (:func:`fit_overhead_efficiency`), and the
:class:`RooflineFit` record a cost model keeps per op class."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim.errors import ConfigError

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def best_log_slope(overhead: float, r: np.ndarray, log_t: np.ndarray) -> tuple[float, float]:
    """For a fixed ``overhead``, the ``b = log(1/efficiency)`` minimising
    ``sum((log(overhead + e^b r_i) - log t_i)^2)`` (Gauss-Newton), and that loss."""
    b = float(np.mean(log_t - np.log(r)))  # exact when overhead == 0
    for _ in range(100):
        y = np.exp(b) * r
        z = overhead + y
        res, w = np.log(z) - log_t, y / z
        step = -float(res @ w) / float(w @ w)
        b += step
        if abs(step) < 1e-12:
            break
    res = np.log(overhead + np.exp(b) * r) - log_t
    return b, float(res @ res)


def fit_overhead_efficiency(roofline_s: Sequence[float],
                            measured_s: Sequence[float]) -> tuple[float, float]:
    """Fit ``t = overhead_s + roofline_s / efficiency`` to measured times in log space.

    Args:
        roofline_s: ideal seconds ``max(F/P, B/BW)`` per row (> 0).
        measured_s: measured seconds per row (> 0), same length.

    Returns ``(overhead_s, efficiency)`` minimising ``sum((log(o + r_i/e) - log t_i)^2)``
    over ``0 <= o < min(t)`` and ``e > 0``: squared *log* errors, so kernels from 1 us to
    1 s weigh alike and over- and under-prediction by the same factor cost the same. For a
    fixed ``o`` the best ``e`` is found by Gauss-Newton; ``o`` by golden-section search on
    ``[0, min t)`` (the profiled loss is assumed unimodal there), and ``o = 0`` is always
    tried too. With ``o = 0`` the fit is the geometric mean ``e = exp(mean(log(r/t)))``;
    that is the answer when there are fewer than two rows or all roofline times are equal
    (the two parameters cannot be separated).
    """
    r = np.asarray(roofline_s, dtype=float)
    t = np.asarray(measured_s, dtype=float)
    if r.shape != t.shape or r.ndim != 1 or r.size == 0:
        raise ConfigError(f"roofline_s, measured_s: must be equal-length non-empty sequences, "
                          f"got {r.shape} and {t.shape}")
    if not (np.all(np.isfinite(r)) and np.all(r > 0) and np.all(np.isfinite(t))
            and np.all(t > 0)):
        raise ConfigError("roofline_s, measured_s: must be finite numbers > 0")
    log_t = np.log(t)
    b0, loss0 = best_log_slope(0.0, r, log_t)
    best = (loss0, 0.0, b0)
    if r.size >= 2 and np.ptp(r) > 1e-9 * r.max():
        lo, hi = 0.0, float(t.min()) * (1.0 - 1e-9)
        x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        f1, f2 = best_log_slope(x1, r, log_t)[1], best_log_slope(x2, r, log_t)[1]
        for _ in range(60):
            if f1 <= f2:
                hi, x2, f2 = x2, x1, f1
                x1 = hi - _GOLDEN * (hi - lo)
                f1 = best_log_slope(x1, r, log_t)[1]
            else:
                lo, x1, f1 = x1, x2, f2
                x2 = lo + _GOLDEN * (hi - lo)
                f2 = best_log_slope(x2, r, log_t)[1]
        o = 0.5 * (lo + hi)
        b, loss = best_log_slope(o, r, log_t)
        if loss < best[0]:
            best = (loss, o, b)
    _, overhead, b = best
    return float(overhead), float(math.exp(-b))


def geometric_efficiency(roofline_s: Sequence[float], measured_s: Sequence[float]) -> float:
    """``exp(mean(log(roofline/measured)))``: the overhead-free fit of the efficiency."""
    logs = [math.log(r) - math.log(t) for r, t in zip(roofline_s, measured_s, strict=True)]
    return math.exp(sum(logs) / len(logs))


@dataclass(frozen=True)
class RooflineFit:
    """Parameters of the roofline path for one op class on one device.

    Args:
        overhead_s: fixed seconds per call.
        efficiency: achieved fraction of the roofline (> 0).
        detail: where the numbers come from.
    """

    overhead_s: float
    efficiency: float
    detail: str
