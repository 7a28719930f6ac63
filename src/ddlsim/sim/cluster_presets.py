"""Cluster presets of the systems people rent today (DGX H200/B200, GB200 NVL72, an 8x MI300X
platform, AWS p4d/p5/g6e) and of the V100/P100 systems of the DAWNBench era (AWS p3 and
p3dn, Azure ND40rs_v2, Alibaba gn6e, NVIDIA DGX-1), as data like
:data:`ddlsim.sim.topology.PRESETS` (which merges them): field -> (SI value, source).

How each maps onto the topology model (one port per GPU to a non-blocking node fabric, NICs
to a two-level fat tree):

* **gb200-nvl72**: the whole NVL72 rack is one "node" of 72 GPUs. Its NVLink Switch System
  is non-blocking (130 TB/s = 72 x 1.8 TB/s), which is exactly the model's node switch; the
  72 scale-out NICs (one 400 Gb/s CX7 per GPU) go to the fat tree, one "node" per rack.
* **mi300x-8**: Infinity Fabric is a full mesh, 7 links per GPU (one per peer, 64 GB/s each
  way). The model gives each GPU one port at the sum of its links (448 GB/s each way) into a
  non-blocking fabric: right for collectives that spread over all peers (rings, all-to-all),
  up to 7x optimistic for one point-to-point transfer, which really runs on one link (give
  ``intra_bw_Bps=64e9`` to bound pipeline sends). Kind ``nvlink`` (direct links, not a
  switch: no NVLS).
* **V100/P100 NVLink hybrid cube-mesh** (DGX-1, AWS p3, Azure NDv2, Alibaba gn6e): each GPU's
  NVLink links are summed into one port of the GPU's NVLink rate into a non-blocking node
  switch (as ``cloud-25gbe``): right for rings over all GPUs, optimistic for transfers
  between GPUs that share no link. A cloud instance's network is one NIC of the instance's
  stated rate.
* **aws-p5**: 32 EFA cards of 100 Gb/s are modelled as 8 NICs of 400 Gb/s, one per GPU (the
  model needs ``nics_per_node`` to divide ``gpus_per_node``); the aggregate is the same.
"""

from __future__ import annotations

from typing import Any

from ddlsim.units import US, GBps, Gbps

_NCCL_HWLAT = "NCCL src/graph/tuning.cc hwLat table, NVLink Ring/Simple = 3.4 us per step"
_EST = "estimate (order of magnitude; no single published source) - override if known"
_NDR = "InfiniBand NDR = 400 Gb/s per port"
_NDR_SWITCH = "NVIDIA QM9700 NDR switch, ~100-200 ns port-to-port (approximate)"
_NONBLOCKING = "DGX SuperPOD reference architecture: non-blocking fabric"
_DGX_HX00 = ("NVIDIA DGX H100/H200 User Guide (docs.nvidia.com/dgx/dgxh100-user-guide): the "
             "DGX H200 is the DGX H100 system with H200 GPUs")
_DGX_B200 = ("NVIDIA DGX B200 datasheet (nvidia.com/en-us/data-center/dgx-b200/, 2024), as "
             "summarised at brent-newsom-nvidia.github.io/AIPS-Boom/wiki/NVIDIA-DGX-B200")
_B200_MLPERF = ("MLPerf Inference v6.0 systems JSON nebius_b200_n1: 8x B200-SXM-180GB, '8x "
                "ConnectX-7 IB NDR 400Gb/s'")
_ND_GB200 = ("Microsoft Learn, ND GB200 v6 series (learn.microsoft.com/azure/"
             "virtual-machines/sizes/gpu-accelerated/nd-gb200-v6-series): 4 Blackwell GPUs "
             "and 4x 400 Gb/s Quantum-2 CX7 InfiniBand per VM; one NVL72 rack = 18 VMs, "
             "130 TB/s NVLink, 28.8 Tb/s scale-out (= 72 x 400 Gb/s)")
_BLACKWELL = ("NVIDIA Blackwell datasheet table (GB200 NVL72 column: 72 GPUs, 130 TB/s total "
              "NVLink bandwidth, 5th generation NVLink 1.8 TB/s per GPU)")
