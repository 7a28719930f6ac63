"""Facts about the host CPU, read from Linux's /proc and /sys (with portable fallbacks).

Used for the CPU row of the device catalog (peak FLOP/s of the machine the kernels were
measured on) and for the cache size the timing harness must defeat.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class HostCPU:
    model: str
    cores: int
    freq_hz: float
    flops_per_cycle_per_core_fp32: int
    l2_bytes_per_core: int
    memory_bytes: int
    source: str

    @property
    def peak_fp32_flops_per_s(self) -> float:
        return self.cores * self.freq_hz * self.flops_per_cycle_per_core_fp32


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _size_to_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", text)
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


def _l2_bytes() -> int:
    for idx in range(6):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{idx}"
        if _read(f"{base}/level").strip() == "2":
            return _size_to_bytes(_read(f"{base}/size")) or 1024**2
    return 1024**2  # 1 MiB: a typical L2 per core when sysfs does not say


@cache
def detect_host() -> HostCPU:
    """Detect the host CPU once. FLOPs/cycle assume two FMA ports per core (true of
    Intel Skylake-SP and later server cores and AMD Zen 2+): AVX-512 -> 2 ports x 16 lanes
    x 2 = 64 fp32 FLOP/cycle, AVX2+FMA -> 32, otherwise SSE -> 8."""
    info = _read("/proc/cpuinfo")
    model = re.search(r"model name\s*:\s*(.+)", info)
    flags_m = re.search(r"flags\s*:\s*(.+)", info)
    flags = set(flags_m.group(1).split()) if flags_m else set()
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", info)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if "avx512f" in flags:
        fpc, isa = 64, "AVX-512"
    elif "avx2" in flags and "fma" in flags:
        fpc, isa = 32, "AVX2+FMA"
    else:
        fpc, isa = 8, "SSE"
    meminfo = re.search(r"MemTotal:\s*(\d+) kB", _read("/proc/meminfo"))
    return HostCPU(
        model=(model.group(1).strip() if model else platform.processor() or "unknown CPU"),
        cores=int(cores or 1),
        freq_hz=float(mhz.group(1)) * 1e6 if mhz else 2.0e9,
        flops_per_cycle_per_core_fp32=fpc,
        l2_bytes_per_core=_l2_bytes(),
        memory_bytes=int(meminfo.group(1)) * 1024 if meminfo else 0,
        source=f"/proc/cpuinfo ({isa}, 'cpu MHz', usable cores), assuming 2 FMA ports per core",
    )
