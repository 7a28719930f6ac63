"""Timing harness: warm up, synchronise, measure, synchronise; report robust statistics.

One function, :func:`time_callable`, times a kernel the same way on both backends:

* warm-up calls are run and discarded (first-call allocation, BLAS thread start-up,
  CuPy kernel compilation);
* inputs are rotated among several independent buffer sets whose total size exceeds the
  device's cache (GPU L2, CPU L2), so what is timed is not a cache-resident replay;
* GPU: a CUDA event pair brackets each sample on the current stream; CPU:
  :func:`time.perf_counter` around each sample after synchronising;
* short kernels are timed in blocks of ``inner`` calls (chosen so a block lasts at least
  ``min_block_s``), so timer resolution and Python overhead do not dominate;
* the result is the median with the 10th and 90th percentiles over ``repeats`` samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ddlsim.kernels.backend import Backend


@dataclass(frozen=True)
class TimingStats:
    """Per-call seconds: median, 10th and 90th percentiles over ``repeats`` samples."""

    median_s: float
    p10_s: float
    p90_s: float
    repeats: int
    inner: int  # calls per timed sample


def rotation_count(input_bytes: float, cache_bytes: float, max_sets: int = 32) -> int:
    """How many independent input sets to rotate so together they exceed 2x the cache.

    ``input_bytes``: bytes of one input set; ``cache_bytes``: the cache to defeat.
    """
    if input_bytes <= 0:
        return 1
    return int(min(max_sets, max(1, math.ceil(2.0 * cache_bytes / input_bytes))))


def _run_block(fn: Callable[..., Any], input_sets: Sequence[tuple], start: int, inner: int) -> int:
    n = len(input_sets)
    for i in range(inner):
        fn(*input_sets[(start + i) % n])
    return start + inner


def time_callable(
    fn: Callable[..., Any],
    input_sets: Sequence[tuple],
    backend: Backend,
    *,
    repeats: int = 20,
    warmup: int = 3,
    min_block_s: float = 1e-3,
    max_inner: int = 1000,
) -> TimingStats:
    """Time ``fn(*inputs)`` rotating over ``input_sets`` on ``backend``.

    ``repeats``: number of timed samples (>= 1); ``warmup``: untimed calls first;
    ``min_block_s``: seconds a timed block should last at least (sets ``inner``).
    Returns per-call statistics in seconds.
    """
    if repeats < 1:
        raise ValueError(f"repeats: must be >= 1, got {repeats}")
    if not input_sets:
        raise ValueError("input_sets: must hold at least one set of inputs")
    pos = _run_block(fn, input_sets, 0, max(warmup, 1))
    backend.synchronize()

    # Calibrate the block size from one timed call.
    t0 = time.perf_counter()
    pos = _run_block(fn, input_sets, pos, 1)
    backend.synchronize()
    one = max(time.perf_counter() - t0, 1e-9)
    inner = int(min(max_inner, max(1, math.ceil(min_block_s / one))))

    samples = np.empty(repeats)
    if backend.name == "cupy":
        cp = backend.xp
        start_ev, stop_ev = cp.cuda.Event(), cp.cuda.Event()
        for r in range(repeats):
            start_ev.record()
            pos = _run_block(fn, input_sets, pos, inner)
            stop_ev.record()
            stop_ev.synchronize()
            samples[r] = cp.cuda.get_elapsed_time(start_ev, stop_ev) * 1e-3 / inner
    else:
        for r in range(repeats):
            t0 = time.perf_counter()
            pos = _run_block(fn, input_sets, pos, inner)
            backend.synchronize()
            samples[r] = (time.perf_counter() - t0) / inner
    p10, med, p90 = np.percentile(samples, [10, 50, 90])
    return TimingStats(float(med), float(p10), float(p90), repeats, inner)