_ROCM_MI300 = ("AMD ROCm 'AMD Instinct MI300 series microarchitecture' page: 8 MI300X OAMs, "
               "each with seven Infinity Fabric links, fully connected")
_ND_MI300X = ("Microsoft Learn, ND MI300X v5 series (learn.microsoft.com/azure/"
              "virtual-machines/sizes/gpu-accelerated/ndmi300xv5-series), as quoted in "
              "Azure's AKS DRA example README: 8x MI300X, '8 x Mellanox ConnectX-7 VF, "
              "400 Gb/s InfiniBand each'")
_AWS_P4 = "AWS EC2 P4 instances page (aws.amazon.com/ec2/instance-types/p4/)"
_AWS_P5 = "AWS EC2 P5 instances page (aws.amazon.com/ec2/instance-types/p5/)"
_AWS_G6E = ("AWS EC2 G6e instances, as transcribed by github.com/tsaol/aws-gpu "
            "data/g6e_instances.js (instances.vantage.sh data, updated 2026-08-26)")
_EFA = "AWS Elastic Fabric Adapter (SRD over the AWS Ethernet fabric)"
_ULTRACLUSTER = ("AWS EC2 UltraClusters: non-blocking petabit-scale network (AWS P4/P5 "
                 "pages); non-blocking assumed")


def _fat_tree(nodes_per_leaf: tuple[int, str], switch: tuple[float, str], fabric: str,
              fabric_src: str, oversub_src: str) -> dict[str, tuple[Any, str]]:
    return {"fabric": (fabric, fabric_src), "nodes_per_leaf": nodes_per_leaf,
            "oversubscription": (1.0, oversub_src), "switch_latency_s": switch}


def _dgx(device: tuple[str, str], nvswitch: str, intra_bw: tuple[float, str],
         nics: str, leaf: str) -> dict[str, tuple[Any, str]]:
    return {
        "device": device,
        "gpus_per_node": (8, device[1]),
        "intra_link": ("nvswitch", nvswitch),
        "intra_bw_Bps": intra_bw,
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT),
        "nics_per_node": (8, nics),
        "nic_bw_Bps": (400 * Gbps, _NDR),
        "nic_latency_s": (5.0 * US, _EST),
        **_fat_tree((32, leaf), (0.13 * US, _NDR_SWITCH), "infiniband", nics, _NONBLOCKING),
    }


def _aws(device: tuple[str, str], intra: tuple[str, str], intra_bw: tuple[float, str],
         intra_lat: tuple[float, str], nics: tuple[int, str], nic_bw: tuple[float, str],
         fabric: str = _EFA) -> dict[str, tuple[Any, str]]:
    return {
        "device": device,
        "gpus_per_node": (8, device[1]),
        "intra_link": intra,
        "intra_bw_Bps": intra_bw,
        "intra_latency_s": intra_lat,
        "nics_per_node": nics,
        "nic_bw_Bps": nic_bw,
        "nic_latency_s": (15.0 * US, _EST + " (EFA, user-space RDMA-like transport)"),
        **_fat_tree((32, _EST), (1.0 * US, _EST), "ethernet", fabric, _ULTRACLUSTER),
    }


