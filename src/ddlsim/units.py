"""SI constants and display formatters.

Inside ddlsim every quantity is a float in SI units: seconds, bytes, FLOPs (a
multiply-add counts as 2), bytes/s, FLOP/s. Human-facing files carry the unit in the
key (``memory_GiB``, ``latency_us``, ``bandwidth_Gbps``) and are converted once, at the
boundary, with the constants below. This module imports nothing from ddlsim.
"""

# Time
NS = 1e-9
US = 1e-6
MS = 1e-3

# Sizes (bytes)
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 1024.0
MiB = 1024.0**2
GiB = 1024.0**3

# Rates
GBps = 1e9  # gigabytes per second -> bytes/s
Gbps = 1e9 / 8  # gigabits per second -> bytes/s
TFLOPS = 1e12  # TFLOP/s -> FLOP/s

DTYPE_BYTES = {"float64": 8, "float32": 4, "tf32": 4, "float16": 2, "bfloat16": 2, "fp8": 1}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of ``dtype`` (``float32``, ``float16``, ``bfloat16``, ...)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        known = ", ".join(DTYPE_BYTES)
        raise ValueError(f"dtype: must be one of {known}, got {dtype!r}") from None


def _scaled(value: float, steps: list[tuple[float, str]], fmt: str) -> str:
    for scale, suffix in steps:
        if abs(value) >= scale:
            return f"{value / scale:{fmt}} {suffix}"
    scale, suffix = steps[-1]
    return f"{value / scale:{fmt}} {suffix}"


def fmt_seconds(t_s: float) -> str:
    """Human-readable duration: ``fmt_seconds(0.0123) == '12.3 ms'``."""
    return _scaled(t_s, [(3600, "h"), (60, "min"), (1, "s"), (MS, "ms"), (US, "us"), (NS, "ns")],
                   ".3g")


def fmt_bytes(n_bytes: float) -> str:
    """Human-readable size in binary units: ``fmt_bytes(3 * 2**30) == '3 GiB'``."""
    return _scaled(n_bytes, [(1024.0**4, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB"),
                             (1.0, "B")], ".3g")


def fmt_rate(bytes_per_s: float) -> str:
    """Human-readable bandwidth in GB/s-style decimal units."""
    return _scaled(bytes_per_s, [(TB, "TB/s"), (GB, "GB/s"), (MB, "MB/s"), (KB, "kB/s"),
                                 (1.0, "B/s")], ".3g")


def fmt_flops(flop_per_s: float) -> str:
    """Human-readable compute rate: ``fmt_flops(1.5e12) == '1.5 TFLOP/s'``."""
    return _scaled(flop_per_s, [(1e15, "PFLOP/s"), (1e12, "TFLOP/s"), (1e9, "GFLOP/s"),
                                (1e6, "MFLOP/s"), (1.0, "FLOP/s")], ".3g")
