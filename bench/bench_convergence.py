"""Convergence replay speed and the numbers it measures on the 8x8 digits.

1. 10-epoch LeNet replay (batch 32, one worker, default options): wall time, updates/s,
   final test accuracy (issue target: <= 60 s on the development machine).
2. The same budget on the update log of a simulated 4-GPU sync-DP run (dgx-a100, 16 per
   GPU): time-to-97% over seeds, in simulated seconds.
3. Noise scale B_simple along the replay (fitted B_noise) and a staleness penalty fitted
   from constant-staleness replays (time-to-93%, MLP and LeNet) - inputs of the
   statistical-efficiency model.

Usage: python bench/bench_convergence.py [--quick] [--device cpu|gpu|auto]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from ddlsim import api
from ddlsim.api.convergence import ReplayOptions, converge, replay_prediction
from ddlsim.convergence.data import load_digits
from ddlsim.convergence.replay import (
    ReplayConfig,
    constant_staleness_log,
    sync_log,
    time_to_accuracy,
)
from ddlsim.convergence.stat_eff import fit_staleness_penalty, fitted_b_noise, noise_scale_along
from ddlsim.convergence.train import LRSchedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one seed, fewer staleness values")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    seeds = (0,) if args.quick else (0, 1, 2, 3, 4)
    data = load_digits()
    print(f"# bench_convergence  {time.strftime('%Y-%m-%d')}  {platform.node()}  "
          f"device={args.device}")

    # 1. speed of a 10-epoch LeNet replay
    for model in ("lenet-digits", "mlp"):
        pred = replay_prediction(sync_log(1, 1), ReplayOptions(model=model,
                                                               device=args.device), data)
        r = pred.result
        print(f"{model:13s} 10 epochs: {r.updates_applied} updates, wall {r.wall_s:.2f} s, "
              f"{r.updates_per_s:.0f} updates/s, final test acc {100 * r.final_accuracy:.2f}% "
              f"(backend {r.backend})")
        if model == "lenet-digits":
            lenet = r

    # 2. time-to-97% on a simulated sync-DP log
    job = api.Job(workload=api.Workload("lenet-digits"), cluster=api.Cluster(gpus=4),
                  batch=api.Batch(micro=16), iterations=20)
    pred, conv = converge(job, ReplayOptions(seeds=seeds, device=args.device), data)
    dp = pred.detail
    t = conv.tta
    print(f"sync DP 4 GPUs x 16 (dgx-a100 sim, iteration {1e6 * dp.summary()['iteration_s']:.0f}"
          f" us): time-to-97% over {len(seeds)} seeds: median {1e3 * t.median_s:.2f} ms "
          f"(min {1e3 * t.min_s:.2f}, max {1e3 * t.max_s:.2f}), updates {list(t.updates)}, "
          f"reached {t.reached}/{len(seeds)}; final acc {100 * conv.result.final_accuracy:.2f}%")

    # 3a. noise scale along the 10-epoch LeNet replay
    t0 = time.perf_counter()
    scales = noise_scale_along(lenet, data, small_batch=32, shards=8, trials=32)
    print("B_simple along training (update: value): " +
          ", ".join(f"{s.update}: {s.b_simple:.0f}" for s in scales) +
          f"  -> fitted B_noise {fitted_b_noise(scales):.0f} samples "
          f"({time.perf_counter() - t0:.1f} s)")

    # 3b. staleness penalty from constant-staleness replays
    for model, taus, n in (("mlp", (0, 1, 2, 4), 800), ("lenet-digits", (0, 1, 2), 800)):
        if args.quick:
            taus = taus[:2]
        cfg = ReplayConfig(model=model, schedule=LRSchedule(0.02), eval_every=5,
                           device=args.device)
        tau_all, steps_all = [], []
        for tau in taus:
            tta = time_to_accuracy(constant_staleness_log(n, tau), cfg, 0.93, seeds, data)
            ok = [u for u in tta.updates if u >= 0]
            print(f"  {model} staleness {tau}: updates to 93% {list(tta.updates)}")
            tau_all += [tau] * len(ok)
            steps_all += ok
        penalty, resid = fit_staleness_penalty(tau_all, steps_all)
        print(f"{model}: staleness penalty {penalty:.2f} extra steps per unit staleness "
              f"(rms relative residual {resid:.2f}); mean updates at tau=0 "
              f"{np.mean([s for s, x in zip(steps_all, tau_all, strict=True) if x == 0]):.0f}")


if __name__ == "__main__":
    main()