#: Preset name -> field -> (value, source); merged into ``topology.PRESETS``.
MORE_PRESETS: dict[str, dict[str, tuple[Any, str]]] = {
    "dgx-h200": _dgx(
        ("h200", f"NVIDIA DGX H200 datasheet: 8x H200 141GB (1,128 GB); {_DGX_HX00}"),
        nvswitch=f"NVIDIA DGX H200 datasheet: 4x NVSwitch (NVLink4); {_DGX_HX00}",
        intra_bw=(450 * GBps, "NVIDIA H200 datasheet: NVLink 900 GB/s per GPU, bidirectional "
                              "= 450 GB/s per direction"),
        nics=f"{_DGX_HX00}: 8x single-port ConnectX-7 400 Gb/s InfiniBand for compute "
             "(4x OSFP)",
        leaf="NVIDIA DGX SuperPOD (H100/H200) reference architecture: scalable unit of 32 "
             "nodes, rail-optimized"),
    "dgx-b200": _dgx(
        ("b200", f"{_DGX_B200}: 8x Blackwell GPUs, 1,440 GB HBM3e total"),
        nvswitch=f"{_DGX_B200}: 2x NVSwitch, 14.4 TB/s aggregate NVLink bandwidth",
        intra_bw=(900 * GBps, f"{_DGX_B200}: 14.4 TB/s / 8 GPUs = 1.8 TB/s per GPU "
                              "bidirectional = 900 GB/s per direction"),
        nics=f"{_DGX_B200}: 4x OSFP ports serving 8x single-port ConnectX-7 VPI, up to "
             f"400 Gb/s InfiniBand/Ethernet; {_B200_MLPERF}",
        leaf="NVIDIA DGX SuperPOD (B200) reference architecture: scalable unit of 32 DGX "
             "B200 nodes, rail-optimized"),
    "gb200-nvl72": {
        "device": ("gb200", f"{_BLACKWELL}; {_ND_GB200}"),
        "gpus_per_node": (72, f"{_BLACKWELL}: one NVLink domain of 72 GPUs, modelled as one "
                              "72-GPU node (a 'node' is a rack)"),
        "intra_link": ("nvswitch", f"{_BLACKWELL}: NVLink Switch System, non-blocking across "
                                   "the rack (130 TB/s = 72 x 1.8 TB/s)"),
        "intra_bw_Bps": (900 * GBps, f"{_BLACKWELL}: 1.8 TB/s per GPU bidirectional = "
                                     "900 GB/s per direction"),
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT + " (the NVLink-switch-tray hop is not "
                                                    "modelled separately)"),
        "nics_per_node": (72, f"{_ND_GB200}: one 400 Gb/s NIC per GPU"),
        "nic_bw_Bps": (400 * Gbps, _NDR),
        "nic_latency_s": (5.0 * US, _EST),
        **_fat_tree((8, "NVIDIA DGX SuperPOD (GB200) reference architecture: scalable unit "
                        "of 8 NVL72 racks (576 GPUs)"), (0.13 * US, _NDR_SWITCH),
                    "infiniband", _ND_GB200, _NONBLOCKING),
    },
    "mi300x-8": {
        "device": ("mi300x", f"{_ROCM_MI300}; {_ND_MI300X}"),
        "gpus_per_node": (8, _ROCM_MI300),
        "intra_link": ("nvlink", f"{_ROCM_MI300}: the full mesh is modelled as direct GPU "
                                 "links (no switch, no NVLS); see ddlsim.sim.cluster_presets"),
        "intra_bw_Bps": (448 * GBps, "AMD Instinct MI300X data sheet: 7 Infinity Fabric links "
                                     "x 128 GB/s bidirectional = 896 GB/s, / 2 = 448 GB/s per "
                                     "direction per GPU (sum over its 7 peers; one peer: "
                                     "64 GB/s)"),
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT + "; assumed for RCCL over Infinity Fabric "
                                                    "(no RCCL figure read)"),
        "nics_per_node": (8, _ND_MI300X),
        "nic_bw_Bps": (400 * Gbps, _ND_MI300X),
        "nic_latency_s": (5.0 * US, _EST),
        **_fat_tree((32, _EST), (0.13 * US, _NDR_SWITCH), "infiniband", _ND_MI300X,
                    "non-blocking assumed; override for oversubscribed fabrics"),
    },
    "aws-p4d": _aws(
        ("a100-40gb", f"{_AWS_P4}: p4d.24xlarge has 8x A100 40GB"),
        intra=("nvswitch", f"{_AWS_P4}: NVSwitch, 600 GB/s GPU peer-to-peer (NVLink3)"),
        intra_bw=(300 * GBps, "NVIDIA A100 datasheet: NVLink3 600 GB/s bidirectional per GPU "
                              "= 300 GB/s per direction"),
        intra_lat=(3.4 * US, _NCCL_HWLAT),
        nics=(4, f"{_AWS_P4}: 400 Gbps EFA as 4 network cards of 100 Gb/s (AWS EC2 User "
                 "Guide, network cards)"),
        nic_bw=(100 * Gbps, f"{_AWS_P4}: 4 x 100 Gb/s = 400 Gbps (AWS Capacity Blocks "
                            "table: p4d.24xlarge '400 Gigabit')")),
    "aws-p5": _aws(
        ("h100-sxm", f"{_AWS_P5}: p5.48xlarge has 8x H100 80GB"),
        intra=("nvswitch", f"{_AWS_P5}: NVSwitch, 900 GB/s GPU peer-to-peer (NVLink4)"),
        intra_bw=(450 * GBps, "NVIDIA H100 datasheet: NVLink4 900 GB/s bidirectional per GPU "
                              "= 450 GB/s per direction"),
        intra_lat=(3.4 * US, _NCCL_HWLAT),
        nics=(8, f"{_AWS_P5}: 3,200 Gbps EFAv2 over 32 network cards of 100 Gb/s, modelled "
                 "as 8 NICs of 400 Gb/s (one per GPU; same aggregate)"),
        nic_bw=(400 * Gbps, f"{_AWS_P5}: 3,200 Gbps / 8 = 400 Gb/s per modelled NIC (AWS "
                            "Capacity Blocks table: p5.48xlarge '3200 Gigabit')")),
    "aws-g6e": _aws(
        ("l40s", f"{_AWS_G6E}: g6e.48xlarge has 8x NVIDIA L40S 48 GB GDDR6"),
        intra=("pcie", "L40S is a PCIe Gen4 x16 card without NVLink (NVIDIA L40S datasheet)"),
        intra_bw=(25 * GBps, "PCIe 4.0 x16: 31.5 GB/s per direction raw, ~25 GB/s achievable "
                             "(as the pcie-8gpu preset; achievable fraction is an estimate)"),
        intra_lat=(5.0 * US, _EST),
        nics=(1, f"{_AWS_G6E}: g6e.48xlarge '400 Gigabit' networking, modelled as one NIC of "
                 "the instance's aggregate"),
        nic_bw=(400 * Gbps, f"{_AWS_G6E}: g6e.48xlarge '400 Gigabit'"),
        fabric="AWS VPC Ethernet networking (ENA; EFA where enabled)"),
}


