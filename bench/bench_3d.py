"""Speed of the 3D-parallel simulator: one iteration of GPT-3 175B on 1,024 A100s
(TP 8, PP 16, DP 8, micro-batch 1, 64 micro-batches per replica, global batch 512).

Target (issue 5): at most 30 s. Prints wall time and the headline prediction.
Usage: python bench/bench_3d.py [--micro-batches 64] [--p2p network|links]
"""

from __future__ import annotations

import argparse
import time

from ddlsim.api.pipeline import ThreeDOptions, predict_model_parallel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--micro-batches", type=int, default=64)
    ap.add_argument("--p2p", default="network", choices=["network", "links", "auto"])
    args = ap.parse_args()
    dp, mb = 8, 1
    opts = ThreeDOptions(model="gpt3-175b", tp=8, pp=16, dp=dp, micro_batch=mb,
                         global_batch=args.micro_batches * dp * mb, cluster="dgx-a100",
                         recompute="full", p2p=args.p2p)
    t0 = time.perf_counter()
    pred = predict_model_parallel(opts)
    wall = time.perf_counter() - t0
    s = pred.summary()
    print(f"GPT-3 175B, {s['gpus']} GPUs (tp {s['tp']}, pp {s['pp']}, dp {s['dp']}), "
          f"{s['micro_batches']} micro-batches, p2p={args.p2p}: wall {wall:.2f} s; "
          f"{len(pred.result.ops)} compute ops, {len(pred.result.sends)} sends; predicted "
          f"iteration {s['iteration_s']:.2f} s, {s['tokens_per_s']:,.0f} tokens/s, "
          f"{s['hardware_tflops_per_gpu']:.1f} TFLOP/s/GPU (with recompute), "
          f"bubble {100 * s['bubble_fraction']:.1f}%, max memory "
          f"{s['max_memory_bytes'] / 2**30:.1f} GiB, fits={s['fits']}")


if __name__ == "__main__":
    main()
