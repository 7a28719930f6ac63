"""The calibration every prediction uses: a few global constants of the cost model.

:class:`Calibration` holds the achieved fraction of the roofline for GEMM-like ops per
GPU family and precision class, one fraction for memory-bound ops, and one factor per
training framework. ``ddlsim calibrate`` fits them (:mod:`ddlsim.validation.fit`) and
stores them in ``data/calibration.json``; every predicting command loads that stored file
by default (:func:`load_calibration`). A user's own calibration file *adds to* the stored
constants: its keys replace the stored ones, the others stay.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ddlsim.errors import ConfigError
from ddlsim.sim.costs import DEFAULT_EFFICIENCY, CostModel, op_class

#: The stored calibration (written by ``ddlsim calibrate``).
CALIBRATION_FILE = Path(__file__).resolve().parents[1] / "data" / "calibration.json"

#: Precision class of the GEMM efficiency for each compute dtype.
PRECISION_CLASS = {"float32": "fp32", "tf32": "tf32", "float16": "half", "bfloat16": "half",
                   "float64": "fp64", "fp8": "fp8"}

#: Range a fitted efficiency may take; a fit that ends on either end is a missing mechanism.
EFFICIENCY_BOUNDS = (0.2, 1.0)


def device_family(device_name: str) -> str:
    """GPU family of a catalog key (``a100-80gb`` -> ``a100``, ``h100-sxm`` -> ``h100``)."""
    m = re.match(r"^([a-z]+\d+)", device_name)
    return m.group(1) if m else device_name


def gemm_key(device_name: str, dtype: str) -> str:
    """Calibration key of the GEMM efficiency of ``dtype`` on a device: ``family/class``."""
    return f"{device_family(device_name)}/{PRECISION_CLASS.get(dtype, dtype)}"


@dataclass(frozen=True)
class Calibration:
    """Global constants of the cost model.

    Args:
        gemm_efficiency: ``family/class`` (``a100/half``) or ``class`` (``half``) -> achieved
            fraction (0 < e <= 1) of the roofline for GEMM-like ops (gemm, bmm, conv).
        memory_efficiency: achieved fraction of the roofline for every other op.
        default_efficiency: GEMM fraction for a key with no entry.
        framework_memory_factor: framework -> factor (> 0) on ``memory_efficiency`` for its
            runs (fused memory-bound kernels move fewer bytes than PyTorch eager, factor 1).
        framework_overhead_s: framework -> seconds per iteration outside the kernels.
        label: where the constants come from (``stored, fitted on 14 rows``).
        fit_rows: fingerprints of the reference rows the constants were fitted on.
    """

    gemm_efficiency: Mapping[str, float] = field(default_factory=dict)
    memory_efficiency: float = DEFAULT_EFFICIENCY
    default_efficiency: float = DEFAULT_EFFICIENCY
    framework_memory_factor: Mapping[str, float] = field(default_factory=dict)
    framework_overhead_s: Mapping[str, float] = field(default_factory=dict)
    label: str = "default"
    fit_rows: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        checks = [*((f"gemm_efficiency[{k}]", v) for k, v in self.gemm_efficiency.items()),
                  ("memory_efficiency", self.memory_efficiency),
                  ("default_efficiency", self.default_efficiency),
                  *((f"framework_memory_factor[{k}]", v)
                    for k, v in self.framework_memory_factor.items())]
        for name, value in checks:
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")
        for k, value in self.framework_overhead_s.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"framework_overhead_s[{k}]: must be a finite number >= 0, "
                                  f"got {value!r}")

    def gemm(self, dtype: str, device_name: str | None = None) -> float:
        """GEMM efficiency for ``dtype`` on ``device_name``: the ``family/class`` entry, else
        the ``class`` entry, else the geometric mean of the other GPU families' entries of
        that precision class (a generation the measurements lack borrows what its
        neighbours achieve at the same precision), else ``default_efficiency``."""
        cls = PRECISION_CLASS.get(dtype, dtype)
        if device_name is not None:
            key = gemm_key(device_name, dtype)
            if key in self.gemm_efficiency:
                return float(self.gemm_efficiency[key])
        if cls in self.gemm_efficiency:
            return float(self.gemm_efficiency[cls])
        same = [v for k, v in self.gemm_efficiency.items() if k.endswith(f"/{cls}")]
        if same:
            return float(math.exp(sum(math.log(v) for v in same) / len(same)))
        return float(self.default_efficiency)

    def memory(self, framework: str = "") -> float:
        """Memory-bound efficiency for runs of ``framework``."""
        return float(self.memory_efficiency * self.framework_memory_factor.get(framework, 1.0))

    def overhead(self, framework: str = "") -> float:
        """Seconds per iteration outside the kernels for runs of ``framework``."""
        return float(self.framework_overhead_s.get(framework, 0.0))

    def describe(self) -> str:
        """The one line every predicting command prints."""
        return f"calibration: {self.label}"

    def to_dict(self) -> dict:
        return {"gemm_efficiency": dict(sorted(self.gemm_efficiency.items())),
                "memory_efficiency": self.memory_efficiency,
                "default_efficiency": self.default_efficiency,
                "framework_memory_factor": dict(sorted(self.framework_memory_factor.items())),
                "framework_overhead_s": dict(sorted(self.framework_overhead_s.items()))}

    @classmethod
    def from_dict(cls, rec: Mapping[str, object], label: str = "", fit_rows=()) -> Calibration:
        keys = ("gemm_efficiency", "memory_efficiency", "default_efficiency",
                "framework_memory_factor", "framework_overhead_s")
        return cls(**{k: rec[k] for k in keys if k in rec}, label=label or "from file",
                   fit_rows=tuple(fit_rows))

    def merged(self, other: Mapping[str, object], label: str) -> Calibration:
        """These constants with ``other``'s (a :meth:`to_dict` record) added on top."""
        upd: dict = {}
        for k in ("gemm_efficiency", "framework_memory_factor", "framework_overhead_s"):
            if k in other:
                upd[k] = {**getattr(self, k), **dict(other[k])}  # type: ignore[arg-type]
        for k in ("memory_efficiency", "default_efficiency"):
            if k in other:
                upd[k] = other[k]
        return replace(self, **upd, label=label)


