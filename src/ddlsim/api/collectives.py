"""nccl-tests-style bus bandwidth from the flow-level collective simulator and the three
global NCCL efficiency constants of :mod:`ddlsim.sim.collectives`. No per-row constant.

Algorithm choice follows NCCL's default, by rule, not per row: allreduce within one
NVSwitch node of Hopper GPUs uses NVLS (:func:`ddlsim.sim.collectives.nvls_supported`),
everything else the ring (the rows' large sizes are bandwidth-bound, where NCCL picks
the ring over the tree); alltoall has one algorithm (concurrent point-to-point sends).
"""

from __future__ import annotations

from ddlsim.sim import collectives as C
from ddlsim.units import GB, GiB

PEAK_SIZES = (4 * GiB,)  # nccl-tests "-e 4G": busbw peaks at the largest sizes


def nccl_sweep(lo: float, hi: float, step: float = 2**20) -> list[float]:
    """nccl-tests sizes for ``-b lo -e hi`` without ``-f``: linear steps of ``-i`` (default
    1 MiB, nccl-tests README), so its "avg bus bandwidth" is dominated by large sizes."""
    sizes, s = [], lo
    while s <= hi:
        sizes.append(s)
        s += step
    return sizes


def nccl_algo(cluster, op: str, ranks=None) -> str:
    """NCCL's default algorithm for ``op`` on large messages: ``nvls`` for an allreduce
    inside one NVSwitch node of NVLS-capable GPUs, else ``ring``."""
    return "nvls" if op == "allreduce" and C.nvls_supported(cluster, ranks) else "ring"


def busbw_GBps(cluster, op: str = "allreduce", sizes=PEAK_SIZES, ranks=None,
               mean: bool = False, algo: str | None = None) -> float:
    """Peak (or mean over ``sizes``) nccl-tests bus bandwidth in GB/s on an idle cluster;
    ``algo`` defaults to :func:`nccl_algo`. busbw = algbw x nccl-tests' bus factor for
    ``op`` (2(n-1)/n for allreduce, whatever the algorithm, as nccl-tests reports it)."""
    algo = algo or nccl_algo(cluster, op, ranks)
    rows = C.collective_bandwidth_table(C.nccl_calibrated(cluster), op, sizes, algo, ranks)
    vals = [r[3] for r in rows]
    return (sum(vals) / len(vals) if mean else max(vals)) / GB


def per_nic_GBps(cluster) -> float:
    """2-node ring allreduce busbw divided by the NICs a node drives."""
    return busbw_GBps(cluster) / cluster.nics_per_node


def alltoall_nic_GBps(cluster, sizes=PEAK_SIZES, ranks=None, mean: bool = False) -> float:
    """Peak (or mean over ``sizes``) throughput of the busiest NIC during an alltoall on an
    idle NCCL-calibrated cluster, in GB/s: NIC transmit bytes / alltoall time (0 within one
    node). What "per NIC" means for alltoall: each GPU's remote sends leave by its own NIC,
    so alltoall "cannot aggregate the bandwidth of multiple NICs" (S. Jeaugey, NVIDIA,
    nccl-tests issue #267) and its nccl-tests busbw mixes NVLink and NIC traffic."""
    import simpy

    from ddlsim.sim.network import Network

    spec = C.nccl_calibrated(cluster)
    ranks = list(range(spec.num_gpus)) if ranks is None else list(ranks)
    nic_tx = [i for i, kind in enumerate(Network(simpy.Environment(), spec).links.kinds)
              if kind == "nic_tx"]
    vals = []
    for size in sizes:
        env = simpy.Environment()
        net = Network(env, spec)
        proc = env.process(C.alltoall(env, net, ranks, size))
        env.run(until=proc)
        t = proc.value.duration_s
        vals.append(max(net.bytes_carried()[nic_tx], default=0.0) / t if t > 0 else 0.0)
    return (sum(vals) / len(vals) if mean else max(vals)) / GB