# --------------------------------------------------------------------------- V100 / P100 era
_P3_BLOG = ("AWS News Blog 'New - Amazon EC2 Instances with Up to 8 NVIDIA Tesla V100 GPUs "
            "(P3)' (2017-10-25) instance table, as reproduced at infoq.cn/article/"
            "j629I8X512fg8tuKd6ke")
_P3_VANTAGE = ("github.com/tsaol/aws-gpu data/p3_instances.js (instances.vantage.sh data, "
               "updated 2026-08-26)")
_P3DN = ("github.com/tsaol/aws-gpu data/p3dn_instances.js (instances.vantage.sh data): "
         "p3dn.24xlarge has 8x NVIDIA V100 32 GB HBM2 and '100 Gigabit' networking; AWS EC2 "
         "instance types page (2019): 'EFA support on p3dn.24xlarge instances'")
_NDV2 = ("Microsoft Learn, NDv2-series (learn.microsoft.com/azure/virtual-machines/"
         "ndv2-series): 8x NVIDIA Tesla V100 NVLINK, 32 GB each; Standard_ND40rs_v2 (40 vCPUs, "
         "672 GB, 8 GPUs)")
_GN6E = ("Alibaba Cloud ECS documentation, GPU-accelerated compute-optimized instance "
         "families, gn6e: NVIDIA V100 (SXM2) 32 GB with NVLink, up to six links of 25 GB/s "
         "per direction; ecs.gn6e-c12g1.24xlarge: NVIDIA V100 x 8, 32 GB x 8, 32.0 Gbit/s")
_DGX1_P100 = ("NVIDIA DGX-1 System Architecture white paper (WP-08437-001): 8x Tesla P100 "
              "SXM2 16 GB in an NVLink hybrid cube-mesh (4 links per GPU, 20 GB/s per link "
              "per direction) and four Mellanox ConnectX-4 EDR 100 Gb/s InfiniBand NICs")
_DGX1_V100 = ("NVIDIA DGX-1 with Tesla V100 System Architecture white paper (WP-08437-002): "
              "8x Tesla V100 SXM2 in an NVLink hybrid cube-mesh and four 100 Gb InfiniBand "
              "NICs (16 GB GPUs at launch; a 32 GB DGX-1 followed in 2018)")
