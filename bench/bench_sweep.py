"""Speed of ``ddlsim sweep``: a 100-point sweep of the built-in ``resnet50-dp-scaling``.

Axes: cluster.gpus (5 values) x cluster.preset (dgx-a100, cloud-25gbe) x
workload.batch_per_gpu (10 values), ``--iterations`` simulated iterations per point.
Runs the sweep inline (workers=1), then on a process pool of ``os.cpu_count()`` workers,
each with an empty cache, then once more from the warm cache; prints wall times, the
speed-up and whether the CSVs are byte-identical. Usage:
``python bench/bench_sweep.py [--iterations 20] [--workers N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

AXES = (
    ("cluster.gpus", ("8", "32", "128", "512", "1024")),
    ("cluster.preset", ("dgx-a100", "cloud-25gbe")),
    ("workload.batch_per_gpu", ("8", "16", "24", "32", "48", "64", "96", "128", "192", "256")),
)


def timed_sweep(scenario, label, workers: int, cache_dir: Path):
    """Run the sweep once; returns ``(wall seconds, SweepResult)``."""
    from ddlsim.api.sweep import SweepOptions, run_sweep

    t0 = time.perf_counter()
    res = run_sweep(scenario, label, SweepOptions(axes=AXES, workers=workers,
                                                  cache_dir=cache_dir))
    return time.perf_counter() - t0, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from ddlsim.api.sweep import run_point
    from ddlsim.scenarios import load_scenario

    sc, label = load_scenario("resnet50-dp-scaling")
    sc = sc.model_copy(update={"iterations": args.iterations})
    run_point(sc.model_dump(mode="json"), label)  # warm this process's imports
    with tempfile.TemporaryDirectory() as tmp:
        t1, one = timed_sweep(sc, label, 1, Path(tmp) / "one")
        tn, many = timed_sweep(sc, label, args.workers, Path(tmp) / "many")
        tc, cached = timed_sweep(sc, label, args.workers, Path(tmp) / "many")
    points = len(one.points)
    print(f"## sweep of resnet50-dp-scaling: {points} points, {args.iterations} iterations "
          f"each; {platform.processor() or platform.machine()}, os.cpu_count()="
          f"{os.cpu_count()}")
    print(f"{'run':<28}{'wall s':>9}{'ms/point':>10}{'computed':>10}")
    for name, wall, res in (("workers=1 (inline)", t1, one),
                            (f"workers={args.workers} (process pool)", tn, many),
                            (f"workers={args.workers}, warm cache", tc, cached)):
        print(f"{name:<28}{wall:>9.2f}{1e3 * wall / points:>10.1f}{res.computed:>10}")
    print(f"speed-up workers={args.workers} vs 1: {t1 / tn:.2f}x; "
          f"warm cache vs cold inline: {t1 / tc:.0f}x")
    print(f"CSV byte-identical (1 vs {args.workers} workers): "
          f"{one.to_csv_text() == many.to_csv_text() == cached.to_csv_text()}")


if __name__ == "__main__":
    main()
