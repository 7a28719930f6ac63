"""Kernel timing harness: its overhead on GEMM, and conv2d efficiency against GEMM.

Run: ``.venv/bin/python bench/bench_kernels.py [--quick] [--repeats N]``

Part 1 (harness overhead). The same GEMM shapes are timed two ways in this run:
through the harness (:func:`ddlsim.kernels.profile.measure_call` on
``opspec.call("gemm", ...)``: warm up, rotate cache-defeating input sets, block of
``inner`` calls, median of ``repeats`` samples) and with a bare loop (one ``a @ b`` pair
reused, warm up, ``time.perf_counter`` around a block of calls lasting >= 1 ms, median
of the same number of samples). The two are interleaved over ``ROUNDS`` rounds and the
smallest per-round median of each is kept: on a shared machine other work only ever adds
time, so the minimum over rounds is the least disturbed estimate of each. A third column
times the harness's ``time_callable`` with a single
input set (no rotation), to tell the harness's own cost from the colder cache it imposes.
ratio = bare_s / harness_s; target >= 0.9 per shape and as a
geometric mean (the harness must not make GEMMs look slower than they are).

Part 2 (conv2d efficiency). For each distinct 3x3 ``conv2d_fwd`` of ResNet-50 at a small
batch, the achieved FLOP/s of the im2col convolution divided by the achieved FLOP/s of the
equivalent GEMM (m = K, n = N*P*Q, k = C*R*S: the same FLOP count), both through the
harness. Target >= 0.5 per layer and as a geometric mean.

Prints PASS/FAIL per target; always exits 0 (the numbers go to bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from ddlsim.kernels import ops
from ddlsim.kernels.backend import get_backend
from ddlsim.kernels.host import detect_host
from ddlsim.kernels.profile import measure_call
from ddlsim.kernels.timing import time_callable
from ddlsim.opspec import call, conv_out
from ddlsim.sim.workloads import resnet50

HARNESS_TARGET = 0.9
CONV_TARGET = 0.5
ROUNDS = 5

SQUARE = [256, 512, 1024, 2048]
# (label, m, n, k) of layer GEMMs: ResNet-50 at batch 8 (conv as im2col GEMM, the fc) and
# GPT-small (hidden 768, seq 1024, batch 1: QKV projection, attention output, MLP up).
LAYER_GEMMS = [
    ("resnet50 conv2_x 3x3 b8", 64, 8 * 56 * 56, 64 * 9),
    ("resnet50 conv5_x 1x1 b8", 2048, 8 * 7 * 7, 512),
    ("resnet50 fc b8", 8, 1000, 2048),
    ("gpt-small qkv s1024", 1024, 3 * 768, 768),
    ("gpt-small attn-out s1024", 1024, 768, 768),
    ("gpt-small mlp-up s1024", 1024, 4 * 768, 768),
]


def machine_line() -> str:
    """CPU model, cores, NumPy and BLAS versions of this machine."""
    host = detect_host()
    blas = "unknown BLAS"
    try:
        cfg = np.show_config(mode="dicts")
        info = cfg["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '?')}"
    except Exception:  # noqa: BLE001 - older NumPy: leave the BLAS unknown
        pass
    return (f"{host.model}, {host.cores} cores, numpy {np.__version__}, {blas}, "
            f"OMP/OPENBLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")


def bare_gemm_s(m: int, n: int, k: int, repeats: int, min_block_s: float = 1e-3) -> float:
    """Median seconds of ``a @ b`` (``a[m,k]``, ``b[k,n]`` float32) in a bare loop."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    a @ b
    one = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, math.ceil(min_block_s / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def harness_one_set_s(kc, backend, repeats: int) -> float:
    """Median seconds per call through :func:`time_callable` with a single input set (no
    cache-defeating rotation): separates the harness's own cost from the cache state."""
    inputs = ops.make_inputs(kc, backend.xp, "float32", np.random.default_rng(0))
    stats = time_callable(lambda *a: ops.run(kc, a), [inputs], backend, repeats=repeats,
                          warmup=2, min_block_s=1e-3)
    return stats.median_s


def harness_s(kc, backend, repeats: int) -> float:
    """Median seconds per call of ``kc`` in float32 through the profiling harness."""
    return float(measure_call(kc, "float32", backend, repeats=repeats)["median_s"])


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "FAIL"


def harness_overhead(backend, repeats: int, quick: bool) -> None:
    shapes = [(f"square {n}", n, n, n) for n in SQUARE] + LAYER_GEMMS
    if quick:
        shapes = shapes[:2] + shapes[4:6]
    print(f"\n## Harness overhead: GEMM float32, bare loop vs measure_call "
          f"(min over {ROUNDS} interleaved rounds of the median of {repeats} samples)")
    print(f"{'shape':28s} {'m':>5s} {'n':>6s} {'k':>5s} {'bare ms':>9s} {'harness ms':>11s} "
          f"{'GFLOP/s':>8s} {'ratio':>6s}      {'1-set ms':>9s} {'1-set ratio':>11s}")
    ratios, one_ratios = [], []
    for label, m, n, k in shapes:
        kc = call("gemm", m=m, n=n, k=k)
        bare, harn, one = [], [], []
        for _ in range(ROUNDS):
            harn.append(harness_s(kc, backend, repeats))
            bare.append(bare_gemm_s(m, n, k, repeats))
            one.append(harness_one_set_s(kc, backend, repeats))
        b, h, h1 = min(bare), min(harn), min(one)
        ratio = b / h
        ratios.append(ratio)
        one_ratios.append(b / h1)
        print(f"{label:28s} {m:5d} {n:6d} {k:5d} {b * 1e3:9.3f} {h * 1e3:11.3f} "
              f"{2.0 * m * n * k / h / 1e9:8.1f} {ratio:6.3f} {verdict(ratio, HARNESS_TARGET)} "
              f"{h1 * 1e3:9.3f} {b / h1:11.3f}")
    g = geomean(ratios)
    print(f"geometric mean ratio bare/harness: {g:.3f} (target >= {HARNESS_TARGET}) "
          f"{verdict(g, HARNESS_TARGET)}; min {min(ratios):.3f}")
    print(f"geometric mean ratio bare/harness without input rotation: {geomean(one_ratios):.3f}"
          f"; min {min(one_ratios):.3f} (information: rotation makes small GEMMs read cold "
          f"inputs, which the bare loop never does)")


def resnet_3x3_convs(batch: int) -> list:
    """Distinct 3x3 forward convolutions of ResNet-50 at ``batch``, in network order."""
    seen = []
    for layer in resnet50(batch).layers:
        for kc in layer.fwd:
            p = kc.params
            if kc.op == "conv2d_fwd" and p["r"] == 3 and p["s"] == 3 and kc not in seen:
                seen.append(kc)
    return seen


def conv_vs_gemm(backend, repeats: int, quick: bool, batch: int) -> None:
    convs = resnet_3x3_convs(batch)
    if quick:
        convs = convs[:3]
    print(f"\n## conv2d_fwd (im2col) vs equivalent GEMM, ResNet-50 3x3 layers, batch {batch}, "
          f"float32, {repeats} samples each")
    print(f"{'conv (n,c,h,w,k,stride)':30s} {'gemm m,n,k':>20s} {'conv ms':>8s} "
          f"{'gemm ms':>8s} {'conv GF/s':>9s} {'gemm GF/s':>9s} {'frac':>6s}")
    fracs = []
    for kc in convs:
        p = kc.params
        pq = (conv_out(p["h"], p["r"], p["stride"], p["pad"])
              * conv_out(p["w"], p["s"], p["stride"], p["pad"]))
        m, n, k = p["k"], p["n"] * pq, p["c"] * p["r"] * p["s"]
        flop = 2.0 * m * n * k
        t_conv = harness_s(kc, backend, repeats)
        t_gemm = harness_s(call("gemm", m=m, n=n, k=k), backend, repeats)
        frac = t_gemm / t_conv  # same FLOPs: rate ratio = time ratio
        fracs.append(frac)
        label = f"{p['n']},{p['c']},{p['h']},{p['w']},{p['k']},s{p['stride']}"
        print(f"{label:30s} {f'{m},{n},{k}':>20s} {t_conv * 1e3:8.2f} {t_gemm * 1e3:8.2f} "
              f"{flop / t_conv / 1e9:9.1f} {flop / t_gemm / 1e9:9.1f} {frac:6.3f} "
              f"{verdict(frac, CONV_TARGET)}")
    g = geomean(fracs)
    print(f"geometric mean conv/GEMM rate: {g:.3f} (target >= {CONV_TARGET}) "
          f"{verdict(g, CONV_TARGET)}; min {min(fracs):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer shapes and samples (a smoke run, ~1 min)")
    parser.add_argument("--repeats", type=int, default=None, help="samples per measurement")
    parser.add_argument("--batch", type=int, default=8, help="ResNet-50 batch for part 2")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("DDLSIM_BENCH_QUICK") == "1"
    repeats = args.repeats or (5 if quick else 15)
    backend = get_backend("cpu")
    t0 = time.perf_counter()
    print(f"# bench_kernels {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: {machine_line()}")
    harness_overhead(backend, repeats, quick)
    conv_vs_gemm(backend, repeats, quick, args.batch)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