_V100_NVLINK = (150 * GBps, "NVIDIA V100 datasheet: NVLink2 300 GB/s bidirectional per GPU (6 "
                            "links x 25 GB/s per direction) = 150 GB/s per direction; the "
                            "hybrid cube-mesh treated as a switch")
_EDR = "InfiniBand EDR = 100 Gb/s per port"
_TCP_LAT = (30.0 * US, _EST + " (TCP sockets in a cloud VPC, as cloud-25gbe)")


def _v100_era(device: tuple[str, str], gpus: tuple[int, str], intra: tuple[str, str],
              intra_bw: tuple[float, str], nics: tuple[int, str], nic_bw: tuple[float, str],
              nic_lat: tuple[float, str], fabric: tuple[str, str],
              switch: tuple[float, str]) -> dict[str, tuple[Any, str]]:
    return {"device": device, "gpus_per_node": gpus, "intra_link": intra,
            "intra_bw_Bps": intra_bw, "intra_latency_s": (3.4 * US, _NCCL_HWLAT),
            "nics_per_node": nics, "nic_bw_Bps": nic_bw, "nic_latency_s": nic_lat,
            "fabric": fabric, "nodes_per_leaf": (32, _EST),
            "oversubscription": (1.0, "non-blocking assumed; override for oversubscribed "
                                      "fabrics"), "switch_latency_s": switch}


def _cloud_v100(device: str, gpus: int, src: str, intra: tuple[str, str],
                intra_bw: tuple[float, str], gbps: float, net_src: str,
                fabric: str = "AWS ENA (VPC Ethernet)") -> dict[str, tuple[Any, str]]:
    return _v100_era(
        (device, src), (gpus, src), intra, intra_bw,
        (1, f"{net_src}; the instance's network modelled as one NIC"),
        (gbps * Gbps, net_src), _TCP_LAT, ("ethernet", fabric), (1.0 * US, _EST))


#: The V100/P100 systems of the DAWNBench era (2017-2020).
V100_ERA_PRESETS: dict[str, dict[str, tuple[Any, str]]] = {
    "aws-p3-2xlarge": _cloud_v100(
        "v100-sxm2-16gb", 1, f"{_P3_BLOG}: p3.2xlarge has 1x V100, 16 GiB GPU memory",
        ("none", f"{_P3_BLOG}: p3.2xlarge NVLink 'N/A' (one GPU)"),
        (10 * GBps, "unused with one GPU per instance"), 10,
        f"{_P3_BLOG} and {_P3_VANTAGE}: p3.2xlarge 'up to 10 Gbps' (a burst rate)"),
    "aws-p3-8xlarge": _cloud_v100(
        "v100-sxm2-16gb", 4, f"{_P3_BLOG}: p3.8xlarge has 4x V100, 64 GiB GPU memory",
        ("nvlink", f"{_P3_BLOG}: NVLink 2.0 on p3.8xlarge"),
        (100 * GBps, f"{_P3_BLOG}: p3.8xlarge NVLink 200 GBps per GPU bidirectional (4 of "
                     "the V100's 6 links inside the 4-GPU instance; p3.16xlarge: 300 GBps = "
                     "all 6) = 100 GB/s per direction"), 10,
        f"{_P3_BLOG} and {_P3_VANTAGE}: p3.8xlarge '10 Gbps'"),
    "aws-p3-16xlarge": _cloud_v100(
        "v100-sxm2-16gb", 8, f"{_P3_BLOG}: p3.16xlarge has 8x V100, 128 GiB GPU memory",
        ("nvlink", f"{_P3_BLOG}: NVLink 2.0 hybrid cube-mesh, 300 GBps per GPU"),
        _V100_NVLINK, 25, f"{_P3_BLOG} and {_P3_VANTAGE}: p3.16xlarge '25 Gbps'"),
    "aws-p3dn-24xlarge": _cloud_v100(
        "v100-sxm2-32gb", 8, _P3DN, ("nvlink", f"{_P3DN}; NVLink as the p3.16xlarge"),
        _V100_NVLINK, 100, _P3DN, fabric=_EFA),
    "azure-nd40rs-v2": _v100_era(
        ("v100-sxm2-32gb", _NDV2), (8, _NDV2), ("nvlink", _NDV2), _V100_NVLINK,
        (1, f"{_NDV2}: one 100 Gigabit EDR InfiniBand back-end network per VM (NCCL2 "
            "supported)"), (100 * Gbps, f"{_NDV2}: 100 Gigabit EDR InfiniBand"),
        (5.0 * US, _EST), ("infiniband", _NDV2),
        (0.13 * US, "EDR InfiniBand switch, ~100-200 ns port-to-port (approximate)")),
    "alibaba-gn6e-24xlarge": _cloud_v100(
        "v100-sxm2-32gb", 8, _GN6E, ("nvlink", _GN6E), _V100_NVLINK, 32, _GN6E,
        fabric="Alibaba Cloud VPC Ethernet"),
    "dgx-1-p100": _v100_era(
        ("p100-sxm2-16gb", _DGX1_P100), (8, _DGX1_P100), ("nvlink", _DGX1_P100),
        (80 * GBps, f"{_DGX1_P100}: 4 x 20 GB/s = 80 GB/s per direction per GPU; the "
                    "cube-mesh treated as a switch"),
        (4, _DGX1_P100), (100 * Gbps, _EDR), (5.0 * US, _EST), ("infiniband", _DGX1_P100),
        (0.13 * US, "EDR InfiniBand switch, ~100-200 ns port-to-port (approximate)")),
    "dgx-1-v100": _v100_era(
        ("v100-sxm2-16gb", _DGX1_V100), (8, _DGX1_V100), ("nvlink", _DGX1_V100),
        _V100_NVLINK, (4, _DGX1_V100), (100 * Gbps, _EDR), (5.0 * US, _EST),
        ("infiniband", _DGX1_V100),
        (0.13 * US, "EDR InfiniBand switch, ~100-200 ns port-to-port (approximate)")),
}
MORE_PRESETS.update(V100_ERA_PRESETS)

