"""Layout search: speed of its analytic fast path, its agreement with the event
simulation, and whether its choice is the best the simulation finds.

Run: ``.venv/bin/python bench/bench_search.py [--quick] [--sample N]``

``ddlsim search`` estimates every layout (tp x cp x pp x dp x micro-batch x recomputation
x vp x ZeRO stage) with the analytic fast path (``api.layout_fast``: memory and time per
iteration in closed form from the event simulation's per-layer costs), keeps those that
fit, and event-simulates the best few distinct tp x pp. Here, for Llama-2 70B on 64 H100s
(dgx-h100 preset, global batch 512):

1. the whole search, wall time (a fresh process: every cost computed once);
2. the fast path's rate: every layout of the space evaluated once to warm its caches, then
   again, timed (issue 15 target: at least 1,000 layouts per second on one core; BLAS
   threads pinned to 1);
3. a random sample of the feasible layouts (seed 0) event-simulated: the largest
   difference between the fast path and ``api.predict``, and the best of the sample
   against the search's choice (target: the choice within 5 % of the best found).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: before NumPy is imported

import argparse  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

from ddlsim import api  # noqa: E402
from ddlsim.api.layout_fast import FastModel, layout_job  # noqa: E402
from ddlsim.api.layout_search import (  # noqa: E402
    candidate_layouts,
    decoder_hyper,
    decoder_template,
)


def fast_rate(template, min_s: float = 2.0) -> tuple[float, int, float]:
    """(layouts per second warm, layouts in the space, cold seconds for one pass)."""
    layers, heads, kv_heads, _ = decoder_hyper(template)
    space = candidate_layouts(template.cluster.gpus, 8, layers, heads, kv_heads,  # dgx-h100
                              template.batch.global_batch)
    fast = FastModel(template, "stored")
    t0 = time.perf_counter()
    for lay in space:
        fast.evaluate(*lay[:7], cp=lay[7])
    cold = time.perf_counter() - t0
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        for lay in space:
            fast.evaluate(*lay[:7], cp=lay[7])
        done += len(space)
    return done / (time.perf_counter() - t0), len(space), cold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sample", type=int, default=16, help="feasible layouts to simulate")
    args = ap.parse_args()
    quick = args.quick or os.environ.get("DDLSIM_BENCH_QUICK") == "1"
    model, gpus = ("gpt3-1.3b", 8) if quick else ("llama2-70b", 64)
    gb = 512
    template = decoder_template(model, "dgx-h100", gpus, global_batch=gb)
    t0 = time.perf_counter()
    result = api.search_layouts(template)
    wall = time.perf_counter() - t0
    best = result.best
    print(f"{model} on {gpus} x h100-sxm: search {wall:.1f} s wall; {result.note()}")
    rate, n, cold = fast_rate(template, 0.5 if quick else 2.0)
    print(f"fast path: {n} layouts, first pass {cold:.2f} s (costs computed), then "
          f"{rate:,.0f} layouts/s warm on one core")
    chosen = {(c.tp, c.pp, c.dp, c.micro_batch, c.recompute, c.vp, c.zero, c.cp)
              for c in result.layouts}
    others = [f for f in result.feasible if f.key not in chosen]
    sample = random.Random(0).sample(others, min(3 if quick else args.sample, len(others)))
    t0 = time.perf_counter()
    rows = []
    for f in sample:
        pred = api.predict(layout_job(template, f.tp, f.pp, f.dp, f.micro_batch, f.recompute,
                                      gb, f.vp, f.zero, f.cp))
        rows.append((pred.iteration_s, f.estimate_s, f.label, pred.fits))
    rows += [(c.iteration_s, c.proxy_s, c.label + " (predicted by the search)", True)
             for c in result.layouts]
    sim_wall = time.perf_counter() - t0
    print(f"sampled {len(sample)} other feasible layouts, simulated in {sim_wall:.1f} s")
    for it, est, label, fits in sorted(rows):
        print(f"  {label:58s} simulated {it:8.3f} s  fast path {est:8.3f} s  "
              f"({100 * (est / it - 1):+.2f} %){'' if fits else '  does not fit'}")
    worst = max(rows, key=lambda r: abs(r[1] / r[0] - 1))
    print(f"largest fast-path vs simulation difference: {100 * (worst[1] / worst[0] - 1):+.2f} "
          f"% ({worst[2]})")
    fit_rows = [r for r in rows[:len(sample)] if r[3]]
    if best is not None and fit_rows:
        top = min(fit_rows)
        gap = best.iteration_s / min(best.iteration_s, top[0]) - 1
        print(f"search choice {best.label}: {best.iteration_s:.3f} s; best of the sample "
              f"{top[2]}: {top[0]:.3f} s; the choice is {100 * gap:.1f} % slower than the "
              "best found (0.0 = the choice is the best)")


if __name__ == "__main__":
    main()
