"""Speed of the memory-aware partitioner: 1,000 layers onto 64 heterogeneous stages.

Target (issue 5): under 1 s. Prints the wall time of each of a few runs (median reported).
Usage: python bench/bench_placement.py [--layers 1000] [--stages 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ddlsim.sim.placement import partition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--layers", type=int, default=1000)
    ap.add_argument("--stages", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, p = args.layers, args.stages
    base = rng.uniform(1e-3, 5e-3, n)
    speed = np.where(np.arange(p) % 2 == 0, 1.0, 1.6)  # two GPU kinds
    times = base[None, :] * speed[:, None]
    static = rng.uniform(1e8, 4e8, n)
    act = rng.uniform(1e7, 5e7, n)
    mult = np.minimum(p - np.arange(p), 16)  # 1F1B with 16 micro-batches
    cap = np.where(np.arange(p) % 2 == 0, 80 * 2**30, 40 * 2**30)
    walls = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        part = partition(times, static, act, mult, cap)
        walls.append(time.perf_counter() - t0)
    print(f"{n} layers -> {p} stages: median {statistics.median(walls):.3f} s "
          f"(min {min(walls):.3f}, max {max(walls):.3f}); fits={part.fits}, "
          f"balance={part.balance:.3f}, bottleneck={part.bottleneck_s * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