_GAUDI_NET = ("Intel Gaudi documentation 'Intel Gaudi Network Configuration' "
              "(docs.habana.ai/en/latest/Management_and_Monitoring/Network_Configuration/)")
_GAUDI_LEAF = ("Intel's reference sub-cluster of 16 nodes under 3 leaf switches, half the "
               "ports down (The Next Platform, 2024-04-09, quoting Intel)")


def _gaudi(device: str, box: str, intra_GBps: float, port_Gbps: int) -> dict:
    """An 8-card Gaudi server: 21 of each card's 24 on-chip RoCE ports join the other 7
    cards all-to-all (3 per peer; modelled as direct links summed over the peers, exact for
    collectives over all 8, up to 7x optimistic for one peer-to-peer transfer, as for
    mi300x-8), the other 3 ports scale out as one NIC per card."""
    return {
        "device": (device, _GAUDI_NET),
        "gpus_per_node": (8, f"{_GAUDI_NET}: seven other accelerators inside one {box} box"),
        "intra_link": ("nvlink", f"{_GAUDI_NET}: direct RoCE links between the cards, no "
                                 "switch; the all-to-all is modelled as direct GPU links"),
        "intra_bw_Bps": (intra_GBps * GBps, f"{_GAUDI_NET}: 21 x {port_Gbps} Gbps = "
                                            f"{intra_GBps:g} GB/s unidirectional per card"),
        "intra_latency_s": (5.0 * US, _EST),
        "nics_per_node": (8, f"{_GAUDI_NET}: 3 scale-out ports per card"),
        "nic_bw_Bps": (3 * port_Gbps * Gbps, f"{_GAUDI_NET}: 3 x {port_Gbps} Gbps per card"),
        "nic_latency_s": (5.0 * US, _EST),
        **_fat_tree((16, _GAUDI_LEAF), (1.0 * US, _EST), "ethernet", _GAUDI_NET,
                    "non-blocking (half the leaf ports down) per " + _GAUDI_LEAF),
    }


MORE_PRESETS.update({"gaudi2-hls2": _gaudi("gaudi2", "HLS-2", 262.5, 100),
                     "gaudi3-hls3": _gaudi("gaudi3", "HLS-3", 525.0, 200)})
