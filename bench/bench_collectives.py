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

import csv
import time
from pathlib import Path

import simpy

from ddlsim.sim import collectives as C
from ddlsim.sim.network import Network
from ddlsim.sim.topology import make_cluster
from ddlsim.units import GB, GiB

CSV = Path(__file__).resolve().parents[1] / "src" / "ddlsim" / "data" / "published.csv"
PEAK = [4 * GiB]  # nccl-tests "-e 4G": busbw peaks at the largest sizes


def _nccl_sweep(lo: float, hi: float, step: float = 2**20) -> list[float]:
    """nccl-tests sizes for ``-b lo -e hi`` without ``-f``: linear steps of ``-i``
    (default 1 MiB, nccl-tests README), so the "avg bus bandwidth" is dominated by
    large sizes."""
    sizes, s = [], lo
    while s <= hi:
        sizes.append(s)
        s += step
    return sizes


def _busbw(cluster, op="allreduce", sizes=PEAK, ranks=None, mean=False) -> float:
    rows = C.collective_bandwidth_table(C.nccl_calibrated(cluster), op, sizes, "ring", ranks)
    vals = [r[3] for r in rows]
    return (sum(vals) / len(vals) if mean else max(vals)) / GB


def _per_nic(cluster) -> float:
    """2-node ring allreduce busbw divided by the NICs a node drives."""
    return _busbw(cluster) / cluster.nics_per_node


h100, a100 = make_cluster("dgx-h100", 1), make_cluster("dgx-a100", 1)
# id -> (how it is expressed, predictor of busbw in GB/s, note)
EXPRESS = {
    "COL-01": ("dgx-h100 1 node, ring", lambda: _busbw(h100),
               "NVLS (in-switch reduce) not modelled"),
    "COL-02": ("dgx-h100 1 node, all_gather ring", lambda: _busbw(h100, "all_gather"),
               "fit: defines NCCL_NVLINK_EFFICIENCY"),
    "COL-03": ("dgx-h100 1 node, ring", lambda: _busbw(h100), "NVLS not modelled"),
    "COL-04": ("dgx-h100 1 node (H200 NVLink4), ring",
               lambda: _busbw(make_cluster("dgx-h100", 1, device="h200")), "NVLS likely used"),
    "COL-05": ("dgx-a100 1 node, ring", lambda: _busbw(a100), ""),
    "COL-06": ("dgx-a100 2 nodes, 4 NICs/node, ring",
               lambda: _busbw(make_cluster("dgx-a100", 2, nics_per_node=4)), ""),
    "COL-07": ("dgx-a100 2 nodes, 4 NICs/node, ring, 8 GiB",
               lambda: _busbw(make_cluster("dgx-a100", 2, nics_per_node=4), sizes=[8 * GiB]), ""),
    "COL-08": ("dgx-a100 3 nodes, 4 NICs/node, mean busbw 8 B..128 MiB step 1 MiB",
               lambda: _busbw(make_cluster("dgx-a100", 3, nics_per_node=4),
                              sizes=_nccl_sweep(8, 128 * 2**20), mean=True),
               "nccl-tests 'avg bus bandwidth' over the sweep"),
    "COL-09": ("dgx-a100 1 node (HPE), ring", lambda: _busbw(a100), "non-DGX A100 server"),
    "COL-10": ("dgx-h100 2 nodes, busbw / 8 NICs", lambda: _per_nic(make_cluster("dgx-h100", 2)),
               "fit: defines NCCL_NET_EFFICIENCY"),
    "COL-11": ("dgx-h100 2 nodes, busbw / 8 NICs", lambda: _per_nic(make_cluster("dgx-h100", 2)),
               "published figure is for alltoall"),
    "COL-12": ("2x H100 PCIe, NVLink bridge 300 GB/s/dir, ring",
               lambda: _busbw(make_cluster("pcie-8gpu", 1, gpus_per_node=2, device="h100-pcie",
                                           intra_link="nvlink", intra_bw_Bps=300 * GB)),
               "H100 PCIe datasheet: NVLink bridge 600 GB/s bidirectional"),
}
SKIPPED = {"COL-13": "misconfigured system (degraded fabric) - nothing to predict"}


def validation_table() -> None:
    with CSV.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] == "collectives"]
    print(f"NCCL efficiency: NVLink {C.NCCL_NVLINK_EFFICIENCY:.3f} (COL-02), "
          f"network {C.NCCL_NET_EFFICIENCY:.3f} (COL-10)\n")
    print(f"{'id':7s} {'published':>9s} {'predicted':>9s} {'error':>7s}  expressed as / note")
    errors = []
    for r in rows:
        rid, pub = r["id"], float(r["value"])
        if rid not in EXPRESS:
            print(f"{rid:7s} {pub:9.1f} {'-':>9s} {'-':>7s}  skipped: {SKIPPED.get(rid, '?')}")
            continue
        how, predict, note = EXPRESS[rid]
        pred = predict()
        err = (pred - pub) / pub * 100
        if not note.startswith("fit"):
            errors.append(abs(err))
        print(f"{rid:7s} {pub:9.1f} {pred:9.1f} {err:+6.1f}%  {how}; {note}".rstrip("; "))
    print(f"\nmean |error| over {len(errors)} judged rows: {sum(errors) / len(errors):.1f}% "
          "(GB/s; fit rows excluded)")


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
