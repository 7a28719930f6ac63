"""NCCL conventions without a simulation: the global NCCL efficiency constants, the
calibration they apply to a cluster (:func:`nccl_calibrated`) and the closed-form times of
uncontended collectives."""

from __future__ import annotations

import math
from dataclasses import replace

from ddlsim.sim.topology import ClusterSpec

# Global NCCL efficiency constants (achieved / line rate), each fitted on ONE published
# row and judged on the others in bench/bench_collectives.py:
#: NVIDIA/nccl-tests issue #212 (maintainer): 370 GB/s effective busbw on 450 GB/s NVLink4
#: ("~20% protocol overhead"; H100-SXM5-80GB).
NCCL_NVLINK_EFFICIENCY = 370.0 / 450.0
#: NVIDIA/nccl-tests issue #290 (NVIDIA staff): 46-48 GB/s per NDR 400 Gb/s (50 GB/s) NIC
#: through NCCL.
NCCL_NET_EFFICIENCY = 47.0 / 50.0
#: NVLS (NVLink SHARP) allreduce: achieved per-GPU link throughput as a fraction of the
#: NCCL-calibrated NVLink rate (what :func:`nccl_calibrated` leaves on the links, i.e.
#: NCCL_NVLINK_EFFICIENCY x line rate). Fitted on ONE row, NVIDIA/nccl-tests issue #212
#: (maintainer, allreduce busbw peak): 480 GB/s on 8 H100 = algbw 480 / (2*7/8) =
#: 274.3 GB/s, over 0.822 x 450 = 370 GB/s. Judged on the measured H100 (476 GB/s,
#: nccl-tests issue #290) and H200 (475 GB/s, nccl-tests issue #272) rows.
NCCL_NVLS_EFFICIENCY = (480.0 / (2 * 7 / 8)) / (450.0 * NCCL_NVLINK_EFFICIENCY)
#: Catalog devices whose NVSwitch nodes run NVLS: Hopper GPUs on third-generation
#: NVSwitch (NVIDIA NCCL 2.17 release notes: NVLS on H100 NVSwitch systems; DGX H100 /
#: HGX H200 datasheets: NVLink4 + third-generation NVSwitch).
NVLS_DEVICES = ("h100-sxm", "h200")


def nccl_calibrated(cluster: ClusterSpec) -> ClusterSpec:
    """``cluster`` with NVLink/NVSwitch and NIC bandwidths scaled by the NCCL constants.

    PCIe bandwidths are left alone (the presets already hold achievable PCIe rates).
    """
    intra = cluster.intra_bw_Bps
    if cluster.intra_link in ("nvlink", "nvswitch"):
        intra *= NCCL_NVLINK_EFFICIENCY
    return replace(cluster, intra_bw_Bps=intra,
                   nic_bw_Bps=cluster.nic_bw_Bps * NCCL_NET_EFFICIENCY)


# -- closed forms (uncontended, one bandwidth B and one latency alpha) ---------------------------


def ring_allreduce_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float) -> float:
    """``2(p-1)/p * N/B + 2(p-1) alpha`` (s)."""
    return 2 * (p - 1) / p * nbytes / bw_Bps + 2 * (p - 1) * alpha_s


def reduce_scatter_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float) -> float:
    """Ring reduce-scatter (and all-gather): ``(p-1)/p * N/B + (p-1) alpha`` (s)."""
    return (p - 1) / p * nbytes / bw_Bps + (p - 1) * alpha_s


all_gather_time = reduce_scatter_time


def alltoall_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float) -> float:
    """Alltoall where each rank's ``p - 1`` sends (``N/p`` each, all at once) share one
    link of ``B``, e.g. one NVSwitch node: ``(p-1)/p * N/B + alpha`` (s); 0 for one rank."""
    return (p - 1) / p * nbytes / bw_Bps + alpha_s if p > 1 else 0.0


def broadcast_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float) -> float:
    """Pipelined chain broadcast in the fluid limit: ``N/B + (p-1) alpha`` (s)."""
    return (nbytes / bw_Bps + (p - 1) * alpha_s) if p > 1 else 0.0


def tree_allreduce_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float) -> float:
    """Double binary tree allreduce: ``w(p)/2 * N/B + 2 floor(log2 p) alpha`` (s).

    Derivation: each tree carries ``N/2``; reduce (up) and broadcast (down) are pipelined,
    so every tree edge carries ``N/2`` in each direction at once. An interior rank with a
    parent and two children sends ``N/2`` up plus ``N/2`` to each child (3 x N/2) and,
    being a leaf of the other tree, another ``N/2``: the busiest link carries
    ``w(p) * N/2`` with ``w = 4`` for ``p >= 4`` (``w(3) = 3``, ``w(2) = 2``), i.e. the
    ``2N/B`` of the bandwidth-optimal bound. Latency: up then down the tree height.
    """
    if p <= 1:
        return 0.0
    w = 2 if p == 2 else 3 if p == 3 else 4
    return w / 2 * nbytes / bw_Bps + 2 * int(math.floor(math.log2(p))) * alpha_s


def nvls_allreduce_time(p: int, nbytes: float, bw_Bps: float, alpha_s: float,
                        efficiency: float = NCCL_NVLS_EFFICIENCY) -> float:
    """NVLS allreduce on one NVSwitch node: ``N / (efficiency B) + 2 alpha`` (s), for any
    ``p > 1`` (each GPU sends and receives ``N`` once; 0 for one rank). The nccl-tests
    busbw is unchanged: ``algbw * 2(p-1)/p``."""
    return nbytes / (efficiency * bw_Bps) + 2 * alpha_s if p > 1 else 0.0


def hierarchical_allreduce_time(nodes: int, gpus_per_node: int, nbytes: float,
                                intra_bw_Bps: float, intra_alpha_s: float,
                                rail_bw_Bps: float, inter_alpha_s: float) -> float:
    """Hierarchical allreduce with one chunk (stages in sequence), in seconds:
    ``2 [(g-1)/g N/B_intra + (g-1) a_intra] + 2(n-1)/n (N/g)/B_rail + 2(n-1) a_inter``.

    ``rail_bw_Bps`` is the NIC bandwidth one rail gets (``nic_bw * nics_per_node / g``).
    """
    g, n = gpus_per_node, nodes
    intra = ((g - 1) / g * nbytes / intra_bw_Bps + (g - 1) * intra_alpha_s) if g > 1 else 0.0
    inter = (2 * (n - 1) / n * nbytes / g / rail_bw_Bps + 2 * (n - 1) * inter_alpha_s
             if n > 1 else 0.0)
    return 2 * intra + inter
