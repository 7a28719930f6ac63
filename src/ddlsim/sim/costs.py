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
3. ``"roofline"``: otherwise ``max(F / peak_flops[dtype], B / memory_bw) / efficiency``,
   where the efficiency is fitted on this device's rows for the op class (``"gemm-like"``:
   gemm, bmm, conv2d_*; ``"memory"``: every other op) as the geometric mean of
   roofline/measured (the least-squares fit of ``log t = log roofline - log eff``). The fit
   uses the rows of the same dtype when there are any, else all dtypes of the class, else
   the global default :data:`DEFAULT_EFFICIENCY`.

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
from dataclasses import dataclass, field

from ddlsim import opspec
from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall
from ddlsim.sim.hardware import DeviceSpec, resolve_device_name
from ddlsim.units import DTYPE_BYTES

#: Ops whose time is dominated by dense matrix math (tensor cores / BLAS).
GEMM_LIKE_OPS = frozenset({"gemm", "bmm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter"})
OP_CLASSES = ("gemm-like", "memory")

#: Fraction of the roofline reached when a device has no measured rows at all. Rationale:
#: end-to-end training of GPT models with Megatron-LM on A100s reaches 43-52% of the 312
#: TFLOP/s dense peak (published.csv MEG-SC21-01b..10b); kernels alone do better, whole
#: steps (which include memory-bound ops) do about that, so 0.5 is a round, mildly
#: conservative figure for both op classes. It is global, not fitted per row.
DEFAULT_EFFICIENCY = 0.5

PATHS = ("measured", "interpolated", "roofline")


def op_class(op: str) -> str:
    """``"gemm-like"`` for gemm, bmm and convolutions, ``"memory"`` for every other op."""
    return "gemm-like" if op in GEMM_LIKE_OPS else "memory"


