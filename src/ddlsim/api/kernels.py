"""Kernel measurement: what ``ddlsim kernels ...`` and ``ddlsim demo`` call."""

from __future__ import annotations

from dataclasses import dataclass

from ddlsim.errors import ConfigError


# --------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class KernelBenchOptions:
    """Options of ``ddlsim kernels bench``."""

    model: str = "lenet5"
    batch: int = 32
    dtype: str = "float32"
    device: str = "auto"
    repeats: int = 15
    progress: bool = True
    seed: int = 0
    max_minutes: float = 30.0  # refuse a CPU profile whose estimated time exceeds this

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch: must be >= 1, got {self.batch}")
        if self.repeats < 1:
            raise ConfigError(f"repeats: must be >= 1, got {self.repeats}")


def training_step_calls(workload) -> list:
    """Every kernel call one training step of ``workload`` runs, in execution order:
    forward layer by layer, backward in reverse, then the optimizer update."""
    calls = [kc for layer in workload.layers for kc in layer.fwd]
    calls += [kc for layer in reversed(workload.layers) for kc in layer.bwd]
    calls += list(workload.update)
    return calls


def bench_kernels(opts: KernelBenchOptions):
    """Time exactly the kernels one training step of ``opts.model`` runs.

    Returns ``(profile DataFrame, backend)``; the DataFrame follows
    :mod:`ddlsim.kernels.profile`'s schema with ``calls_per_step`` filled in.
    """
    from ddlsim.kernels.backend import get_backend
    from ddlsim.kernels.profile import measure_calls
    from ddlsim.sim.workloads import get_workload

    backend = get_backend(opts.device)
    backend.dtype(opts.dtype)  # unsupported dtype -> ConfigError before any timing
    workload = get_workload(opts.model, opts.batch)
    calls = training_step_calls(workload)
    _check_feasible(opts, backend, calls)
    try:
        df = measure_calls(calls, opts.dtype, backend, repeats=opts.repeats,
                           progress=opts.progress, seed=opts.seed)
    except MemoryError:
        raise ConfigError(f"batch: {opts.model} at batch {opts.batch} ran out of memory on "
                          f"{backend.name}; use a smaller --batch") from None
    df.attrs["model"] = opts.model
    df.attrs["batch"] = opts.batch
    return df, backend


def _available_bytes(backend) -> float:
    """Free device memory (GPU) or MemAvailable (CPU) in bytes; inf when unknown."""
    if backend.name == "cupy":
        free, _ = backend.xp.cuda.Device().mem_info
        return float(free)
    import re
    from pathlib import Path

    try:
        m = re.search(r"MemAvailable:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    except OSError:
        m = None
    return float(m.group(1)) * 1024 if m else float("inf")


def _check_feasible(opts: KernelBenchOptions, backend, calls) -> None:
    """Refuse before allocating: a call whose operands do not fit in memory, or (on the
    CPU) a profile whose estimated time exceeds ``opts.max_minutes``."""
    from ddlsim import opspec
    from ddlsim.kernels.host import detect_host

    unique = list(dict.fromkeys(calls))
    biggest = max(unique, key=lambda kc: opspec.bytes_moved(kc, opts.dtype))
    need = 2.0 * opspec.bytes_moved(biggest, opts.dtype)  # operands + backend workspace
    have = _available_bytes(backend)
    if need > have:
        raise ConfigError(f"batch: {opts.model} at batch {opts.batch} needs about "
                          f"{need / 2**30:.1f} GiB for {biggest} but {backend.name} has "
                          f"{have / 2**30:.1f} GiB free; use a smaller --batch")
    if backend.name == "numpy":
        # Assume 30 % of the host's fp32 peak and ~(repeats + 4) calls per kernel.
        rate = 0.3 * detect_host().peak_fp32_flops_per_s
        est_s = sum(opspec.flops(kc) for kc in unique) / rate * (opts.repeats + 4)
        if est_s > 60 * opts.max_minutes:
            raise ConfigError(f"batch: timing {opts.model} at batch {opts.batch} on this CPU "
                              f"would take about {est_s / 60:.0f} min (more than "
                              f"{opts.max_minutes:g}); use a smaller --batch or --repeats")


def host_device_spec(memory_bw_bytes_per_s: float | None = None):
    """The catalog row for the CPU this process runs on (see :mod:`ddlsim.kernels.host`)."""
    from ddlsim.kernels.host import detect_host
    from ddlsim.sim.hardware import cpu_spec

    host = detect_host()
    if memory_bw_bytes_per_s is None:
        from ddlsim.kernels.backend import get_backend
        from ddlsim.kernels.profile import measure_memory_bandwidth

        memory_bw_bytes_per_s = measure_memory_bandwidth(get_backend("cpu"))
        bw_source = "measured here: float32 copy of 256 MiB, read + write bytes / median time"
    else:
        bw_source = "given by caller"
    return cpu_spec(
        name="host-cpu", cores=host.cores, freq_hz=host.freq_hz,
        flops_per_cycle_per_core_fp32=host.flops_per_cycle_per_core_fp32,
        memory_bytes=host.memory_bytes, memory_bw_bytes_per_s=memory_bw_bytes_per_s,
        source=f"{host.model}: {host.source}; memory bandwidth {bw_source}",
    )


def peak_for_profile(df):
    """Peak FLOP/s per row of a profile: the catalog GPU its ``device`` names, or this host
    when the profile was measured on this host's CPU; NaN where neither is known."""
    import numpy as np

    from ddlsim.kernels.host import detect_host
    from ddlsim.sim.hardware import get_device, resolve_device_name

    peaks = []
    host = detect_host()
    for device, dtype in zip(df["device"], df["dtype"], strict=True):
        key = resolve_device_name(str(device))
        if key is not None:
            spec = get_device(key)
            peaks.append(spec.peak_flops_per_s.get(dtype, np.nan))
        elif str(device) == host.model:
            peaks.append(host.peak_fp32_flops_per_s * (1.0 if dtype == "float32" else np.nan))
        else:
            peaks.append(np.nan)
    return np.asarray(peaks, dtype=float)


def summarize_profile(df, top: int = 15):
    """Per-row time share and achieved fraction of peak, sorted by time per step.

    Returns a DataFrame with op, shape, calls_per_step, median_s, step_s (median x calls),
    share of the step, achieved FLOP/s and fraction of peak.
    """
    out = df.copy()
    out["step_s"] = out["median_s"] * out["calls_per_step"]
    total = out["step_s"].sum()
    out["share"] = out["step_s"] / total if total > 0 else 0.0
    out["frac_of_peak"] = out["flops_per_s"] / peak_for_profile(out)
    cols = ["op", "shape", "dtype", "calls_per_step", "median_s", "step_s", "share",
            "flops_per_s", "frac_of_peak"]
    return out.sort_values("step_s", ascending=False)[cols].head(top).reset_index(drop=True)