DEFAULT_CALIBRATION = Calibration(label=f"default (first principles: efficiency "
                                        f"{DEFAULT_EFFICIENCY:g} for every op)")


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"calibration: file not found: {path}")
    try:
        rec = json.loads(path.read_text())
        if not isinstance(rec.get("constants"), dict):
            raise KeyError("constants")
        return rec
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"calibration {path}: not a calibration file (missing or bad "
                          f"{exc})") from None


def stored_calibration() -> Calibration:
    """The constants of ``data/calibration.json``."""
    rec = _read(CALIBRATION_FILE)
    rows = tuple(rec.get("fit_rows", ()))
    return Calibration.from_dict(rec["constants"], label=f"stored, fitted on {len(rows)} rows",
                                 fit_rows=rows)


def load_calibration(spec: str | Path | Calibration | None = "stored") -> Calibration:
    """``"stored"`` (or None): the stored constants; ``"default"``: first principles; a path
    to a JSON file written by ``ddlsim calibrate``: its constants added to the stored ones;
    a :class:`Calibration`: itself."""
    if isinstance(spec, Calibration):
        return spec
    if spec is None or spec == "stored":
        return stored_calibration()
    if spec == "default":
        return DEFAULT_CALIBRATION
    path = Path(spec)
    if path.suffix != ".json":
        raise ConfigError(f"calibration: must be 'stored', 'default' or a .json file written "
                          f"by 'ddlsim calibrate', got {str(spec)!r}")
    rec = _read(path)
    rows = tuple(rec.get("fit_rows", ()))
    base = stored_calibration()
    merged = base.merged(rec["constants"], label=f"{path.name} ({len(rows)} rows) on top of "
                                                 f"{base.label}")
    return replace(merged, fit_rows=tuple(dict.fromkeys(base.fit_rows + rows)))


class CalibratedCostModel:
    """A device's cost model under a :class:`Calibration` (roofline path), or its measured
    profile when ``base`` holds rows for it (measured takes precedence)."""

    def __init__(self, base: CostModel, calib: Calibration, framework: str = "") -> None:
        self.base, self.device, self.calib, self.framework = base, base.device, calib, framework
        self._models: dict[float, CostModel] = {}

    @property
    def rows(self):
        return self.base.rows

    def estimate(self, kc, dtype: str):
        if self.base.rows:
            return self.base.estimate(kc, dtype)
        e = (self.calib.gemm(dtype, self.device.name) if op_class(kc.op) == "gemm-like"
             else self.calib.memory(self.framework))
        if e not in self._models:
            self._models[e] = CostModel(self.device, default_efficiency=e, gemm_shape=True)
        return self._models[e].estimate(kc, dtype)

    def seconds(self, kc, dtype: str) -> float:
        return self.estimate(kc, dtype).seconds

    def __getattr__(self, name):
        return getattr(self.base, name)


def calibrated_factory(calib: Calibration, framework: str = ""):
    """``factory(device_names, rows) -> {name: model}`` for the engines of :mod:`ddlsim.api`."""
    def factory(device_names, rows):
        from ddlsim.api.dp import cost_models

        return {n: CalibratedCostModel(m, calib, framework)
                for n, m in cost_models(device_names, rows).items()}
    return factory
