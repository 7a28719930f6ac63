"""Speed of the parameter-server simulator: ResNet-50 (batch 32/worker) on dgx-a100.

The issue's target: 256 workers x 20,000 applied updates in <= 10 s. Prints, per case, the
wall time of :func:`ddlsim.api.predict_ps` (after a warm-up run), wall time per applied
gradient, the network flows started and the predicted throughput and staleness.
Usage: python bench/bench_async_ps.py [--quick] [--updates N] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import json
import time

from ddlsim.api.async_ps import PSOptions, predict_ps


def case(label: str, **kw) -> dict:
    opts = PSOptions(model="resnet50", batch_per_worker=32, cluster="dgx-a100", **kw)
    t0 = time.perf_counter()
    p = predict_ps(opts)
    wall = time.perf_counter() - t0
    s = p.summary()
    grads = int(p.result.grads_applied.sum())
    return {"case": label, "workers": opts.workers, "shards": opts.shards, "mode": opts.mode,
            "updates": s["updates"], "grads_applied": grads, "wall_s": round(wall, 3),
            "us_per_grad": round(1e6 * wall / max(grads, 1), 1),
            "samples_per_s": round(s["samples_per_s"], 1),
            "staleness_mean": round(s["staleness_mean"], 2),
            "server_link_util_max": round(s["server_link_util_max"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2,000 updates instead of 20,000")
    ap.add_argument("--updates", type=int, default=None)
    ap.add_argument("--only", default="", help="run only the cases whose label contains this")
    args = ap.parse_args()
    n = args.updates or (2000 if args.quick else 20000)
    predict_ps(PSOptions(workers=8, updates=20))  # warm up imports and the cost model
    w = 256
    cases = [
        ("asp S=1 fifo", dict(workers=w, updates=n, mode="asp", shards=1,
                               server_concurrency=1)),
        ("asp S=1 fifo noise", dict(workers=w, updates=n, mode="asp", shards=1,
                                     server_concurrency=1, noise="lognormal", noise_cv=0.1)),
        ("ssp s=3 S=1 fifo noise", dict(workers=w, updates=n, mode="ssp", staleness_bound=3,
                                         shards=1, server_concurrency=1, noise="lognormal",
                                         noise_cv=0.1)),
        ("bsp S=1 (n/W iterations)", dict(workers=w, updates=max(2, n // w), mode="bsp",
                                          shards=1, server_concurrency=1)),
        ("asp S=4 hosts fifo", dict(workers=w, updates=n, mode="asp", shards=4,
                                     placement="hosts", server_concurrency=1)),
        ("asp S=1 fair (n/10)", dict(workers=w, updates=max(2, n // 10), mode="asp", shards=1,
                                     server_concurrency=0)),
    ]
    for label, kw in cases:
        if args.only not in label:
            continue
        print(json.dumps(case(label, **kw)), flush=True)


if __name__ == "__main__":
    main()
