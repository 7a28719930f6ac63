"""Measured kernel times as the cost model reads them: :class:`ProfileRow` (one row of a
profile CSV, validated) and which device a row belongs to (:func:`row_matches`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ddlsim import opspec
from ddlsim.errors import ConfigError
from ddlsim.opspec import KernelCall
from ddlsim.sim.hardware import DeviceSpec, resolve_device_name
from ddlsim.units import DTYPE_BYTES


def check_time(what: str, value: object, *, positive: bool) -> float:
    """``value`` as a float if finite and >= 0 (> 0 with ``positive``); ConfigError naming
    ``what``."""
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
        median = check_time(f"median_s of {where}", self.median_s, positive=True)
        p10 = check_time(f"p10_s of {where}", self.p10_s, positive=False)
        p90 = check_time(f"p90_s of {where}", self.p90_s, positive=False)
        if not p10 <= median <= p90:
            raise ConfigError(f"p10_s <= median_s <= p90_s of {where}: must hold, got "
                              f"{p10!r}, {median!r}, {p90!r}")
        check_time(f"flops of {where}", self.flops, positive=False)
        check_time(f"bytes of {where}", self.bytes, positive=False)
        object.__setattr__(self, "kernel_call", kc)



def row_matches(row_device: str, device: DeviceSpec) -> bool:
    """True when a row\'s ``device`` text names ``device``: its name or display name
    (case-insensitive), or an alias that resolves to its catalog key."""
    text = row_device.strip().lower()
    if text in (device.name.lower(), device.display_name.lower()):
        return True
    return resolve_device_name(row_device) == device.name
