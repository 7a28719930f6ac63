"""One prepared GPU run: op checks, kernel profiles, and a side-by-side with torch.

Run on the device machine with ``bash bench/gpu/run.sh`` (see bench/gpu/README.md); here,
on a CPU, with ``PYTHONPATH=src python3 bench/gpu/gpu_bench.py --device cpu --quick``.

Parts, in the order they run (an exception in one part is recorded and the next runs):

1. **checks** -- every op of :data:`ddlsim.opspec.OP_PARAMS` at a small odd shape, run
   by :mod:`ddlsim.kernels.ops` on the chosen backend in each supported dtype and compared
   with the same op run by NumPy in float64 on the same (rounded) inputs.
   ``max_rel_err = max|out - ref| / max|ref|`` over every output of the op; integer
   outputs (argmax) must match exactly; a NaN/inf fails. Writes ``checks.csv``.
2. **side-by-side** -- the GEMM/BMM shapes of the models and the forward convolutions of
   the CNN, timed with CuPy (through :func:`ddlsim.kernels.timing.time_callable`) and with
   torch (``torch.matmul``, ``torch.nn.functional.conv2d`` with ``cudnn.benchmark=True``,
   TF32 off on both sides) under the same warm-up / block / repeat / buffer-rotation
   policy, timed with CUDA events. Writes ``side_by_side.csv``; targets: GEMM FLOP rate
   cupy/torch >= 0.9 (geometric mean), conv time cupy/cuDNN <= 2.0 (geometric mean).
   Skipped (and said so) when torch is not importable.
3. **profiles** -- every distinct kernel call of one training step (forward, backward,
   SGD update) of ResNet-50 and of gpt-small (GPU; tiny stand-ins on a CPU), timed like
   :func:`ddlsim.kernels.profile.measure_call`; one CSV per model and dtype in the
   schema of :data:`ddlsim.kernels.profile.COLUMNS`, named
   ``profile-<device>-<model>-<dtype>.csv``.

Side-by-side runs before the profiles so that the two targets are measured even when the
time budget (``--budget-s``) runs out during the profiles; kernels left over are listed
in the summary as skipped. ``summary.txt`` / ``summary.json`` close the run.

Exit status: 1 when a correctness check failed or any part or row raised; 0 otherwise.
Missing a performance target prints FAIL but exits 0 unless ``--strict-targets``.

Imports only the standard library, NumPy, torch (optional), CuPy (through
:func:`ddlsim.kernels.backend.get_backend`) and ddlsim modules that need nothing else.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddlsim import opspec
from ddlsim.kernels import ops
from ddlsim.kernels.backend import Backend, get_backend
from ddlsim.kernels.profile import COLUMNS, cache_bytes, device_name
from ddlsim.kernels.timing import TimingStats, rotation_count, time_callable
from ddlsim.opspec import KernelCall, call
from ddlsim.sim import workloads

DTYPES = ("float32", "float16", "bfloat16")

#: Largest allowed max|out - ref| / max|ref| per dtype. float32: ~1e-4 leaves two orders
#: of magnitude over float32 rounding (2^-24 ~ 6e-8) at these small shapes; float16 (unit
#: roundoff 2^-11 ~ 4.9e-4) 2e-2; bfloat16 has 8x coarser rounding (2^-8 ~ 3.9e-3), so
#: 5e-2. An indexing or layout bug gives errors of order 1.
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2}

#: Targets from the kernels issue.
GEMM_TARGET = 0.9  # CuPy / torch GEMM FLOP rate, geometric mean: at least this
CONV_TARGET = 2.0  # CuPy / cuDNN conv2d_fwd time, geometric mean over ResNet-50: at most

#: One small odd shape per op for the correctness checks (odd extents catch stride,
#: padding and transpose mistakes that even sizes hide).
_CONV_CHECK = dict(n=3, c=5, h=11, w=13, k=7, r=3, s=3, stride=2, pad=1)
_POOL_CHECK = dict(n=2, c=3, h=11, w=9, kernel=3, stride=2, pad=1)
CHECK_SHAPES: dict[str, dict[str, int]] = {
    "gemm": dict(m=37, n=29, k=53),
    "bmm": dict(b=3, m=17, n=19, k=23),
    "conv2d_fwd": _CONV_CHECK,
    "conv2d_bwd_data": _CONV_CHECK,
    "conv2d_bwd_filter": _CONV_CHECK,
    "maxpool_fwd": _POOL_CHECK,
    "maxpool_bwd": _POOL_CHECK,
    "avgpool_fwd": _POOL_CHECK,
    "avgpool_bwd": _POOL_CHECK,
    "relu_fwd": dict(numel=1001),
    "relu_bwd": dict(numel=1001),
    "gelu_fwd": dict(numel=1001),
    "gelu_bwd": dict(numel=1001),
    "add": dict(numel=1001),
    "batchnorm_fwd": dict(n=3, c=5, h=7, w=9),
    "batchnorm_bwd": dict(n=3, c=5, h=7, w=9),
    "layernorm_fwd": dict(rows=13, cols=37),
    "layernorm_bwd": dict(rows=13, cols=37),
    "softmax_fwd": dict(rows=13, cols=37),
    "softmax_bwd": dict(rows=13, cols=37),
    "softmax_xent_fwd": dict(n=13, classes=29),
    "softmax_xent_bwd": dict(n=13, classes=29),
    "flash_attn_fwd": dict(b=4, q=13, kv=17, d=8, g=2),
    "flash_attn_bwd": dict(b=4, q=13, kv=17, d=8, g=2),
    "embedding_fwd": dict(tokens=19, hidden=11, vocab=23),
    "embedding_bwd": dict(tokens=19, hidden=11, vocab=23),
    "sgd_update": dict(numel=1001),
    "grad_sum": dict(numel=1001),
}

CHECK_FIELDS = ["op", "dtype", "max_rel_err", "tol", "pass", "shape", "error"]
SBS_FIELDS = ["op", "shape", "dtype", "cupy_s", "torch_s", "ratio", "flops", "source"]


# --------------------------------------------------------------------------- run record


@dataclass
class Report:
    """What the run found: errors (part or row, one line each), notes, summary values."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    started_s: float = field(default_factory=time.perf_counter)

    def error(self, where: str, exc: BaseException) -> None:
        """Record ``exc`` raised in ``where`` (first line of the message) and print it."""
        text = str(exc).strip().splitlines()
        line = f"{where}: {type(exc).__name__}: {text[0] if text else ''}"
        self.errors.append(line)
        print(f"ERROR {line}", flush=True)

    def note(self, text: str) -> None:
        """Record and print an informational line (skipped dtype, missing torch, ...)."""
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started_s


