"""One device as a data row: :class:`DeviceSpec` (peak rates, memory and links in SI units,
every number with its source) and :func:`cpu_spec` for a host CPU; the conventions are in
:mod:`ddlsim.sim.hardware`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ddlsim.errors import ConfigError
from ddlsim.units import DTYPE_BYTES

KINDS = ("gpu", "cpu")


def freeze(mapping: Mapping) -> Mapping:
    """A read-only copy of ``mapping``."""
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DeviceSpec:
    """One device: peak rates, memory and host/peer links, in SI units.

    Args:
        name: catalog key (``"a100-40gb"``) or, for a host CPU, its model string.
        display_name: human-readable name (``"NVIDIA A100-SXM4-40GB"``).
        kind: ``"gpu"`` or ``"cpu"``.
        peak_flops_per_s: dtype -> dense peak FLOP/s; keys from :data:`ddlsim.units.DTYPE_BYTES`.
        memory_bytes: device memory capacity in bytes.
        memory_bw_bytes_per_s: device memory bandwidth in bytes/s.
        pcie_bw_bytes_per_s: host link bandwidth per direction in bytes/s (0 for a CPU).
        nvlink_bw_bytes_per_s: NVLink bandwidth per GPU per direction in bytes/s (0 if none).
        sources: field -> where the number comes from. Keys are the numeric field names, and
            ``"peak_flops_per_s.<dtype>"`` for each peak; every number must have one.
    """

    name: str
    display_name: str
    kind: str
    peak_flops_per_s: Mapping[str, float]
    memory_bytes: float
    memory_bw_bytes_per_s: float
    pcie_bw_bytes_per_s: float
    nvlink_bw_bytes_per_s: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        _check_text("display_name", self.display_name)
        if self.kind not in KINDS:
            raise ConfigError(f"kind of {self.name}: must be one of {KINDS}, got {self.kind!r}")
        if not self.peak_flops_per_s:
            raise ConfigError(f"peak_flops_per_s of {self.name}: needs at least one dtype, "
                              f"got {dict(self.peak_flops_per_s)!r}")
        for dtype, rate in self.peak_flops_per_s.items():
            if dtype not in DTYPE_BYTES:
                raise ConfigError(f"peak_flops_per_s of {self.name}: dtype must be one of "
                                  f"{', '.join(DTYPE_BYTES)}, got {dtype!r}")
            _check_positive(f"peak_flops_per_s[{dtype}] of {self.name}", rate)
        _check_positive(f"memory_bytes of {self.name}", self.memory_bytes)
        _check_positive(f"memory_bw_bytes_per_s of {self.name}", self.memory_bw_bytes_per_s)
        if self.kind == "gpu":
            _check_positive(f"pcie_bw_bytes_per_s of {self.name}", self.pcie_bw_bytes_per_s)
        else:
            _check_nonnegative(f"pcie_bw_bytes_per_s of {self.name}", self.pcie_bw_bytes_per_s)
        _check_nonnegative(f"nvlink_bw_bytes_per_s of {self.name}", self.nvlink_bw_bytes_per_s)
        missing = [key for key in self.source_keys() if not str(self.sources.get(key, "")).strip()]
        if missing:
            raise ConfigError(f"sources of {self.name}: every number needs a source, "
                              f"missing {missing}")
        object.__setattr__(self, "peak_flops_per_s",
                           freeze({k: float(v) for k, v in self.peak_flops_per_s.items()}))
        object.__setattr__(self, "sources", freeze(self.sources))

    def source_keys(self) -> list[str]:
        """The keys ``sources`` must have: one per peak dtype and one per other number."""
        keys = [f"peak_flops_per_s.{dtype}" for dtype in self.peak_flops_per_s]
        return keys + ["memory_bytes", "memory_bw_bytes_per_s", "pcie_bw_bytes_per_s",
                       "nvlink_bw_bytes_per_s"]

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Dtypes this device has a peak rate for (the ones the cost model accepts)."""
        return tuple(self.peak_flops_per_s)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; ConfigError naming dtype and device if absent."""
        try:
            return self.peak_flops_per_s[dtype]
        except KeyError:
            raise ConfigError(f"dtype: {dtype!r} is not supported on {self.name} "
                              f"(supports {', '.join(self.dtypes)})") from None

    def __hash__(self) -> int:  # mappings are not hashable; the name identifies a row
        return hash((self.name, self.kind, self.memory_bytes, self.memory_bw_bytes_per_s))


def gpu_spec(name: str, display_name: str, peaks: Mapping[str, tuple[float, str]],
             memory: tuple[float, str], memory_bw: tuple[float, str], pcie: tuple[float, str],
             nvlink: tuple[float, str]) -> DeviceSpec:
    """A GPU row from ``(value, source)`` pairs: ``peaks`` maps dtype -> (dense FLOP/s, source);
    memory in bytes, bandwidths in bytes/s per direction (see :mod:`ddlsim.sim.hardware`)."""
    sources = {f"peak_flops_per_s.{dt}": src for dt, (_, src) in peaks.items()}
    sources.update(memory_bytes=memory[1], memory_bw_bytes_per_s=memory_bw[1],
                   pcie_bw_bytes_per_s=pcie[1], nvlink_bw_bytes_per_s=nvlink[1])
    return DeviceSpec(name=name, display_name=display_name, kind="gpu",
                      peak_flops_per_s={dt: v for dt, (v, _) in peaks.items()},
                      memory_bytes=memory[0], memory_bw_bytes_per_s=memory_bw[0],
                      pcie_bw_bytes_per_s=pcie[0], nvlink_bw_bytes_per_s=nvlink[0],
                      sources=sources)


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what}: must be a non-empty string, got {value!r}")


def _check_positive(what: str, value: object) -> None:
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise ConfigError(f"{what}: must be a finite number > 0, got {value!r}")


def _check_nonnegative(what: str, value: object) -> None:
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise ConfigError(f"{what}: must be a finite number >= 0, got {value!r}")

def cpu_spec(name: str, cores: int, freq_hz: float, flops_per_cycle_per_core_fp32: float,
             memory_bytes: float, memory_bw_bytes_per_s: float, source: str) -> DeviceSpec:
    """A host CPU as a catalog row.

    Peak float32 FLOP/s = cores x freq_hz x flops_per_cycle_per_core_fp32; float64 is half of
    that (a SIMD register holds half as many 64-bit lanes). The CPU has no PCIe/NVLink link
    of its own in this model (both 0).

    Args:
        name: the CPU's identity (model string); matched against profile rows' ``device``.
        cores: physical cores used for compute (> 0).
        freq_hz: sustained clock in Hz (> 0).
        flops_per_cycle_per_core_fp32: FP32 FLOPs per cycle per core (e.g. 32 for two
            256-bit FMA units: 2 units x 8 lanes x 2).
        memory_bytes: RAM in bytes.
        memory_bw_bytes_per_s: RAM bandwidth in bytes/s.
        source: where these numbers come from (used for every field).
    """
    if not isinstance(cores, int) or isinstance(cores, bool) or cores <= 0:
        raise ConfigError(f"cores: must be an integer > 0, got {cores!r}")
    _check_positive("freq_hz", freq_hz)
    _check_positive("flops_per_cycle_per_core_fp32", flops_per_cycle_per_core_fp32)
    _check_text("source", source)
    fp32 = cores * float(freq_hz) * float(flops_per_cycle_per_core_fp32)
    formula = (f"{cores} cores x {freq_hz / 1e9:.3g} GHz x {flops_per_cycle_per_core_fp32:g} "
               f"FLOP/cycle")
    sources = {
        "peak_flops_per_s.float32": f"{source}; {formula}",
        "peak_flops_per_s.float64": f"{source}; {formula} / 2 (half the SIMD lanes)",
        "memory_bytes": source,
        "memory_bw_bytes_per_s": source,
        "pcie_bw_bytes_per_s": "a CPU host has no host link of its own in this model (0)",
        "nvlink_bw_bytes_per_s": "a CPU has no NVLink (0)",
    }
    return DeviceSpec(name=name, display_name=name, kind="cpu",
                      peak_flops_per_s={"float64": fp32 / 2, "float32": fp32},
                      memory_bytes=memory_bytes, memory_bw_bytes_per_s=memory_bw_bytes_per_s,
                      pcie_bw_bytes_per_s=0.0, nvlink_bw_bytes_per_s=0.0, sources=sources)
