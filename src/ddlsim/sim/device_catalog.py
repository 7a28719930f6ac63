"""The catalog rows (:data:`CATALOG`): the GPUs of ``published.csv`` with each number's
primary source, a few GPUs from their vendor datasheets (more in
:mod:`ddlsim.sim.device_catalog_nvidia`, :mod:`ddlsim.sim.device_catalog_amd` and
:mod:`ddlsim.sim.device_catalog_intel`) and a
generic CPU. Rows a user file adds (:func:`add_device`) join them for the rest of the
process; the built-in ones (:data:`BUILTIN_DEVICES`) cannot be replaced."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ddlsim.errors import ConfigError
from ddlsim.sim.device_catalog_amd import amd_rows
from ddlsim.sim.device_catalog_intel import intel_rows
from ddlsim.sim.device_catalog_nvidia import nvidia_rows
from ddlsim.sim.device_spec import DeviceSpec, cpu_spec, gpu_spec
from ddlsim.units import GB, TFLOPS, GiB

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
    return gpu_spec(name, display_name, peaks, memory, memory_bw, pcie, nvlink)


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


def _build_rows() -> dict[str, DeviceSpec]:
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
        *nvidia_rows(),
        *amd_rows(),
        *intel_rows(),
        _generic_cpu(),
    ]
    return {row.name: row for row in rows}


_ROWS: dict[str, DeviceSpec] = _build_rows()

#: Catalog key -> DeviceSpec (read-only view; user rows added by :func:`add_device` appear in
#: it too).
CATALOG: Mapping[str, DeviceSpec] = MappingProxyType(_ROWS)

#: Keys of the built-in rows (a user catalog may not replace them).
BUILTIN_DEVICES: frozenset[str] = frozenset(_ROWS)


def list_devices() -> list[str]:
    """Catalog keys, in catalog order (built-in rows, then user rows)."""
    return list(CATALOG)


def add_device(spec: DeviceSpec) -> None:
    """Add (or replace) a user row; a built-in key is refused."""
    if not isinstance(spec, DeviceSpec):
        raise ConfigError(f"device: must be a DeviceSpec, got {type(spec).__name__}")
    if spec.name in BUILTIN_DEVICES:
        raise ConfigError(f"device {spec.name!r}: is a built-in catalog row; a user device "
                          "cannot replace it (choose another name)")
    _ROWS[spec.name] = spec


def remove_device(name: str) -> None:
    """Remove a user row (no-op if absent); a built-in key is refused."""
    if name in BUILTIN_DEVICES:
        raise ConfigError(f"device {name!r}: is a built-in catalog row and cannot be removed")
    _ROWS.pop(name, None)
