"""Kernel profiles: measure kernel calls and keep the results as a documented table.

Schema (one row per op x shape x dtype x device; CSV with a header, loaded into pandas):

============== ======= ==========================================================
column         unit    meaning
============== ======= ==========================================================
op             -       op name, a key of :data:`ddlsim.opspec.OP_PARAMS`
shape          -       canonical shape key, e.g. ``m=64,n=128,k=256``
dtype          -       ``float32``, ``float16``, ``bfloat16``
device         -       device identity (GPU name, or CPU model) the row was measured on
backend        -       ``numpy`` or ``cupy``
median_s       s       median seconds per call
p10_s, p90_s   s       10th / 90th percentile seconds per call
repeats        -       timed samples; ``inner`` calls per sample
inner          -
flops          FLOP    FLOPs of one call (multiply-add = 2), from :func:`ddlsim.opspec.flops`
bytes          B       minimum memory traffic of one call (:func:`ddlsim.opspec.bytes_moved`)
flops_per_s    FLOP/s  achieved: flops / median_s
bytes_per_s    B/s     achieved: bytes / median_s
calls_per_step -       how often one training step of the profiled model runs this call
                       (optional when loading; 1 when absent)
============== ======= ==========================================================
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ddlsim import opspec
from ddlsim.errors import ConfigError
from ddlsim.fsutil import atomic_write_text
from ddlsim.kernels import ops
from ddlsim.kernels.backend import Backend
from ddlsim.kernels.host import detect_host
from ddlsim.kernels.timing import rotation_count, time_callable

COLUMNS = ["op", "shape", "dtype", "device", "backend", "median_s", "p10_s", "p90_s", "repeats",
           "inner", "flops", "bytes", "flops_per_s", "bytes_per_s", "calls_per_step"]
_NUMERIC = ["median_s", "p10_s", "p90_s", "repeats", "inner", "flops", "bytes", "flops_per_s",
            "bytes_per_s", "calls_per_step"]


def device_name(backend: Backend) -> str:
    """The device identity recorded in profile rows."""
    info = backend.device_info()
    return str(info.get("name") or info.get("cpu") or backend.name)


def cache_bytes(backend: Backend) -> int:
    """Cache size the harness must defeat: the GPU's L2, or the CPU's total L2."""
    if backend.name == "cupy":
        dev = backend.xp.cuda.Device()
        return int(dev.attributes.get("L2CacheSize", 50 * 1024**2))
    host = detect_host()
    return host.l2_bytes_per_core * host.cores


def _nbytes(arrays: Iterable) -> int:
    return int(sum(getattr(a, "nbytes", 0) for a in arrays))


def measure_call(kc: opspec.KernelCall, dtype: str, backend: Backend, *, repeats: int = 15,
                 warmup: int = 2, seed: int = 0, min_block_s: float = 1e-3) -> dict:
    """Time one kernel call on ``backend`` and return one profile row (a dict in COLUMNS)."""
    rng = np.random.default_rng(seed)
    first = ops.make_inputs(kc, backend.xp, dtype, rng)
    n_sets = rotation_count(_nbytes(first), cache_bytes(backend))
    input_sets = [first] + [ops.make_inputs(kc, backend.xp, dtype, rng) for _ in range(n_sets - 1)]
    stats = time_callable(lambda *a: ops.run(kc, a), input_sets, backend, repeats=repeats,
                          warmup=warmup, min_block_s=min_block_s)
    f = opspec.flops(kc)
    b = opspec.bytes_moved(kc, dtype)
    return {
        "op": kc.op, "shape": kc.shape_key, "dtype": dtype, "device": device_name(backend),
        "backend": backend.name, "median_s": stats.median_s, "p10_s": stats.p10_s,
        "p90_s": stats.p90_s, "repeats": stats.repeats, "inner": stats.inner, "flops": f,
        "bytes": b, "flops_per_s": f / stats.median_s, "bytes_per_s": b / stats.median_s,
        "calls_per_step": 1,
    }


def measure_calls(calls: Sequence[opspec.KernelCall], dtype: str, backend: Backend, *,
                  repeats: int = 15, progress: bool = True, seed: int = 0):
    """Time each distinct call once (in first-seen order) and return a profile DataFrame
    whose ``calls_per_step`` counts how often ``calls`` holds each one."""
    import pandas as pd
    from tqdm.auto import tqdm

    counts: dict[opspec.KernelCall, int] = {}
    for kc in calls:
        counts[kc] = counts.get(kc, 0) + 1
    rows = []
    for kc, count in tqdm(counts.items(), desc=f"timing kernels ({backend.name}, {dtype})",
                          unit="kernel", disable=not progress, leave=False):
        row = measure_call(kc, dtype, backend, repeats=repeats, seed=seed)
        row["calls_per_step"] = count
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def measure_memory_bandwidth(backend: Backend, nbytes: int = 256 * 1024**2,
                             repeats: int = 5) -> float:
    """Achieved copy bandwidth in bytes/s (read + write) on a buffer of ``nbytes``."""
    xp = backend.xp
    src = xp.ones(nbytes // 4, dtype=xp.float32)
    dst = xp.empty_like(src)
    stats = time_callable(lambda s, d: xp.copyto(d, s), [(src, dst)], backend,
                          repeats=repeats, warmup=1, min_block_s=0.0)
    return 2.0 * src.nbytes / stats.median_s


def save_profile(df, path: str | os.PathLike, device_info: dict | None = None) -> Path:
    """Write ``df`` as CSV atomically (a temporary file renamed into place); with
    ``device_info`` (:meth:`Backend.device_info`: name, memory, driver/runtime, library
    versions) also write it beside the CSV as ``<name>.device.json``."""
    import json

    path = Path(path)
    if device_info is not None:
        atomic_write_text(device_info_path(path), json.dumps(device_info, indent=2,
                                                             sort_keys=True, default=str))
    return atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def device_info_path(profile_path: str | os.PathLike) -> Path:
    """Where the device identity of a profile CSV is kept."""
    p = Path(profile_path)
    return p.with_name(p.stem + ".device.json")


def load_profile(path: str | os.PathLike):
    """Read and validate a profile CSV; errors name the file, row, column and value."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"op": str, "shape": str, "dtype": str, "device": str,
                                      "backend": str})
    except FileNotFoundError:
        raise ConfigError(f"{path}: profile file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not a readable CSV profile ({first})") from None
    if "calls_per_step" not in df.columns:
        df["calls_per_step"] = 1
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}; "
                          f"a profile needs {', '.join(COLUMNS)}")
    for col in _NUMERIC:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values) | (values < 0)
        if col in ("median_s", "p10_s", "p90_s", "repeats", "inner"):
            bad |= values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(f"{path}: row {i + 2}, column {col}: must be a finite number "
                              f"{'> 0' if col.endswith('_s') else '>= 0'}, got {df[col].iloc[i]!r}")
        df[col] = values
    for i, (op, shape) in enumerate(zip(df["op"], df["shape"], strict=True)):
        try:
            opspec.parse_shape_key(str(op), str(shape))
        except ValueError as exc:
            raise ConfigError(f"{path}: row {i + 2}: {exc}") from None
    return df


def stamp() -> str:
    """UTC timestamp for provenance lines."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
