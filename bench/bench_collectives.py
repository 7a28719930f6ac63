"""Collectives: predicted vs published nccl-tests bus bandwidth, and simulator speed.

Run: ``.venv/bin/python bench/bench_collectives.py``

Part 1 reads the ``collectives`` rows of ``src/ddlsim/data/published.csv`` and, for each
row the model can express, simulates it on an idle cluster with the two global NCCL
efficiency constants of :mod:`ddlsim.sim.collectives` (NVLink: fitted on COL-02 only;
network: fitted on COL-10 only; those two rows are marked ``fit`` and are not evidence).
No per-row constants. Part 2 times the simulator itself: one 100 MB ring allreduce on
8 ... 4096 GPUs (DGX H100 nodes), cold (plan built) and warm (plan cached).
"""

from __future__ import annotations

import time
from pathlib import Path

import simpy

from ddlsim.sim import collectives as C
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster

CSV = Path(__file__).resolve().parents[1] / "src" / "ddlsim" / "data" / "published.csv"


def validation_table() -> None:
    """The collectives rows through the one validation path (ddlsim.validation)."""
    from ddlsim import validation

    rows = validation.validate(CSV, ("collectives",), "stored").rows
    print(f"NCCL efficiency: NVLink {C.NCCL_NVLINK_EFFICIENCY:.3f}, "
          f"network {C.NCCL_NET_EFFICIENCY:.3f}\n")
    print(f"{'id':7s} {'published':>9s} {'predicted':>9s} {'error':>7s}  assumptions / reason")
    errors = []
    for r in rows.itertuples(index=False):
        if r.status != "predicted":
            print(f"{r.id:7s} {r.published:9.1f} {'-':>9s} {'-':>7s}  skipped: {r.reason}")
            continue
        err = (r.predicted - r.published) / r.published * 100
        errors.append(abs(err))
        print(f"{r.id:7s} {r.published:9.1f} {r.predicted:9.1f} {err:+6.1f}%  {r.reason}")
    print(f"\nmean |error| over {len(errors)} rows: {sum(errors) / len(errors):.1f}% (GB/s)")


def timing_table() -> None:
    print("\nSimulator wall time, one 100 MB ring allreduce (dgx-h100 nodes):")
    print(f"{'GPUs':>6s} {'cold ms':>9s} {'warm ms':>9s} {'warm us/GPU':>12s} {'sim time ms':>12s}")
    for gpus in (8, 64, 512, 1024, 4096):
        cluster = make_cluster("dgx-h100", gpus // 8)
        env = simpy.Environment()
        net = Network(env, cluster)
        t0 = time.perf_counter()
        proc = env.process(C.allreduce_ring(env, net, range(gpus), 100e6))
        env.run(until=proc)
        cold = time.perf_counter() - t0
        reps = 20
        t0 = time.perf_counter()
        for _ in range(reps):
            proc = env.process(C.allreduce_ring(env, net, range(gpus), 100e6))
            env.run(until=proc)
        warm = (time.perf_counter() - t0) / reps
        print(f"{gpus:6d} {cold * 1e3:9.2f} {warm * 1e3:9.3f} {warm / gpus * 1e6:12.3f} "
              f"{proc.value.duration_s * 1e3:12.3f}")


if __name__ == "__main__":
    validation_table()
    timing_table()