def _check_time(what: str, value: object, *, positive: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        rule = "> 0" if positive else ">= 0"
        raise ConfigError(f"{what}: must be a finite number {rule}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ProfileRow:
    """One measured kernel: op x shape x dtype x device (a row of a profile CSV).

    Args:
        op: op name, a key of :data:`ddlsim.opspec.OP_PARAMS`.
        shape_key: canonical shape text, e.g. ``"m=64,n=128,k=256"``.
        dtype: element type, a key of :data:`ddlsim.units.DTYPE_BYTES`.
        device: device identity the row was measured on (catalog key or free text).
        median_s, p10_s, p90_s: median and 10th/90th percentile seconds per call.
        flops: FLOPs of one call (informational; the model recomputes it).
        bytes: minimum memory traffic of one call in bytes (informational).
    """

    op: str
    shape_key: str
    dtype: str
    device: str
    median_s: float
    p10_s: float
    p90_s: float
    flops: float
    bytes: float
    kernel_call: KernelCall = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in opspec.OP_PARAMS:
            raise ConfigError(f"op: must be one of {', '.join(opspec.OP_PARAMS)}, "
                              f"got {self.op!r}")
        try:
            kc = opspec.parse_shape_key(self.op, self.shape_key)
        except ValueError as exc:
            raise ConfigError(f"shape_key of {self.op}: {exc}") from None
        if self.dtype not in DTYPE_BYTES:
            raise ConfigError(f"dtype: must be one of {', '.join(DTYPE_BYTES)}, "
                              f"got {self.dtype!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ConfigError(f"device: must be a non-empty string, got {self.device!r}")
        where = f"{self.op}({self.shape_key}) {self.dtype}"
        median = _check_time(f"median_s of {where}", self.median_s, positive=True)
        p10 = _check_time(f"p10_s of {where}", self.p10_s, positive=False)
        p90 = _check_time(f"p90_s of {where}", self.p90_s, positive=False)
        if not p10 <= median <= p90:
            raise ConfigError(f"p10_s <= median_s <= p90_s of {where}: must hold, got "
                              f"{p10!r}, {median!r}, {p90!r}")
        _check_time(f"flops of {where}", self.flops, positive=False)
        _check_time(f"bytes of {where}", self.bytes, positive=False)
        object.__setattr__(self, "kernel_call", kc)


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


def _row_matches(row_device: str, device: DeviceSpec) -> bool:
    text = row_device.strip().lower()
    if text in (device.name.lower(), device.display_name.lower()):
        return True
    return resolve_device_name(row_device) == device.name


class CostModel:
    """Estimates kernel times on one device from measured rows, interpolation or roofline.

    Args:
        device: the device to estimate for.
        rows: measured profile rows (any device; only this device's are used).
        default_efficiency: fraction of the roofline (0 < e) used for an op class with no
            measured rows on this device; see :data:`DEFAULT_EFFICIENCY`.
    """

    def __init__(self, device: DeviceSpec, rows: Sequence[ProfileRow] = (),
                 default_efficiency: float = DEFAULT_EFFICIENCY) -> None:
        if not isinstance(device, DeviceSpec):
            raise ConfigError(f"device: must be a DeviceSpec, got {type(device).__name__}")
        eff_ok = (isinstance(default_efficiency, int | float)
                  and not isinstance(default_efficiency, bool)
                  and math.isfinite(default_efficiency) and default_efficiency > 0)
        if not eff_ok:
            raise ConfigError(f"default_efficiency: must be a finite number > 0, "
                              f"got {default_efficiency!r}")
        self.device = device
        self.default_efficiency = float(default_efficiency)
        self.rows: tuple[ProfileRow, ...] = ()
        self.ignored_rows = 0
        self._measured: dict[tuple[KernelCall, str], ProfileRow] = {}
        self._curves: dict[tuple[str, str], _Curve] = {}
        self._efficiency: dict[tuple[str, str | None], tuple[float, int]] = {}
        self._cache: dict[tuple[KernelCall, str], Estimate] = {}
        self._load(rows)

    # -- construction ---------------------------------------------------------------

    def _load(self, rows: Sequence[ProfileRow]) -> None:
        kept = []
        for row in rows:
            if not isinstance(row, ProfileRow):
                raise ConfigError(f"rows: must hold ProfileRow records, got "
                                  f"{type(row).__name__}")
            if (not _row_matches(row.device, self.device)
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
        logs: dict[tuple[str, str | None], list[float]] = defaultdict(list)
        for row in self.rows:
            roof = self.roofline_s(row.kernel_call, row.dtype)
            if roof > 0:
                log_ratio = math.log(roof) - math.log(row.median_s)
                cls = op_class(row.op)
                logs[(cls, row.dtype)].append(log_ratio)
                logs[(cls, None)].append(log_ratio)
        for key, values in logs.items():
            self._efficiency[key] = (math.exp(sum(values) / len(values)), len(values))

    # -- queries --------------------------------------------------------------------

    def roofline_s(self, kc: KernelCall, dtype: str) -> float:
        """Ideal seconds ``max(F / peak_flops[dtype], B / memory_bw)``, before efficiency."""
        peak = self.device.peak_flops(dtype)
        return max(opspec.flops(kc) / peak,
                   opspec.bytes_moved(kc, dtype) / self.device.memory_bw_bytes_per_s)

    def efficiency(self, op: str, dtype: str) -> tuple[float, str]:
        """Fraction of the roofline used for ``op`` in ``dtype``, and where it comes from."""
        cls = op_class(op)
        for key, scope in (((cls, dtype), f"{cls} {dtype}"), ((cls, None), f"{cls} all dtypes")):
            if key in self._efficiency:
                eff, n = self._efficiency[key]
                return eff, f"fitted on {n} {scope} row(s) of {self.device.name}"
        return self.default_efficiency, (f"global default; no measured {cls} rows on "
                                         f"{self.device.name}")

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
        eff, why = self.efficiency(kc.op, dtype)
        return Estimate(roof / eff, "roofline",
                        f"roofline {roof:.6g} s / efficiency {eff:.4g} ({why})")

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


def leave_one_out_error(rows: Sequence[ProfileRow],
                        device: DeviceSpec) -> list[tuple[ProfileRow, float, float]]:
    """Predict each of ``device``'s rows from the others.

    Returns ``(row, predicted_s, rel_error)`` per row of this device, with the signed
    relative error ``(predicted_s - row.median_s) / row.median_s``. Each prediction goes
    through interpolation or the roofline (the row itself is held out), so this measures
    how well the model fills gaps between measurements.
    """
    own = CostModel(device, rows).rows
    results = []
    for i, row in enumerate(own):
        model = CostModel(device, own[:i] + own[i + 1:])
        predicted = model.seconds(row.kernel_call, row.dtype)
        results.append((row, predicted, (predicted - row.median_s) / row.median_s))
    return results
