"""The device catalog: GPU and CPU specs as data rows, every number with its source.

A :class:`DeviceSpec` is one row. The catalog (:data:`CATALOG`) holds the GPUs of
``published.csv`` (its ``hardware_spec`` rows; each number's entry in ``sources`` cites the
primary source those rows name: the vendor datasheet or spec table and where it was read),
a few GPUs taken straight from their vendor datasheets, and a generic CPU;
:func:`cpu_spec` builds a row for a detected host CPU.

Conventions for turning vendor numbers into SI:

* Peak FLOP/s are *dense* (no 2:4 sparsity). ``float32`` is the non-tensor FP32 rate;
  ``tf32``, ``float16``, ``bfloat16`` and ``fp8`` are tensor-core rates; ``float64`` is the
  FP64 tensor-core rate where the GPU has one (A100, H100, H200), else the FP64 vector rate.
* Memory and link bandwidths are decimal (1 GB/s = 1e9 B/s). NVLink and PCIe numbers in
  vendor tables are bidirectional aggregates; the catalog stores one direction (half).
* Memory capacity: the vendor's "GB" for HBM/GDDR parts is taken as GiB (2**30 B), as the
  devices report it (an A100-80GB has 80 x 2**30 bytes of HBM2e).

This module does no file I/O: the numbers below were read from
``src/ddlsim/data/published.csv`` and are checked against it by ``tests/sim/test_hardware.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.units import DTYPE_BYTES, GB, TFLOPS, GiB

KINDS = ("gpu", "cpu")


def _freeze(mapping: Mapping) -> Mapping:
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
                           _freeze({k: float(v) for k, v in self.peak_flops_per_s.items()}))
        object.__setattr__(self, "sources", _freeze(self.sources))

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


# ---------------------------------------------------------------------------------------
# Source strings: the primary sources that the hardware_spec rows of
# src/ddlsim/data/published.csv name (their ``source`` column, shortened), plus a note on
# how the vendor number was turned into the catalog's convention.

_V100_SPECS = ("NVIDIA Volta whitepaper spec table, as reproduced at "
               "maosong.website/p/nvidia-gpu-specs (bandwidth/NVLink: koenli.com GPU table, "
               "secondary)")
_A100_SPECS = ("NVIDIA A100 datasheet, as reproduced at glennklockwood.com/garden/processors/"
               "A100 and thundercompute.com/blog/nvidia-a100-specs-full-guide")
_H100_SPECS = ("NVIDIA H100 datasheet table, as reproduced by NVIDIA partner HPC Tech "
               "(archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html) and "
               "glennklockwood.com/garden/processors/h100")
_H200_SPECS = ("H200 spec table at koenli.com (secondary), MLPerf systems JSON "
               "'H200-SXM5-141GB', AWS capacity-block table (8x H200 = 1128 GB)")
_L4_SPECS = ("NVIDIA L4 datasheet values as listed by reseller store.sourcecode.com and the "
             "grokipedia L4 vs L40S page (secondary; dense = sparse/2)")


def _cite(source: str, note: str = "") -> str:
    return f"{source} ({note})" if note else source


_HALF_OF = "bidirectional aggregate / 2 = per direction"
_GIB = "vendor 'GB' of HBM/GDDR taken as GiB"
_H200_DATASHEET = "NVIDIA H200 Tensor Core GPU datasheet (2024)"


def _gpu(name: str, display_name: str, peaks: dict[str, tuple[float, str]],
         memory: tuple[float, str], memory_bw: tuple[float, str], pcie: tuple[float, str],
         nvlink: tuple[float, str]) -> DeviceSpec:
    """Build a GPU row from (value, source) pairs; peaks in FLOP/s, the rest in SI."""
    sources = {f"peak_flops_per_s.{dt}": src for dt, (_, src) in peaks.items()}
    sources.update(memory_bytes=memory[1], memory_bw_bytes_per_s=memory_bw[1],
                   pcie_bw_bytes_per_s=pcie[1], nvlink_bw_bytes_per_s=nvlink[1])
    return DeviceSpec(name=name, display_name=display_name, kind="gpu",
                      peak_flops_per_s={dt: v for dt, (v, _) in peaks.items()},
                      memory_bytes=memory[0], memory_bw_bytes_per_s=memory_bw[0],
                      pcie_bw_bytes_per_s=pcie[0], nvlink_bw_bytes_per_s=nvlink[0],
                      sources=sources)


def _v100(memory_gib: int) -> DeviceSpec:
    return _gpu(
        f"v100-sxm2-{memory_gib}gb", f"NVIDIA Tesla V100-SXM2-{memory_gib}GB",
        peaks={
            "float64": (7.8 * TFLOPS, _cite(_V100_SPECS, note="FP64 vector; no FP64 tensor")),
            "float32": (15.7 * TFLOPS, _cite(_V100_SPECS)),
            "float16": (125 * TFLOPS, _cite(_V100_SPECS, note="tensor core, dense")),
        },
        memory=(memory_gib * GiB, _cite(_V100_SPECS, note=_GIB)),
        memory_bw=(900 * GB, _cite(_V100_SPECS)),
        pcie=(16 * GB, _cite(_V100_SPECS, note="PCIe Gen3 x16, 32 GB/s " + _HALF_OF)),
        nvlink=(150 * GB, _cite(_V100_SPECS, note="NVLink2 300 GB/s " + _HALF_OF)),
    )


_P100_DATASHEET = "NVIDIA Tesla P100 datasheet (2016), SXM2 (NVLink) module"


def _p100() -> DeviceSpec:
    # published.csv has no hardware_spec row for the P100 (its data-parallel and
    # time-to-train rows of Goyal et al. 2017 only name it); every number is from the
    # vendor datasheet. Pascal has no tensor cores: float16 is the packed-half2 FMA rate
    # (2x float32).
    return _gpu(
        "p100-sxm2-16gb", "NVIDIA Tesla P100-SXM2-16GB",
        peaks={
            "float64": (5.3 * TFLOPS, f"{_P100_DATASHEET}: double precision 5.3 TFLOPS"),
            "float32": (10.6 * TFLOPS, f"{_P100_DATASHEET}: single precision 10.6 TFLOPS"),
            "float16": (21.2 * TFLOPS, f"{_P100_DATASHEET}: half precision 21.2 TFLOPS "
                                       "(no tensor cores)"),
        },
        memory=(16 * GiB, f"{_P100_DATASHEET}: 16 GB CoWoS HBM2 ({_GIB})"),
        memory_bw=(732 * GB, f"{_P100_DATASHEET}: 732 GB/s"),
        pcie=(16 * GB, f"{_P100_DATASHEET}: PCIe Gen3 x16, 32 GB/s {_HALF_OF}"),
        nvlink=(80 * GB, f"{_P100_DATASHEET}: NVLink 160 GB/s (4 links) {_HALF_OF}"),
    )


_P40_DATASHEET = "NVIDIA Tesla P40 datasheet (2016)"


def _p40() -> DeviceSpec:
    # published.csv has no hardware_spec row for the P40 (its torchgpipe benchmark rows
    # only name it); every number is from the vendor datasheet. It is a PCIe card
    # (no NVLink). Pascal GP102 has no tensor cores and its FP16/FP64 rates are a small
    # fraction of FP32 that the datasheet does not list, so only float32 is catalogued.
    return _gpu(
        "p40", "NVIDIA Tesla P40",
        peaks={
            "float32": (12 * TFLOPS, f"{_P40_DATASHEET}: single-precision performance "
                                     "12 TeraFLOPS (GPU Boost clock)"),
        },
        memory=(24 * GiB, f"{_P40_DATASHEET}: 24 GB GDDR5 ({_GIB})"),
        memory_bw=(346 * GB, f"{_P40_DATASHEET}: memory bandwidth 346 GB/s"),
        pcie=(16 * GB, f"{_P40_DATASHEET}: PCI Express 3.0 x16 (32 GB/s bidirectional, "
                       f"{_HALF_OF})"),
        nvlink=(0.0, f"{_P40_DATASHEET}: PCIe card, no NVLink"),
    )


def _a100(memory_gib: int, bw_gbps: float) -> DeviceSpec:
    return _gpu(
        f"a100-{memory_gib}gb", f"NVIDIA A100-SXM4-{memory_gib}GB",
        peaks={
            "float64": (19.5 * TFLOPS, _cite(_A100_SPECS, note="FP64 tensor core")),
            "float32": (19.5 * TFLOPS, _cite(_A100_SPECS)),
            "tf32": (156 * TFLOPS, _cite(_A100_SPECS, note="tensor core, dense")),
            "float16": (312 * TFLOPS, _cite(_A100_SPECS, note="tensor core, dense")),
            "bfloat16": (312 * TFLOPS, _cite(_A100_SPECS, note="tensor core, dense")),
        },
        memory=(memory_gib * GiB, _cite(_A100_SPECS, note=_GIB)),
        memory_bw=(bw_gbps * GB, _cite(_A100_SPECS)),
        pcie=(32 * GB, _cite(_A100_SPECS, note="PCIe Gen4 x16, 64 GB/s " + _HALF_OF)),
        nvlink=(300 * GB, _cite(_A100_SPECS, note="NVLink3 600 GB/s " + _HALF_OF)),
    )


def _h100() -> DeviceSpec:
    return _gpu(
        "h100-sxm", "NVIDIA H100-SXM5-80GB",
        peaks={
            "float64": (67 * TFLOPS, _cite(_H100_SPECS, note="FP64 tensor core")),
            "float32": (67 * TFLOPS, _cite(_H100_SPECS)),
            "tf32": (494.7 * TFLOPS, _cite(_H100_SPECS, note="tensor core, dense")),
            "float16": (989.4 * TFLOPS, _cite(_H100_SPECS, note="tensor core, dense")),
            "bfloat16": (989.4 * TFLOPS, _cite(_H100_SPECS, note="tensor core, dense")),
            "fp8": (1978.9 * TFLOPS, _cite(_H100_SPECS, note="tensor core, dense")),
        },
        memory=(80 * GiB, _cite(_H100_SPECS, note=_GIB)),
        memory_bw=(3350 * GB, _cite(_H100_SPECS)),
        pcie=(64 * GB, _cite(_H100_SPECS, note="PCIe Gen5 x16, 128 GB/s " + _HALF_OF)),
        nvlink=(450 * GB, _cite(_H100_SPECS, note="NVLink4 900 GB/s " + _HALF_OF)),
    )


def _h200() -> DeviceSpec:
    # published.csv has no FP64/FP32/TF32 or PCIe row for the H200; those come from the
    # vendor datasheet, which lists the same compute as the H100 SXM (the H200 rows'
    # notes in published.csv say so too); its TF32 figure (989 TFLOP/s) is with sparsity,
    # dense is half.
    return _gpu(
        "h200", "NVIDIA H200-SXM-141GB",
        peaks={
            "float64": (67 * TFLOPS, _H200_DATASHEET + ": FP64 Tensor Core 67 TFLOPS"),
            "float32": (67 * TFLOPS, _H200_DATASHEET + ": FP32 67 TFLOPS"),
            "tf32": (494.7 * TFLOPS, _H200_DATASHEET + ": TF32 Tensor Core 989 TFLOPS with "
                                                       "sparsity, dense = half"),
            "float16": (989.4 * TFLOPS, _cite(_H200_SPECS, note="tensor core, dense")),
            "bfloat16": (989.4 * TFLOPS, _cite(_H200_SPECS, note="tensor core, dense")),
            "fp8": (1978.9 * TFLOPS, _cite(_H200_SPECS, note="tensor core, dense")),
        },
        memory=(141 * GiB, _cite(_H200_SPECS, note=_GIB)),
        memory_bw=(4800 * GB, _cite(_H200_SPECS)),
        pcie=(64 * GB, _H200_DATASHEET + ": PCIe Gen5 128 GB/s, " + _HALF_OF),
        nvlink=(450 * GB, _cite(_H200_SPECS, note="NVLink4 900 GB/s " + _HALF_OF)),
    )


def _l4() -> DeviceSpec:
    return _gpu(
        "l4", "NVIDIA L4",
        peaks={
            "float32": (30.3 * TFLOPS, _cite(_L4_SPECS)),
            "tf32": (60 * TFLOPS, _cite(_L4_SPECS, note="tensor core, dense")),
            "float16": (121 * TFLOPS, _cite(_L4_SPECS, note="tensor core, dense")),
            "bfloat16": (121 * TFLOPS, _cite(_L4_SPECS, note="tensor core, dense")),
            "fp8": (242.5 * TFLOPS, _cite(_L4_SPECS, note="tensor core, dense")),
        },
        memory=(24 * GiB, _cite(_L4_SPECS, note=_GIB)),
        memory_bw=(300 * GB, _cite(_L4_SPECS)),
        pcie=(32 * GB, _cite(_L4_SPECS, note="PCIe Gen4 x16, 64 GB/s " + _HALF_OF)),
        nvlink=(0.0, _cite(_L4_SPECS, note="no NVLink")),
    )


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


def _generic_cpu() -> DeviceSpec:
    # A stand-in for "some server CPU" when nothing was detected: 16 cores at 3 GHz with
    # AVX2 (two 256-bit FMA ports: 2 x 8 lanes x 2 = 32 FP32 FLOP/cycle, Intel 64 and IA-32
    # Architectures Optimization Reference Manual), 64 GiB of DDR4-3200 on 4 channels
    # (JEDEC DDR4-3200: 3200 MT/s x 8 B = 25.6 GB/s per channel -> 102.4 GB/s).
    return cpu_spec(
        "cpu-generic", cores=16, freq_hz=3.0e9, flops_per_cycle_per_core_fp32=32,
        memory_bytes=64 * GiB, memory_bw_bytes_per_s=4 * 25.6 * GB,
        source="assumed generic server CPU: 16 cores, 3 GHz, AVX2 2x256-bit FMA (Intel "
               "optimization manual), 64 GiB DDR4-3200 x 4 channels (JEDEC: 25.6 GB/s each)",
    )


def _v100_sxm3() -> DeviceSpec:
    # The DGX-2's V100 is the SXM3 part (higher TDP). Its rates are taken as the SXM2
    # part's: the NVIDIA DGX-2 datasheet gives 2 PFLOPS of tensor performance for 16 GPUs
    # = 125 TFLOPS each, the SXM2's; FP32, HBM2 and NVLink2 are assumed equal to the SXM2.
    from dataclasses import replace

    base = _v100(32)
    note = ("assumed equal to V100-SXM2 (NVIDIA DGX-2 datasheet: 2 PFLOPS tensor / 16 GPUs "
            "= 125 TFLOPS per GPU)")
    return replace(base, name="v100-sxm3-32gb", display_name="NVIDIA Tesla V100-SXM3-32GB",
                   sources={k: f"{v}; {note}" for k, v in base.sources.items()})


def _build_catalog() -> Mapping[str, DeviceSpec]:
    rows = [
        _p100(),
        _p40(),
        _v100(16),
        _v100(32),
        _v100_sxm3(),
        _a100(40, 1555),
        _a100(80, 2039),
        _h100(),
        _h200(),
        _l4(),
        _generic_cpu(),
    ]
    return _freeze({row.name: row for row in rows})


#: Catalog key -> DeviceSpec (read-only).
CATALOG: Mapping[str, DeviceSpec] = _build_catalog()


def list_devices() -> list[str]:
    """Catalog keys, in catalog order."""
    return list(CATALOG)


# ---------------------------------------------------------------------------------------
# Free-text names -> catalog keys.

# Words that say a *different* product from the one in the catalog (other clocks, TDP or
# memory): a PCIe card, the NVL variant, the DGX-2 SXM3 V100. These resolve to None.
_OTHER_VARIANT = re.compile(r"\b(pcie|nvl|sxm3)\b")


def _normalise(text: str) -> str:
    t = text.lower()
    t = re.sub(r"\b(nvidia|tesla|geforce)\b", " ", t)
    t = re.sub(r"[_/(),:]", " ", t)
    return " " + re.sub(r"\s+", " ", t).strip() + " "


def _memory_gb(t: str) -> int | None:
    m = re.search(r"(\d+)\s*gb\b", t)
    return int(m.group(1)) if m else None


# Short names a user may mistype, for did-you-mean suggestions only.
_SHORT_NAMES = {"p100": "p100-sxm2-16gb", "p40": "p40", "v100": "v100-sxm2-16gb",
                "a100": "a100-40gb",
                "h100": "h100-sxm", "h200": "h200", "l4": "l4", "cpu": "cpu-generic"}


def resolve_device_name(text: str) -> str | None:
    """Map free text naming a device to a catalog key, or None when no row is that device.

    Case-insensitive; accepts catalog keys and the usual spellings ("A100",
    "A100-SXM4-80GB", "NVIDIA A100 80GB", "H100", "H100-SXM5-80GB", "NVIDIA H100 80GB HBM3",
    "V100", "Tesla V100-SXM2-32GB", "H200-SXM-141GB", "L4", "Tesla P40", "cpu"). Without a
    memory size, "V100" is the 16 GB and "A100" the 40 GB part (the first of each). A PCIe,
    NVL or SXM3 variant is a different product (other clocks) and gives None (except the
    P40, which exists only as a PCIe card), as does any other GPU.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    key = text.strip().lower()
    if key in CATALOG:
        return key
    t = _normalise(text)
    tokens = re.sub(r"-", " ", t)
    if re.search(r"\bp40\b", tokens):  # only ever a PCIe card: "P40 PCIe" is this row
        return "p40" if _memory_gb(tokens) in (None, 24) else None
    if _OTHER_VARIANT.search(tokens):
        return None
    mem = _memory_gb(tokens)
    if re.search(r"\bp100\b", tokens):
        return "p100-sxm2-16gb" if mem in (None, 16) else None
    if re.search(r"\bv100\b", tokens):
        return {None: "v100-sxm2-16gb", 16: "v100-sxm2-16gb", 32: "v100-sxm2-32gb"}.get(mem)
    if re.search(r"\ba100\b", tokens):
        return {None: "a100-40gb", 40: "a100-40gb", 80: "a100-80gb"}.get(mem)
    if re.search(r"\bh100\b", tokens):
        return "h100-sxm" if mem in (None, 80) else None
    if re.search(r"\bh200\b", tokens):
        return "h200" if mem in (None, 141) else None
    if re.search(r"\bl4\b", tokens):
        return "l4" if mem in (None, 24) else None
    if tokens.strip() in ("cpu", "generic cpu", "cpu generic"):
        return "cpu-generic"
    return None


def get_device(name: str) -> DeviceSpec:
    """The catalog row for ``name`` (a key or any alias :func:`resolve_device_name` accepts).

    Raises ConfigError for an unknown name, suggesting the closest catalog key.
    """
    key = resolve_device_name(name) if isinstance(name, str) else None
    if key is not None:
        return CATALOG[key]
    raise unknown_name("device", name, CATALOG, "device", aliases=_SHORT_NAMES, cutoff=0.4)