def run_part(name: str, fn: Callable[[], None], report: Report) -> bool:
    """Run one part; an exception is recorded (with its traceback printed) and swallowed.

    Returns whether the part finished without raising.
    """
    print(f"\n=== {name} (t={report.elapsed_s():.1f} s) ===", flush=True)
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others
        traceback.print_exc()
        report.error(name, exc)
        return False
    return True


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[dict]) -> Path:
    """Write ``rows`` (dicts keyed by ``fields``) as CSV with a header; floats as %.6g."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    return path


def safe_name(text: str) -> str:
    """File-name-safe form of a device or model name: letters, digits, '.', '_', '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return cleaned or "unknown"


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive finite ``values``; NaN when there are none."""
    good = [v for v in values if v > 0 and math.isfinite(v)]
    if not good:
        return math.nan
    return math.exp(sum(math.log(v) for v in good) / len(good))


# --------------------------------------------------------------------------- part 1: checks


def _is_float(a: Any) -> bool:
    """Whether ``a`` holds floats (NumPy kind 'f', or ml_dtypes' bfloat16)."""
    dt = getattr(a, "dtype", None)
    return dt is not None and (dt.kind == "f" or "float" in str(dt))


def _to_backend(a: np.ndarray, backend: Backend, dtype: str) -> Any:
    """Host array -> backend array; floats are cast to ``dtype``, integers keep theirs."""
    xp = backend.xp
    if np.issubdtype(a.dtype, np.floating):
        return xp.asarray(a).astype(backend.dtype(dtype))
    return xp.array(a, copy=True)


def _to_host64(a: Any, backend: Backend) -> np.ndarray:
    """Backend array -> host array; floats as float64 (the exact rounded values)."""
    host = backend.asnumpy(a)
    return host.astype(np.float64) if _is_float(host) else np.array(host, copy=True)


def _flatten(result: Any) -> list[Any]:
    """Arrays in an op's result (arrays, tuples, NamedTuples nested), in order."""
    if result is None:
        return []
    if isinstance(result, tuple | list):
        return [a for item in result for a in _flatten(item)]
    return [result]


def op_outputs(kc: KernelCall, result: Any, inputs: tuple) -> list[Any]:
    """What an op produced: its result, or for in-place ``sgd_update`` the new ``w, v``."""
    if kc.op == "sgd_update":
        return [inputs[0], inputs[2]]
    return _flatten(result)


def max_rel_err(got: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> float:
    """``max|got - ref| / max|ref|`` over float outputs (host arrays, compared as float64).

    Integer outputs must be equal (else ``inf``); a non-finite value in ``got`` gives
    ``nan`` (which never passes); a shape or count mismatch gives ``inf``.
    """
    if len(got) != len(ref):
        return math.inf
    worst = 0.0
    for g, r in zip(got, ref, strict=True):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return math.inf
        if not _is_float(r):
            if not np.array_equal(g, r):
                return math.inf
            continue
        g64 = g.astype(np.float64)
        if not np.all(np.isfinite(g64)):
            return math.nan
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        diff = float(np.max(np.abs(g64 - r))) if r.size else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def check_op(kc: KernelCall, dtype: str, backend: Backend, seed: int) -> float:
    """Run ``kc`` on ``backend`` in ``dtype`` and in float64 NumPy; return the max rel err.

    Inputs are drawn (seeded) in float64 on the host, rounded to ``dtype`` on the backend,
    and the reference runs on those rounded values, so input rounding is not counted.
    """
    rng = np.random.default_rng(seed)
    drawn = ops.make_inputs(kc, np, np.float64, rng)
    dev_inputs = tuple(_to_backend(a, backend, dtype) for a in drawn)
    ref_inputs = tuple(_to_host64(a, backend) for a in dev_inputs)
    ref = op_outputs(kc, ops.run(kc, ref_inputs), ref_inputs)
    got = op_outputs(kc, ops.run(kc, dev_inputs), dev_inputs)
    backend.synchronize()
    return max_rel_err([backend.asnumpy(a) for a in got], ref)


def run_checks(backend: Backend, dtypes: Sequence[str], out: Path, report: Report) -> None:
    """Part 1: every op in every dtype against float64; writes ``checks.csv``."""
    rows = []
    for dtype in dtypes:
        for i, op in enumerate(opspec.OP_PARAMS):
            row = {"op": op, "dtype": dtype, "max_rel_err": math.nan, "tol": TOLERANCE[dtype],
                   "pass": False, "shape": "", "error": ""}
            try:
                kc = call(op, **CHECK_SHAPES[op])
                row["shape"] = kc.shape_key
                row["max_rel_err"] = check_op(kc, dtype, backend, seed=1000 + i)
                row["pass"] = bool(row["max_rel_err"] <= TOLERANCE[dtype])
            except Exception as exc:  # noqa: BLE001 - recorded per row, next op runs
                row["error"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            rows.append(row)
            if not row["pass"]:
                print(f"  FAIL {op} {dtype}: err={row['max_rel_err']:.3g} "
                      f"tol={row['tol']:.0e} {row['error']}", flush=True)
    write_csv(out / "checks.csv", CHECK_FIELDS, rows)
    failed = [f"{r['op']}/{r['dtype']}" for r in rows if not r["pass"]]
    report.values["checks_total"] = len(rows)
    report.values["checks_failed"] = failed
    print(f"checks: {len(rows) - len(failed)}/{len(rows)} pass", flush=True)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """A named workload to profile: ``build()`` returns a :class:`workloads.Workload`."""

    name: str
    build: Callable[[], workloads.Workload]


def tiny_cnn() -> workloads.Workload:
    """CPU stand-in for ResNet-50: conv/bn/relu/pool/linear at 16x16, batch 2."""
    specs = [dict(kind="conv", out_ch=8, kernel=3, pad=1, bias=False), dict(kind="bn"),
             dict(kind="relu"), dict(kind="maxpool", kernel=3, stride=2, pad=1),
             dict(kind="conv", out_ch=16, kernel=3, stride=2, pad=1, bias=False),
             dict(kind="bn"), dict(kind="relu"), dict(kind="avgpool", kernel=2),
             dict(kind="flatten"), dict(kind="linear", out=10)]
    return workloads.from_layers("tiny-cnn", 2, specs, (3, 16, 16))


def tiny_gpt() -> workloads.Workload:
    """CPU stand-in for gpt-small: 2 blocks, hidden 32, 4 heads, seq 16, vocab 97."""
    return workloads.gpt(batch=2, layers=2, hidden=32, heads=4, seq=16, vocab=97,
                         name="tiny-gpt")


def model_specs(backend: Backend, args: argparse.Namespace) -> list[ModelSpec]:
    """ResNet-50 and gpt-small on a GPU; tiny stand-ins on the CPU (NumPy backend)."""
    if backend.name == "numpy":
        return [ModelSpec("tiny-cnn", tiny_cnn), ModelSpec("tiny-gpt", tiny_gpt)]
    return [
        ModelSpec("resnet50", lambda: workloads.resnet50(args.resnet_batch)),
        ModelSpec("gpt-small", lambda: workloads.get_workload(
            "gpt-small", args.gpt_batch, seq=args.gpt_seq)),
    ]


def step_calls(wl: workloads.Workload) -> dict[KernelCall, int]:
    """Distinct kernel calls of one training step (fwd, bwd, update) -> calls per step,
    in first-seen order."""
    counts: dict[KernelCall, int] = {}
    for layer in wl.layers:
        for kc in layer.fwd + layer.bwd:
            counts[kc] = counts.get(kc, 0) + 1
    for kc in wl.update:
        counts[kc] = counts.get(kc, 0) + 1
    return counts


# --------------------------------------------------------------------------- timing glue


class DeviceRng:
    """Stands in for :class:`numpy.random.Generator` in :func:`ops.make_inputs` on CuPy.

    Draws on the device (``cupy.random.RandomState``), so multi-GB inputs (gpt-small's
    8192 x 50257 logits) are not drawn on the host and copied over.
    """

    def __init__(self, xp: Any, seed: int) -> None:
        self._rs = xp.random.RandomState(seed)

    def standard_normal(self, size: Any, dtype: Any = np.float32) -> Any:
        """Standard normal draws of ``size`` as ``dtype`` (float32/float64)."""
        return self._rs.standard_normal(size=size, dtype=dtype)

    def integers(self, low: int, high: int, size: Any, dtype: Any = np.int64) -> Any:
        """Integers in ``[low, high)``."""
        return self._rs.randint(low, high, size=size, dtype=dtype)


def make_input_sets(kc: KernelCall, dtype: str, backend: Backend, seed: int,
                    report: Report) -> list[tuple]:
    """Independent input sets for ``kc`` whose total size exceeds twice the cache."""
    dt = backend.dtype(dtype)
    rng: Any = np.random.default_rng(seed)
    if backend.name == "cupy":
        try:
            first = ops.make_inputs(kc, backend.xp, dt, DeviceRng(backend.xp, seed))
            rng = DeviceRng(backend.xp, seed + 1)
        except Exception as exc:  # noqa: BLE001 - fall back to drawing on the host
            if "device_rng" not in report.values:
                report.note(f"device RNG unusable, drawing inputs on the host ({exc})")
                report.values["device_rng"] = False
            first = ops.make_inputs(kc, backend.xp, dt, rng)
    else:
        first = ops.make_inputs(kc, backend.xp, dt, rng)
    nbytes = sum(int(getattr(a, "nbytes", 0)) for a in first)
    n_sets = rotation_count(nbytes, cache_bytes(backend))
    return [first] + [ops.make_inputs(kc, backend.xp, dt, rng) for _ in range(n_sets - 1)]


def profile_row(kc: KernelCall, dtype: str, stats: TimingStats, device: str,
                backend_name: str, calls_per_step: int) -> dict:
    """One row of the profile schema (:data:`COLUMNS`) from timing ``stats``."""
    f = opspec.flops(kc)
    b = opspec.bytes_moved(kc, dtype)
    return {
        "op": kc.op, "shape": kc.shape_key, "dtype": dtype, "device": device,
        "backend": backend_name, "median_s": stats.median_s, "p10_s": stats.p10_s,
        "p90_s": stats.p90_s, "repeats": stats.repeats, "inner": stats.inner, "flops": f,
        "bytes": b, "flops_per_s": f / stats.median_s, "bytes_per_s": b / stats.median_s,
        "calls_per_step": calls_per_step,
    }


def free_device_memory(backend: Backend) -> None:
    """Return CuPy's pooled blocks to the driver (so torch and later parts have room)."""
    if backend.name == "cupy":
        backend.xp.get_default_memory_pool().free_all_blocks()


# --------------------------------------------------------------------------- part 3: profiles


def run_profiles(backend: Backend, models: Sequence[ModelSpec], dtypes: Sequence[str],
                 args: argparse.Namespace, out: Path, report: Report) -> None:
    """Part 3: profile CSVs per model and dtype; kernels past the deadline are skipped."""
    device = device_name(backend)
    skipped: list[str] = []
    written: list[str] = []
    for dtype in dtypes:
        for spec in models:
            counts = step_calls(spec.build())
            calls = list(counts)[:args.max_kernels] if args.max_kernels else list(counts)
            rows = []
            for j, kc in enumerate(calls):
                if report.elapsed_s() > args.budget_s:
                    skipped.append(f"{spec.name}/{dtype}/{kc}")
                    continue
                try:
                    sets = make_input_sets(kc, dtype, backend, seed=j, report=report)
                    stats = time_callable(lambda *a, kc=kc: ops.run(kc, a), sets, backend,
                                          repeats=args.repeats, warmup=args.warmup,
                                          min_block_s=args.min_block_s)
                    rows.append(profile_row(kc, dtype, stats, device, backend.name,
                                            counts[kc]))
                except Exception as exc:  # noqa: BLE001 - recorded; next kernel runs
                    report.error(f"profile {spec.name} {dtype} {kc}", exc)
                finally:
                    sets = None
                    free_device_memory(backend)
            name = f"profile-{safe_name(device)}-{safe_name(spec.name)}-{dtype}.csv"
            write_csv(out / name, COLUMNS, rows)
            written.append(name)
            step_s = sum(r["median_s"] * r["calls_per_step"] for r in rows)
            print(f"  {name}: {len(rows)}/{len(calls)} kernels, sum(median*calls) = "
                  f"{step_s * 1e3:.3f} ms", flush=True)
    report.values["profiles"] = written
    report.values["profile_kernels_skipped"] = len(skipped)
    if skipped:
        report.note(f"time budget {args.budget_s:.0f} s reached: {len(skipped)} profile "
                    f"kernels skipped, first {skipped[0]}")


# --------------------------------------------------------------------------- part 2: torch


def import_torch() -> Any:
    """torch, or None when it cannot be imported."""
    try:
        import torch  # noqa: PLC0415 - optional dependency
    except Exception:  # noqa: BLE001 - any import failure means: no side-by-side
        return None
    return torch


def sbs_calls(models: Sequence[ModelSpec], backend: Backend,
              limit: int | None = None) -> list[tuple[KernelCall, str]]:
    """Side-by-side shapes: distinct gemm/bmm of every model, conv2d_fwd of the CNNs (at
    most ``limit`` per op and model), plus one large square GEMM (``source='ceiling'``,
    left out of the geometric means)."""
    seen: dict[KernelCall, str] = {}
    for spec in models:
        taken: dict[str, int] = {}
        for kc in step_calls(spec.build()):
            if kc.op not in ("gemm", "bmm", "conv2d_fwd") or kc in seen:
                continue
            if limit is not None and taken.get(kc.op, 0) >= limit:
                continue
            taken[kc.op] = taken.get(kc.op, 0) + 1
            seen[kc] = spec.name
    big = 8192 if backend.name == "cupy" else 256
    seen.setdefault(call("gemm", m=big, n=big, k=big), "ceiling")
    return list(seen.items())


def time_torch(fn: Callable[..., Any], input_sets: Sequence[tuple], torch: Any, cuda: bool,
               *, repeats: int, warmup: int, min_block_s: float,
               max_inner: int = 1000) -> TimingStats:
    """Time ``fn(*inputs)`` with torch under the policy of ``time_callable``: warm-up,
    block size from one calibration call, ``repeats`` blocks rotating over ``input_sets``,
    CUDA events around each block (``time.perf_counter`` on a CPU); seconds per call."""
    n = len(input_sets)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    pos = 0
    for _ in range(max(warmup, 1)):
        fn(*input_sets[pos % n])
        pos += 1
    sync()
    t0 = time.perf_counter()
    fn(*input_sets[pos % n])
    pos += 1
    sync()
    one = max(time.perf_counter() - t0, 1e-9)
    inner = int(min(max_inner, max(1, math.ceil(min_block_s / one))))
    samples = np.empty(repeats)
    for r in range(repeats):
        if cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            start.record()
        else:
            t0 = time.perf_counter()
        for _ in range(inner):
            fn(*input_sets[pos % n])
            pos += 1
        if cuda:
            stop.record()
            stop.synchronize()
            samples[r] = start.elapsed_time(stop) * 1e-3 / inner
        else:
            samples[r] = (time.perf_counter() - t0) / inner
    p10, med, p90 = np.percentile(samples, [10, 50, 90])
    return TimingStats(float(med), float(p10), float(p90), repeats, inner)


def torch_inputs(kc: KernelCall, dtype: str, torch: Any, device: str, n_sets: int,
                 seed: int) -> list[tuple]:
    """``n_sets`` random input sets for a gemm/bmm/conv2d_fwd call as torch tensors."""
    p = kc.params
    tdtype = getattr(torch, dtype)
    gen = torch.Generator(device=device).manual_seed(seed)

    def f(*shape: int) -> Any:
        return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(tdtype)

    sets = []
    for _ in range(n_sets):
        if kc.op == "gemm":
            sets.append((f(p["m"], p["k"]), f(p["k"], p["n"])))
        elif kc.op == "bmm":
            sets.append((f(p["b"], p["m"], p["k"]), f(p["b"], p["k"], p["n"])))
        else:
            sets.append((f(p["n"], p["c"], p["h"], p["w"]), f(p["k"], p["c"], p["r"], p["s"])))
    return sets


def torch_fn(kc: KernelCall, torch: Any) -> Callable[..., Any]:
    """The torch op for a gemm/bmm/conv2d_fwd call."""
    if kc.op in ("gemm", "bmm"):
        return torch.matmul
    p = kc.params
    conv = torch.nn.functional.conv2d
    return lambda x, w: conv(x, w, stride=p["stride"], padding=p["pad"])


def configure_torch(torch: Any) -> str:
    """cuDNN autotuning on; TF32 off for cuBLAS and cuDNN (CuPy computes float32 in full
    float32 unless CUPY_TF32=1, so both sides do the same arithmetic). Returns a note."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return (f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
            f"cudnn.benchmark=True, TF32 off (cuBLAS and cuDNN)")


def sbs_row(kc: KernelCall, dtype: str, source: str, backend: Backend, torch: Any,
            args: argparse.Namespace, seed: int, report: Report) -> dict:
    """Time one shape with CuPy (ddlsim ops) and with torch; one side_by_side row."""
    sets = make_input_sets(kc, dtype, backend, seed, report)
    cp_stats = time_callable(lambda *a: ops.run(kc, a), sets, backend, repeats=args.repeats,
                             warmup=args.warmup, min_block_s=args.min_block_s)
    n_sets = len(sets)
    sets = None
    free_device_memory(backend)
    cuda = backend.name == "cupy"
    tsets = torch_inputs(kc, dtype, torch, "cuda" if cuda else "cpu", n_sets, seed)
    t_stats = time_torch(torch_fn(kc, torch), tsets, torch, cuda, repeats=args.repeats,
                         warmup=args.warmup, min_block_s=args.min_block_s)
    tsets = None
    if cuda:
        torch.cuda.empty_cache()
    return {"op": kc.op, "shape": kc.shape_key, "dtype": dtype, "cupy_s": cp_stats.median_s,
            "torch_s": t_stats.median_s, "ratio": cp_stats.median_s / t_stats.median_s,
            "flops": opspec.flops(kc), "source": source}


def summarise_sbs(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per dtype and ``'all'``: GEMM FLOP-rate ratio cupy/torch (= torch_s / cupy_s, same
    FLOPs) and conv time ratio cupy/torch, geometric means over the model shapes (the
    ``ceiling`` row excluded), with the number of shapes behind each."""
    out: dict[str, dict[str, float]] = {}
    dtypes = sorted({r["dtype"] for r in rows})
    for key in [*dtypes, "all"]:
        sel = [r for r in rows if r["source"] != "ceiling" and key in ("all", r["dtype"])]
        gemm = [r["torch_s"] / r["cupy_s"] for r in sel if r["op"] in ("gemm", "bmm")]
        conv = [r["cupy_s"] / r["torch_s"] for r in sel if r["op"] == "conv2d_fwd"]
        out[key] = {"gemm_rate_ratio": geomean(gemm), "gemm_n": len(gemm),
                    "conv_time_ratio": geomean(conv), "conv_n": len(conv)}
    return out


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """``PASS``/``FAIL`` against ``target``; ``n/a`` when nothing was measured."""
    if not math.isfinite(value):
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def run_side_by_side(backend: Backend, models: Sequence[ModelSpec], dtypes: Sequence[str],
                     args: argparse.Namespace, out: Path, report: Report) -> None:
    """Part 2: CuPy vs torch on the models' GEMM and conv shapes; ``side_by_side.csv``."""
    path = out / "side_by_side.csv"
    write_csv(path, SBS_FIELDS, [])  # header even when skipped
    torch = import_torch()
    if torch is None:
        report.note("side-by-side skipped: torch is not importable here")
        report.values["side_by_side"] = "skipped (no torch)"
        return
    if backend.name == "cupy" and not torch.cuda.is_available():
        report.note("side-by-side skipped: torch sees no CUDA device")
        report.values["side_by_side"] = "skipped (torch without CUDA)"
        return
    report.note(configure_torch(torch))
    calls = sbs_calls(models, backend, args.max_kernels)
    rows = []
    for dtype in dtypes:
        for j, (kc, source) in enumerate(calls):
            if report.elapsed_s() > args.budget_s:
                report.note(f"time budget reached: side-by-side stopped before {dtype} {kc}")
                break
            try:
                rows.append(sbs_row(kc, dtype, source, backend, torch, args, j, report))
                r = rows[-1]
                print(f"  {dtype:8s} {kc}: cupy {r['cupy_s'] * 1e3:.4f} ms, torch "
                      f"{r['torch_s'] * 1e3:.4f} ms, ratio {r['ratio']:.2f}", flush=True)
            except Exception as exc:  # noqa: BLE001 - recorded; next shape runs
                report.error(f"side-by-side {dtype} {kc}", exc)
        write_csv(path, SBS_FIELDS, rows)  # keep what was measured if a later dtype dies
    summary = summarise_sbs(rows)
    report.values["side_by_side"] = summary
    for key, s in summary.items():
        print(f"  {key:8s} GEMM rate cupy/torch = {s['gemm_rate_ratio']:.3f} "
              f"({s['gemm_n']} shapes) {verdict(s['gemm_rate_ratio'], GEMM_TARGET, True)}; "
              f"conv time cupy/cuDNN = {s['conv_time_ratio']:.3f} ({s['conv_n']} shapes) "
              f"{verdict(s['conv_time_ratio'], CONV_TARGET, False)}", flush=True)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/gpu", help="folder for CSVs and summary")
    ap.add_argument("--device", default="gpu", choices=["auto", "cpu", "gpu"],
                    help="backend: gpu (CuPy, required), cpu (NumPy), auto")
    ap.add_argument("--quick", action="store_true",
                    help="5 repeats, 1 warm-up; on a GPU also --max-kernels 12")
    ap.add_argument("--dtypes", default=",".join(DTYPES),
                    help="comma list of float32,float16,bfloat16 (unsupported are skipped)")
    ap.add_argument("--parts", default="checks,side-by-side,profiles",
                    help="comma list of checks, side-by-side, profiles")
    ap.add_argument("--repeats", type=int, default=None, help="timed samples per kernel")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per kernel first")
    ap.add_argument("--min-block-s", type=float, default=None,
                    help="seconds a timed block lasts at least (sets calls per sample)")
    ap.add_argument("--max-kernels", type=int, default=None,
                    help="time at most the first N distinct calls per model (profiles) "
                         "and N shapes per op and model (side-by-side)")
    ap.add_argument("--budget-s", type=float, default=270.0,
                    help="seconds after which remaining timing work is skipped")
    ap.add_argument("--resnet-batch", type=int, default=32, help="ResNet-50 images per GPU")
    ap.add_argument("--gpt-batch", type=int, default=8, help="gpt-small sequences per GPU")
    ap.add_argument("--gpt-seq", type=int, default=1024, help="gpt-small tokens per sequence")
    ap.add_argument("--strict-targets", action="store_true",
                    help="exit 1 also when a performance target is missed")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 15
    if args.min_block_s is None:
        args.min_block_s = 1e-4 if args.device == "cpu" else 1e-3
    if args.quick and args.max_kernels is None and args.device != "cpu":
        args.max_kernels = 12
    if args.quick:
        args.warmup = min(args.warmup, 1)
    return args


def select_dtypes(backend: Backend, wanted: str, report: Report) -> list[str]:
    """The asked-for dtypes this backend supports; the others are noted as skipped."""
    chosen = []
    for d in (s.strip() for s in wanted.split(",") if s.strip()):
        if d not in DTYPES:
            raise SystemExit(f"--dtypes: {d!r} is not one of {', '.join(DTYPES)}")
        if backend.supports_dtype(d):
            chosen.append(d)
        else:
            report.note(f"dtype {d} skipped: not supported on the {backend.name} backend"
                        + _bf16_hint(backend, d))
    return chosen


def _bf16_hint(backend: Backend, dtype: str) -> str:
    """Why bfloat16 is missing on CuPy, when a probe can tell (diagnostic only)."""
    if backend.name != "cupy" or dtype != "bfloat16":
        return ""
    try:
        import ml_dtypes  # noqa: PLC0415 - probe only

        a = backend.xp.ones(4, dtype=ml_dtypes.bfloat16)
        return (f" (cupy has no cupy.bfloat16 attribute, but cupy.ones(dtype=ml_dtypes."
                f"bfloat16) works: {a.dtype}; ddlsim.kernels.backend could expose it)")
    except Exception as exc:  # noqa: BLE001
        return f" (ml_dtypes probe: {type(exc).__name__})"


def write_summary(out: Path, backend: Backend, args: argparse.Namespace,
                  report: Report) -> list[str]:
    """Write ``summary.json`` and ``summary.txt``; return the text lines."""
    v = report.values
    lines = [
        f"ddlsim GPU bench  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"device: {v.get('device', '?')}   backend: {backend.name} ({backend.reason})",
        f"args: {' '.join(sys.argv[1:])}",
        f"elapsed: {report.elapsed_s():.1f} s",
    ]
    if "checks_total" in v:
        failed = v["checks_failed"]
        lines.append(f"checks: {v['checks_total'] - len(failed)}/{v['checks_total']} pass"
                     + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    sbs = v.get("side_by_side")
    if isinstance(sbs, dict):
        for key, s in sbs.items():
            lines.append(
                f"side-by-side {key}: GEMM rate cupy/torch {s['gemm_rate_ratio']:.3f} "
                f"(target >= {GEMM_TARGET}, {s['gemm_n']} shapes) "
                f"{verdict(s['gemm_rate_ratio'], GEMM_TARGET, True)}; conv time cupy/cuDNN "
                f"{s['conv_time_ratio']:.3f} (target <= {CONV_TARGET}, {s['conv_n']} shapes) "
                f"{verdict(s['conv_time_ratio'], CONV_TARGET, False)}")
    elif sbs:
        lines.append(f"side-by-side: {sbs}")
    if "profiles" in v:
        lines.append(f"profiles: {len(v['profiles'])} files, "
                     f"{v['profile_kernels_skipped']} kernels skipped by the time budget")
    if "copy_bytes_per_s" in v:
        lines.append(f"device copy bandwidth (read+write): {v['copy_bytes_per_s'] / 1e9:.0f} GB/s")
    lines += [f"note: {n}" for n in report.notes]
    lines += [f"ERROR: {e}" for e in report.errors]
    (out / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {"values": v, "notes": report.notes, "errors": report.errors,
               "elapsed_s": report.elapsed_s(), "args": vars(args)}
    (out / "summary.json").write_text(json.dumps(payload, indent=2, default=str) + "\n",
                                      encoding="utf-8")
    return lines


def exit_code(report: Report, strict_targets: bool) -> int:
    """1 when a check failed or anything raised (or, if strict, a target was missed)."""
    if report.errors or report.values.get("checks_failed"):
        return 1
    sbs = report.values.get("side_by_side")
    if strict_targets and isinstance(sbs, dict) and "all" in sbs:
        s = sbs["all"]
        if "FAIL" in (verdict(s["gemm_rate_ratio"], GEMM_TARGET, True),
                      verdict(s["conv_time_ratio"], CONV_TARGET, False)):
            return 1
    return 0


def measure_copy(backend: Backend, report: Report) -> None:
    """Device-to-device copy bandwidth (bytes read + written per second), one ceiling."""
    from ddlsim.kernels.profile import measure_memory_bandwidth  # noqa: PLC0415

    nbytes = 1024**3 if backend.name == "cupy" else 32 * 1024**2
    report.values["copy_bytes_per_s"] = measure_memory_bandwidth(backend, nbytes=nbytes)
    free_device_memory(backend)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected parts, write everything under ``--out``, print the summary."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    backend = get_backend(args.device)
    print(f"backend: {backend.name}: {backend.reason}", flush=True)
    report.values["device"] = device_name(backend)
    report.values["device_info"] = backend.device_info()
    dtypes = select_dtypes(backend, args.dtypes, report)
    models = model_specs(backend, args)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    run_part("copy bandwidth", lambda: measure_copy(backend, report), report)
    if "checks" in parts:
        run_part("checks", lambda: run_checks(backend, dtypes, out, report), report)
    if "side-by-side" in parts:
        run_part("side-by-side", lambda: run_side_by_side(backend, models, dtypes, args, out,
                                                          report), report)
    if "profiles" in parts:
        run_part("profiles", lambda: run_profiles(backend, models, dtypes, args, out, report),
                 report)
    lines = write_summary(out, backend, args, report)
    print("\n=== summary ===\n" + "\n".join(lines), flush=True)
    return exit_code(report, args.strict_targets)


if __name__ == "__main__":
    sys.exit(main())
