"""Speed of the sync-DP simulator: 100 iterations of ResNet-50 (batch 32/GPU) on dgx-a100.

Each size runs in a fresh subprocess so its peak memory (ru_maxrss) is its own. Prints wall
time, peak RSS and wall time per (GPU x iteration), so cost growth can be read as a ratio
within one run. Usage: python bench/bench_sync_dp.py [--quick] [--noise]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from ddlsim import api
gpus, iters, noise = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
opts = api.DPOptions(model="resnet50", batch_per_gpu=32, cluster="dgx-a100", gpus=gpus,
                     iterations=iters, noise="lognormal" if noise else "none", noise_cv=noise)
api.predict_dp(api.DPOptions(gpus=8, iterations=2))  # warm up imports and caches
t0 = time.perf_counter()
pred = api.predict_dp(opts)
wall = time.perf_counter() - t0
print(json.dumps({"gpus": gpus, "iterations": iters, "noise_cv": noise, "wall_s": wall,
                  "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "iteration_ms": 1e3 * float(pred.summary()["iteration_s"]),
                  "scaling_efficiency": pred.scaling_efficiency}))
"""


def run(gpus: int, iterations: int, noise: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(gpus), str(iterations), str(noise)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer sizes")
    ap.add_argument("--noise", action="store_true", help="also run with per-kernel noise")
    args = ap.parse_args()
    sizes = [8, 64, 1024] if args.quick else [8, 64, 512, 1024, 4096]
    cases = [(g, 100, 0.0) for g in sizes]
    if args.noise:
        cases += [(g, 100, 0.1) for g in sizes if g <= 1024]
    print(f"{'GPUs':>6} {'iters':>5} {'noise':>5} {'wall s':>8} {'peak MiB':>9} "
          f"{'us/(GPU*it)':>11} {'iter ms':>8} {'eff':>6}")
    rows = []
    for g, it, cv in cases:
        r = run(g, it, cv)
        rows.append(r)
        per = 1e6 * r["wall_s"] / (g * it)
        print(f"{g:>6} {it:>5} {cv:>5} {r['wall_s']:>8.3f} {r['peak_rss_MiB']:>9.0f} "
              f"{per:>11.3f} {r['iteration_ms']:>8.2f} {100 * r['scaling_efficiency']:>5.1f}%")
    target = [r for r in rows if r["gpus"] == 1024 and r["noise_cv"] == 0]
    if target:
        ok = target[0]["wall_s"] <= 10.0
        print(f"target: 1,024 GPUs x 100 iterations <= 10 s: {target[0]['wall_s']:.2f} s "
              f"{'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
