"""Kernel cost model: how long one :class:`~ddlsim.opspec.KernelCall` takes on one device.

:meth:`CostModel.estimate` answers through one interface and says which path it took:

1. ``"measured"``: a profile row for exactly that op, shape and dtype on this device; the
   estimate is the row's median.
2. ``"interpolated"``: otherwise, when the device has rows of the same op and dtype whose
   *roofline times* bracket the target's, piecewise-linear interpolation of log(time)
   against log(roofline time) between the two bracketing rows. The roofline time
   ``max(F/P, B/BW)`` is proportional to FLOPs for compute-bound shapes and to bytes for
   memory-bound ones (``flops == 0`` or low arithmetic intensity), so one axis serves every
   op. Rows sharing an x are averaged in log space. No extrapolation.
3. ``"roofline"``: otherwise ``overhead_s + max(F / peak_flops[dtype], B / memory_bw) /
   efficiency``. The two parameters are fitted on this device's rows of the op class
   (``"gemm-like"``: gemm, bmm, conv2d_*, flash_attn_*; ``"memory"``: every other op) by
   :func:`fit_overhead_efficiency`: least squares on *relative* error with
   ``overhead_s >= 0`` and ``efficiency > 0``. The fixed ``overhead_s`` is the per-call
   cost no roofline sees (CUDA launch, NumPy dispatch); without it tiny kernels are
   predicted far too fast. The fit uses the rows of the same dtype when there are any, else
   all dtypes of the class, else the defaults :data:`DEFAULT_EFFICIENCY` and
   :data:`DEFAULT_OVERHEAD_S` (per device kind). ``CostModel(..., fit_overhead=False)``
   restores the earlier overhead-free model (efficiency = geometric mean of
   roofline/measured, no fixed term) for comparison. A call with no work at all (zero FLOPs
   and zero bytes) costs 0 s: nothing is launched.

FLOPs and bytes always come from :func:`ddlsim.opspec.flops` and
:func:`ddlsim.opspec.bytes_moved` (the ``flops``/``bytes`` fields of a :class:`ProfileRow`
are informational), so targets and rows sit on the same axis.

Which rows a model uses: those whose ``device`` names this device, i.e. equals its
``name`` or ``display_name`` (case-insensitive) or resolves to its catalog key through
:func:`ddlsim.sim.hardware.resolve_device_name` (``"NVIDIA A100-SXM4-40GB"`` -> ``a100-40gb``).
Rows of other devices and rows in a dtype the device has no peak for are ignored (counted
in :attr:`CostModel.ignored_rows`). Two rows for the same op, shape and dtype are an error.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddlsim import opspec
from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall
from ddlsim.sim.gemm_shape import compute_fraction
from ddlsim.sim.hardware import DeviceSpec
from ddlsim.sim.profile_rows import ProfileRow, check_time, row_matches
from ddlsim.sim.roofline_fit import (
    RooflineFit,
    best_log_slope,
    fit_overhead_efficiency,
    geometric_efficiency,
)
from ddlsim.units import DTYPE_BYTES

__all__ = [
    "DEFAULT_EFFICIENCY", "DEFAULT_OVERHEAD_S", "GEMM_LIKE_OPS", "MIN_OP_FIT_ROWS",
    "OP_CLASSES", "PATHS", "CostModel", "Estimate", "ProfileRow", "RooflineFit",
    "fit_overhead_efficiency", "leave_one_out_error", "op_class", "row_matches",
]

#: Ops whose time is dominated by dense matrix math (tensor cores / BLAS); fused attention
#: is one tensor-core kernel whose scores stay on chip.
GEMM_LIKE_OPS = frozenset({"gemm", "bmm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter",
                           "flash_attn_fwd", "flash_attn_bwd"})
OP_CLASSES = ("gemm-like", "memory")

#: Fraction of the roofline reached when a device has no measured rows at all. Rationale:
#: end-to-end training of GPT models with Megatron-LM on A100s reaches 43-52% of the 312
#: TFLOP/s dense peak (Narayanan et al. SC'21, arXiv 2104.04473, Table 1, as in
#: published.csv); kernels alone do better, whole steps (which include memory-bound ops)
#: do about that, so 0.5 is a round, mildly conservative figure for both op classes. It
#: is global, not fitted per row.
DEFAULT_EFFICIENCY = 0.5

#: Fixed seconds per kernel call, by device kind, when a device has no measured rows for
#: an op class.
#: gpu: 5 us. A CUDA kernel launch costs a few microseconds before the first instruction
#:   runs: NVIDIA's "Getting Started with CUDA Graphs" (A. Gray, NVIDIA Technical Blog, 2019,
#:   https://developer.nvidia.com/blog/cuda-graphs/) times a ~3 us kernel at several us per
#:   launch when launched back to back, and commonly quoted figures are 5-50 us per launch
#:   with synchronisation (exact blog figures not re-verified here). 5 us is the low end:
#:   frameworks issue launches asynchronously, so part of the cost overlaps.
#: cpu: 1 us, the order of one NumPy ufunc/BLAS dispatch from Python on a tiny array; the
#:   overhead fitted on the committed CPU profiles (src/ddlsim/data/profiles/) is reported
#:   in bench/RESULTS.md ("Cost model" section) by bench/bench_costs.py.
DEFAULT_OVERHEAD_S = {"gpu": 5e-6, "cpu": 1e-6}

#: Rows of one op and dtype needed before the roofline path fits that op on its own.
MIN_OP_FIT_ROWS = 3

PATHS = ("measured", "interpolated", "roofline")


def op_class(op: str) -> str:
    """``"gemm-like"`` for gemm, bmm, convolutions and fused attention, ``"memory"`` for
    every other op."""
    return "gemm-like" if op in GEMM_LIKE_OPS else "memory"


@dataclass(frozen=True)
class Estimate:
    """Predicted time of one kernel call.

    Args:
        seconds: predicted seconds per call.
        path: ``"measured"``, ``"interpolated"`` or ``"roofline"``.
        detail: which rows or which efficiency produced it.
    """

    seconds: float
    path: str
    detail: str


@dataclass(frozen=True)
class _Curve:
    """Measured points of one op and dtype, sorted by x = log(roofline seconds)."""

    log_x: list[float]
    log_t: list[float]
    labels: list[str]


class CostModel:
    """Estimates kernel times on one device from measured rows, interpolation or roofline.

    Args:
        device: the device to estimate for.
        rows: measured profile rows (any device; only this device's are used).
        default_efficiency: fraction of the roofline (0 < e) used for an op class with no
            measured rows on this device; see :data:`DEFAULT_EFFICIENCY`.
        default_overhead_s: fixed seconds per call (>= 0) for an op class with no measured
            rows; ``None`` takes :data:`DEFAULT_OVERHEAD_S` for the device's kind.
        fit_overhead: ``True`` fits overhead and efficiency per op class
            (:func:`fit_overhead_efficiency`); ``False`` is the overhead-free model
            (efficiency = geometric mean of roofline/measured, overhead 0 everywhere).
        gemm_shape: ``True`` divides a gemm-like call's compute time on the roofline path by
            the fraction of the peak its shape allows (:mod:`ddlsim.sim.gemm_shape`: tiles,
            waves, split-K); the calibrated models use it, measured profiles do not.
    """

    def __init__(self, device: DeviceSpec, rows: Sequence[ProfileRow] = (),
                 default_efficiency: float = DEFAULT_EFFICIENCY,
                 default_overhead_s: float | None = None, fit_overhead: bool = True,
                 gemm_shape: bool = False) -> None:
        if not isinstance(device, DeviceSpec):
            raise ConfigError(f"device: must be a DeviceSpec, got {type(device).__name__}")
        eff_ok = (isinstance(default_efficiency, int | float)
                  and not isinstance(default_efficiency, bool)
                  and math.isfinite(default_efficiency) and default_efficiency > 0)
        if not eff_ok:
            raise ConfigError(f"default_efficiency: must be a finite number > 0, "
                              f"got {default_efficiency!r}")
        if default_overhead_s is None:
            default_overhead_s = DEFAULT_OVERHEAD_S[device.kind] if fit_overhead else 0.0
        check_time("default_overhead_s", default_overhead_s, positive=False)
        self.device = device
        self.default_efficiency = float(default_efficiency)
        self.default_overhead_s = float(default_overhead_s)
        self.fit_overhead = bool(fit_overhead)
        self.gemm_shape = bool(gemm_shape)
        self.rows: tuple[ProfileRow, ...] = ()
        self.ignored_rows = 0
        self._measured: dict[tuple[KernelCall, str], ProfileRow] = {}
        self._curves: dict[tuple[str, str], _Curve] = {}
        # (class, dtype | None) and (op, dtype) -> (roofline_s, measured_s) points; the fits
        # are computed on first use and cached (a leave-one-out run builds many models).
        self._class_points: dict[tuple[str, str | None], list[tuple[float, float]]] = {}
        self._op_points: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self._fit_cache: dict[tuple[str, str, str | None], RooflineFit | None] = {}
        self._cache: dict[tuple[KernelCall, str], Estimate] = {}
        self._load(rows)

    # -- construction ---------------------------------------------------------------

    def _load(self, rows: Sequence[ProfileRow]) -> None:
        kept = []
        for row in rows:
            if not isinstance(row, ProfileRow):
                raise ConfigError(f"rows: must hold ProfileRow records, got "
                                  f"{type(row).__name__}")
            if (not row_matches(row.device, self.device)
                    or row.dtype not in self.device.peak_flops_per_s):
                self.ignored_rows += 1
                continue
            key = (row.kernel_call, row.dtype)
            if key in self._measured:
                raise ConfigError(f"rows: duplicate profile for {row.kernel_call} {row.dtype} "
                                  f"on {self.device.name}")
            self._measured[key] = row
            kept.append(row)
        self.rows = tuple(kept)
        self._build_curves()
        self._fit_efficiencies()

    def _build_curves(self) -> None:
        points: dict[tuple[str, str], dict[float, list[tuple[float, str]]]] = defaultdict(
            lambda: defaultdict(list))
        for row in self.rows:
            x = self.roofline_s(row.kernel_call, row.dtype)
            if x > 0:
                points[(row.op, row.dtype)][x].append((math.log(row.median_s),
                                                       row.kernel_call.shape_key))
        for key, by_x in points.items():
            xs = sorted(by_x)
            log_t = [sum(lt for lt, _ in by_x[x]) / len(by_x[x]) for x in xs]
            labels = ["|".join(label for _, label in by_x[x]) for x in xs]
            self._curves[key] = _Curve([math.log(x) for x in xs], log_t, labels)

    def _fit_efficiencies(self) -> None:
        class_points: dict[tuple[str, str | None], list[tuple[float, float]]] = defaultdict(list)
        op_points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for row in self.rows:
            roof = self.roofline_s(row.kernel_call, row.dtype)
            if roof > 0:
                cls = op_class(row.op)
                class_points[(cls, row.dtype)].append((roof, row.median_s))
                class_points[(cls, None)].append((roof, row.median_s))
                op_points[(row.op, row.dtype)].append((roof, row.median_s))
        self._class_points = dict(class_points)
        self._op_points = dict(op_points)

    def _class_fit(self, cls: str, dtype: str | None) -> RooflineFit | None:
        """Overhead and efficiency fitted on the class's rows (``dtype`` None: all dtypes)."""
        key = ("class", cls, dtype)
        if key not in self._fit_cache:
            pts = self._class_points.get((cls, dtype))
            fit = None
            if pts:
                roofs, times = [p[0] for p in pts], [p[1] for p in pts]
                if self.fit_overhead:
                    overhead, eff = fit_overhead_efficiency(roofs, times)
                else:
                    overhead, eff = 0.0, geometric_efficiency(roofs, times)
                scope = f"{cls} {dtype}" if dtype else f"{cls} all dtypes"
                fit = RooflineFit(overhead, eff,
                                  f"fitted on {len(pts)} {scope} row(s) of {self.device.name}")
            self._fit_cache[key] = fit
        return self._fit_cache[key]

    def _op_fit(self, op: str, dtype: str, class_fit: RooflineFit) -> RooflineFit | None:
        """Efficiency fitted on the op's own rows with the class's overhead held fixed
        (clipped to half the op's fastest row); None with too few rows."""
        key = ("op", op, dtype)
        if key not in self._fit_cache:
            pts = self._op_points.get((op, dtype), [])
            fit = None
            if self.fit_overhead and len(pts) >= MIN_OP_FIT_ROWS:
                r = np.array([p[0] for p in pts])
                t = np.array([p[1] for p in pts])
                overhead = min(class_fit.overhead_s, 0.5 * float(t.min()))
                b, _ = best_log_slope(overhead, r, np.log(t))
                fit = RooflineFit(overhead, math.exp(-b),
                                  f"efficiency fitted on {len(pts)} {op} {dtype} row(s), "
                                  f"overhead from the {class_fit.detail}")
            self._fit_cache[key] = fit
        return self._fit_cache[key]

    # -- queries --------------------------------------------------------------------

    def roofline_s(self, kc: KernelCall, dtype: str, compute_fraction: float = 1.0) -> float:
        """Ideal seconds ``max(F / (peak_flops[dtype] f), B / memory_bw)``, before
        efficiency; ``f``: the fraction of the peak the call can use (1: all of it)."""
        peak = self.device.peak_flops(dtype) * compute_fraction
        return max(opspec.flops(kc) / peak,
                   opspec.bytes_moved(kc, dtype) / self.device.memory_bw_bytes_per_s)

    def shape_fraction(self, kc: KernelCall, dtype: str) -> float:
        """Compute rate over the peak that ``kc``'s shape and algorithm allow
        (:func:`ddlsim.sim.gemm_shape.compute_fraction`; 1 unless ``gemm_shape`` is on
        and the op is gemm-like)."""
        if not self.gemm_shape or op_class(kc.op) != "gemm-like":
            return 1.0
        return compute_fraction(kc, self.device.name, dtype)

    def roofline_fit(self, op: str, dtype: str) -> RooflineFit:
        """Overhead and efficiency of the roofline path for ``op`` in ``dtype``."""
        cls = op_class(op)
        class_fit = self._class_fit(cls, dtype) or self._class_fit(cls, None)
        if class_fit is None:
            return RooflineFit(self.default_overhead_s, self.default_efficiency,
                               f"global default; no measured {cls} rows on {self.device.name}")
        return self._op_fit(op, dtype, class_fit) or class_fit

    def efficiency(self, op: str, dtype: str) -> tuple[float, str]:
        """Fraction of the roofline used for ``op`` in ``dtype``, and where it comes from."""
        fit = self.roofline_fit(op, dtype)
        return fit.efficiency, fit.detail

    def overhead_s(self, op: str, dtype: str) -> tuple[float, str]:
        """Fixed seconds per call for ``op`` in ``dtype``, and where it comes from."""
        fit = self.roofline_fit(op, dtype)
        return fit.overhead_s, fit.detail

    def estimate(self, kc: KernelCall, dtype: str) -> Estimate:
        """Predicted seconds of one call of ``kc`` with ``dtype`` elements on this device.

        Raises ConfigError when the device has no peak rate for ``dtype``.
        """
        key = (kc, dtype)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._estimate(kc, dtype)
        self._cache[key] = result
        return result

    def seconds(self, kc: KernelCall, dtype: str) -> float:
        """Shorthand for ``estimate(kc, dtype).seconds``."""
        return self.estimate(kc, dtype).seconds

    def _estimate(self, kc: KernelCall, dtype: str) -> Estimate:
        if dtype not in DTYPE_BYTES:
            raise ConfigError(f"dtype: must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
        roof = self.roofline_s(kc, dtype)  # also rejects a dtype the device lacks
        row = self._measured.get((kc, dtype))
        if row is not None:
            return Estimate(row.median_s, "measured",
                            f"median of measured {kc} {dtype} on {self.device.name}")
        interpolated = self._interpolate(kc, dtype, roof)
        if interpolated is not None:
            return interpolated
        if roof == 0:
            return Estimate(0.0, "roofline", "no FLOPs and no bytes: nothing to run")
        fit = self.roofline_fit(kc.op, dtype)
        shape = self.shape_fraction(kc, dtype)
        if shape != 1.0:
            roof = self.roofline_s(kc, dtype, shape)
        return Estimate(fit.overhead_s + roof / fit.efficiency, "roofline",
                        f"overhead {fit.overhead_s:.4g} s + roofline {roof:.6g} s "
                        f"(shape fraction {shape:.3g}) / efficiency {fit.efficiency:.4g} "
                        f"({fit.detail})")

    def _interpolate(self, kc: KernelCall, dtype: str, roof: float) -> Estimate | None:
        curve = self._curves.get((kc.op, dtype))
        if curve is None or roof <= 0:
            return None
        lx = math.log(roof)
        xs = curve.log_x
        if lx < xs[0] or lx > xs[-1]:
            return None
        i = bisect.bisect_left(xs, lx)
        if xs[i] == lx:
            return Estimate(math.exp(curve.log_t[i]), "interpolated",
                            f"same roofline time as measured {kc.op}({curve.labels[i]}) {dtype}")
        lo, hi = i - 1, i
        frac = (lx - xs[lo]) / (xs[hi] - xs[lo])
        log_t = curve.log_t[lo] + frac * (curve.log_t[hi] - curve.log_t[lo])
        return Estimate(math.exp(log_t), "interpolated",
                        f"log-log between measured {kc.op}({curve.labels[lo]}) and "
                        f"{kc.op}({curve.labels[hi]}) {dtype}, fraction {frac:.3g}")


def leave_one_out_error(rows: Sequence[ProfileRow], device: DeviceSpec, *,
                        fit_overhead: bool = True) -> list[tuple[ProfileRow, float, float]]:
    """Predict each of ``device``'s rows from the others.

    Returns ``(row, predicted_s, rel_error)`` per row of this device, with the signed
    relative error ``(predicted_s - row.median_s) / row.median_s``. Each prediction goes
    through interpolation or the roofline (the row itself is held out), so this measures
    how well the model fills gaps between measurements. ``fit_overhead`` is passed to
    :class:`CostModel`.
    """
    own = CostModel(device, rows).rows
    results = []
    for i, row in enumerate(own):
        model = CostModel(device, own[:i] + own[i + 1:], fit_overhead=fit_overhead)
        predicted = model.seconds(row.kernel_call, row.dtype)
        results.append((row, predicted, (predicted - row.median_s) / row.median_s))
    return results
