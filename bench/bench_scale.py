"""Scale of today's clusters: wall time of one prediction at training-run scale.

Run: ``.venv/bin/python bench/bench_scale.py [--quick]``

* 3D parallelism of Llama 3 405B at its training layout (Dubey et al. 2024, arXiv
  2407.21783 Table 4: tp 8, pp 16, dp 128 = 16,384 H100s, global batch 2,048 sequences of
  8,192 tokens, micro-batch 1);
* synchronous data parallelism of ResNet-50 on 100,000 GPUs x 100 iterations (dgx-h100
  nodes), and the same at 1,024 / 4,096 / 16,384 GPUs to show how the cost grows.

Issue target: each at most 10 s on one core. Wall time by ``time.perf_counter`` around
``api.predict`` (one warm-up prediction of a small job first, so imports are not counted);
the last line is the ratio of the two largest sync-DP wall times.
"""

from __future__ import annotations

import argparse
import os
import time

from ddlsim import api


def _timed(job) -> tuple[float, object]:
    t0 = time.perf_counter()
    pred = api.predict(job, max_events=200_000_000)
    return time.perf_counter() - t0, pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    quick = ap.parse_args().quick or os.environ.get("DDLSIM_BENCH_QUICK") == "1"
    api.predict(api.Job(batch=api.Batch(micro=32), iterations=2))  # warm-up
    gb = 64 if quick else 2048
    dp = 4 if quick else 128
    job = api.Job(workload=api.Workload("llama3-405b"),
                  cluster=api.Cluster("dgx-h100", 8 * 16 * dp),
                  # Llama 3 shards optimizer state and gradients over dp (FSDP without
                  # resharding weights after the forward, arXiv 2407.21783 Sec. 3.3.2): ZeRO-2;
                  # tensor parallelism with sequence parallelism, as Megatron-Core runs it
                  parallelism=api.Parallelism(tp=8, pp=16, dp=dp, placement="blocks",
                                              recompute="selective", zero=2,
                                              sequence_parallel=True),
                  batch=api.Batch(global_batch=gb, micro=1), strategy=api.Strategy("3d"))
    wall, pred = _timed(job)
    print(f"3D llama3-405b tp 8 pp 16 dp {dp} = {pred.gpus:,} GPUs, global batch {gb}: "
          f"wall {wall:.2f} s; predicted {pred.iteration_s:.2f} s per iteration, "
          f"{pred.model_tflops_per_gpu:.0f} model TFLOP/s per GPU (MFU {100 * pred.mfu:.0f} %), "
          f"{pred.memory_bytes / 2**30:.0f} GiB per GPU "
          f"({'fits' if pred.fits else 'does not fit'})")
    walls = {}
    for gpus in ((64, 512) if quick else (1024, 4096, 16384, 100_000)):
        gpus -= gpus % 8
        job = api.Job(workload=api.Workload("resnet50"), cluster=api.Cluster("dgx-h100", gpus),
                      batch=api.Batch(micro=64), iterations=10 if quick else 100)
        wall, pred = _timed(job)
        walls[gpus] = wall
        print(f"sync DP resnet50 {gpus:,} GPUs x {job.iterations} iterations: wall "
              f"{wall:.2f} s; {pred.samples_per_s:,.0f} samples/s, "
              f"{100 * pred.scaling_efficiency:.1f} % scaling")
    (small, w_small), (big, w_big) = list(walls.items())[-2:]
    print(f"wall {big:,} / {small:,} GPUs: {w_big / w_small:.1f}x for {big / small:.1f}x the GPUs")


if __name__ == "__main__":
    main()
