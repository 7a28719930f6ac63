"""Layout search: speed, and whether its choice is the best the event simulation finds.

Run: ``.venv/bin/python bench/bench_search.py [--quick] [--sample N]``

``ddlsim search`` keeps the layouts that fit (memory model, no simulation), ranks them by a
calibrated 1F1B estimate and event-simulates the best few distinct tp x pp. Here the
search runs for Llama-2 70B on 64 H100s (dgx-h100 preset, global batch 512), then a random
sample of the other feasible layouts is event-simulated too, and the best of the sample
is compared with the search's choice (issue target: the choice within 5 % of the best
found; the whole search under 60 s).
"""

from __future__ import annotations

import argparse
import os
import random
import time

from ddlsim import api


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sample", type=int, default=12, help="feasible layouts to simulate")
    args = ap.parse_args()
    quick = args.quick or os.environ.get("DDLSIM_BENCH_QUICK") == "1"
    model, gpus = ("gpt3-1.3b", 8) if quick else ("llama2-70b", 64)
    template = api.Job(workload=api.Workload(model), cluster=api.Cluster("dgx-h100", gpus),
                       parallelism=api.Parallelism(placement="blocks"),
                       batch=api.Batch(global_batch=512), strategy=api.Strategy(kind="3d"))
    t0 = time.perf_counter()
    result = api.search_layouts(template)
    wall = time.perf_counter() - t0
    best = result.best
    print(f"{model} on {gpus} x h100-sxm: search {wall:.1f} s wall; {result.note()}")
    chosen = {(c.tp, c.pp, c.micro_batch, c.recompute) for c in result.layouts}
    others = [f for f in result.feasible if (f[0], f[1], f[3], f[4]) not in chosen]
    sample = random.Random(0).sample(others, min(args.sample if not quick else 3, len(others)))
    t0 = time.perf_counter()
    rows = []
    for tp, pp, dp, mb, rc, _, est in sample:
        par = api.Parallelism(tp=tp, pp=pp, dp=dp, recompute=rc, placement="blocks")
        job = api.Job(workload=template.workload, cluster=template.cluster, parallelism=par,
                      batch=api.Batch(global_batch=512, micro=mb), strategy=template.strategy)
        pred = api.predict(job)
        rows.append((pred.iteration_s, est, f"tp {tp} pp {pp} dp {dp} mbs {mb} {rc}",
                     pred.fits))
    sim_wall = time.perf_counter() - t0
    fit_rows = [r for r in rows if r[3]]
    best_sample = min(fit_rows) if fit_rows else None
    print(f"sampled {len(rows)} other feasible layouts, simulated in {sim_wall:.1f} s")
    for it, est, label, fits in sorted(rows):
        print(f"  {label:36s} predicted {it:8.3f} s  estimate {est:8.3f} s  "
              f"({100 * (est / it - 1):+.1f} %){'' if fits else '  does not fit'}")
    if best is not None and best_sample is not None:
        gap = best.iteration_s / min(best.iteration_s, best_sample[0]) - 1
        print(f"search choice {best.label}: {best.iteration_s:.3f} s; best of the sample "
              f"{best_sample[2]}: {best_sample[0]:.3f} s; the choice is {100 * gap:.1f} % "
              "slower than the best found (0.0 = the choice is the best)")


if __name__ == "__main__":
    main()
