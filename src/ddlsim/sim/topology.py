"""Cluster topology: what GPUs there are and which links connect them.

A cluster is ``nodes x gpus_per_node`` devices (a device *name* per GPU, mixed types
allowed; the device catalog lives in :mod:`ddlsim.sim.hardware`), joined by

* an intra-node fabric (``nvswitch``, ``nvlink`` or ``pcie``): every GPU has one
  transmit and one receive link of ``intra_bw_Bps`` to a non-blocking node switch;
* ``nics_per_node`` NICs per node (one per GPU, one per node, or anything dividing
  ``gpus_per_node``), each with a transmit and a receive link of ``nic_bw_Bps``;
* a two-level fat tree: ``nodes_per_leaf`` nodes hang off each leaf switch; each leaf
  has one aggregate up-link and one down-link to the spine of capacity
  ``nodes_per_leaf * nics_per_node * nic_bw_Bps / oversubscription``; the spine itself
  is non-blocking.

All links are directional (full duplex). Every quantity is SI: bandwidths in bytes/s,
latencies in seconds. Inter-node routes do not include the GPU's intra-node links (with
GPUDirect RDMA the GPU reaches its NIC over a PCIe switch that is not modelled).

Link numbering (stable, used by :class:`ddlsim.sim.network.Network`), with ``G`` GPUs,
``C`` NICs and ``L`` leaves::

    [0, G)            gpu{g}.tx       GPU -> node switch
    [G, 2G)           gpu{g}.rx       node switch -> GPU
    [2G, 2G+C)        nic{c}.tx       node -> leaf
    [2G+C, 2G+2C)     nic{c}.rx       leaf -> node
    [2G+2C, +L)       leaf{l}.up      leaf -> spine
    [2G+2C+L, +L)     leaf{l}.down    spine -> leaf

Presets are data (:data:`PRESETS`): every number carries its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.sim.cluster_presets import MORE_PRESETS
from ddlsim.units import US, GBps, Gbps

INTRA_KINDS = ("nvswitch", "nvlink", "pcie", "none")
FABRICS = ("infiniband", "ethernet")
LINK_KINDS = ("gpu_tx", "gpu_rx", "nic_tx", "nic_rx", "leaf_up", "leaf_down")


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster, validated on construction. Build with :func:`make_cluster`.

    Args:
        name: label (preset name or user's).
        nodes: number of nodes (>= 1).
        gpus_per_node: devices per node (>= 1).
        devices: device name per GPU, length ``nodes * gpus_per_node``, global GPU order
            (GPU ``g`` is on node ``g // gpus_per_node``).
        intra_link: ``nvswitch``, ``nvlink``, ``pcie`` or ``none`` (only with 1 GPU/node).
        intra_bw_Bps: per-GPU intra-node bandwidth, one direction, bytes/s.
        intra_latency_s: per-message latency of an intra-node hop, s.
        nics_per_node: NICs per node; must divide ``gpus_per_node``.
        nic_bw_Bps: per-NIC bandwidth, one direction, bytes/s.
        nic_latency_s: per-message latency of an inter-node hop excluding switches
            (NIC, host and protocol), s.
        fabric: ``infiniband`` or ``ethernet`` (a label; behaviour is the numbers).
        nodes_per_leaf: nodes under one leaf switch.
        oversubscription: leaf down-capacity / up-capacity ratio (>= 1; 1 = non-blocking).
        switch_latency_s: latency of one switch traversal, s.
        link_overrides: ``(link_id, bytes/s)`` pairs replacing single link capacities,
            e.g. ``(("nic3.tx", 1e9),)`` for a degraded NIC.
        source: where the numbers come from.
    """

    name: str
    nodes: int
    gpus_per_node: int
    devices: tuple[str, ...]
    intra_link: str
    intra_bw_Bps: float
    intra_latency_s: float
    nics_per_node: int
    nic_bw_Bps: float
    nic_latency_s: float
    fabric: str = "infiniband"
    nodes_per_leaf: int = 32
    oversubscription: float = 1.0
    switch_latency_s: float = 0.0
    link_overrides: tuple[tuple[str, float], ...] = ()
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("nodes", "gpus_per_node", "nics_per_node", "nodes_per_leaf"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        for name in ("intra_bw_Bps", "nic_bw_Bps"):
            _check_float(name, getattr(self, name), positive=True)
        for name in ("intra_latency_s", "nic_latency_s", "switch_latency_s"):
            _check_float(name, getattr(self, name), positive=False)
        _check_float("oversubscription", self.oversubscription, positive=True)
        if self.oversubscription < 1.0:
            raise ConfigError(f"oversubscription: must be >= 1, got {self.oversubscription!r}")
        if self.intra_link not in INTRA_KINDS:
            raise unknown_name("intra_link", self.intra_link, INTRA_KINDS, "kind")
        if self.intra_link == "none" and self.gpus_per_node != 1:
            raise ConfigError(f"intra_link: 'none' needs gpus_per_node == 1, "
                              f"got {self.gpus_per_node}")
        if self.fabric not in FABRICS:
            raise unknown_name("fabric", self.fabric, FABRICS, "kind")
        if self.gpus_per_node % self.nics_per_node:
            raise ConfigError(f"nics_per_node: must divide gpus_per_node={self.gpus_per_node}, "
                              f"got {self.nics_per_node}")
        if not isinstance(self.devices, tuple) or len(self.devices) != self.num_gpus:
            raise ConfigError(f"devices: must be a tuple of {self.num_gpus} device names "
                              f"(nodes x gpus_per_node), got {self.devices!r:.80}")
        for i, dev in enumerate(self.devices):
            if not isinstance(dev, str) or not dev:
                raise ConfigError(f"devices[{i}]: must be a non-empty string, got {dev!r}")
        ids = None
        for item in self.link_overrides:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ConfigError(f"link_overrides: items must be (link_id, bytes/s), got {item!r}")
            link_id, bw = item
            _check_float(f"link_overrides[{link_id!r}]", bw, positive=True)
            ids = ids if ids is not None else set(link_ids(self))
            if link_id not in ids:
                raise unknown_name("link_overrides", link_id, link_ids(self), "link")

    # -- derived sizes ------------------------------------------------------------------
    @property
    def num_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def num_nics(self) -> int:
        return self.nodes * self.nics_per_node

    @property
    def num_leaves(self) -> int:
        return -(-self.nodes // self.nodes_per_leaf)

    @property
    def num_links(self) -> int:
        return 2 * self.num_gpus + 2 * self.num_nics + 2 * self.num_leaves

    @property
    def leaf_uplink_Bps(self) -> float:
        """Capacity of one leaf's up-link (and down-link) to the spine, bytes/s."""
        return self.nodes_per_leaf * self.nics_per_node * self.nic_bw_Bps / self.oversubscription

    # -- placement ----------------------------------------------------------------------
    def node_of(self, gpu: int) -> int:
        return gpu // self.gpus_per_node

    def nic_of(self, gpu: int) -> int:
        """Global index of the NIC GPU ``gpu`` uses by default (its own, or its node's)."""
        local = gpu % self.gpus_per_node
        return (gpu // self.gpus_per_node) * self.nics_per_node + (
            local * self.nics_per_node // self.gpus_per_node)

    def leaf_of(self, node: int) -> int:
        return node // self.nodes_per_leaf


def _check_float(name: str, value: Any, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{name}: must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{name}: must be > 0, got {value!r}")
    if not positive and value < 0:
        raise ConfigError(f"{name}: must be >= 0, got {value!r}")


# -- links and routes -----------------------------------------------------------------------


def link_ids(spec: ClusterSpec) -> list[str]:
    """Stable string id of every link, in index order (see module docstring)."""
    g, c, n_leaf = spec.num_gpus, spec.num_nics, spec.num_leaves
    return ([f"gpu{i}.tx" for i in range(g)] + [f"gpu{i}.rx" for i in range(g)]
            + [f"nic{i}.tx" for i in range(c)] + [f"nic{i}.rx" for i in range(c)]
            + [f"leaf{i}.up" for i in range(n_leaf)] + [f"leaf{i}.down" for i in range(n_leaf)])


def link_table(spec: ClusterSpec) -> list[tuple[str, str, float, float]]:
    """``(id, kind, capacity_Bps, latency_s)`` per link, in index order.

    The latency stored on a link is informative (per traversal); routes compute their
    end-to-end latency with :func:`route`.
    """
    return list(zip(*link_columns(spec), strict=True))


def link_columns(spec: ClusterSpec) -> tuple[list[str], list[str], list[float], list[float]]:
    """:func:`link_table` as four lists: ids, kinds, capacities (B/s), latencies (s)."""
    g, c, n_leaf = spec.num_gpus, spec.num_nics, spec.num_leaves
    kinds = (["gpu_tx"] * g + ["gpu_rx"] * g + ["nic_tx"] * c + ["nic_rx"] * c
             + ["leaf_up"] * n_leaf + ["leaf_down"] * n_leaf)
    caps = ([spec.intra_bw_Bps] * (2 * g) + [spec.nic_bw_Bps] * (2 * c)
            + [spec.leaf_uplink_Bps] * (2 * n_leaf))
    lats = ([spec.intra_latency_s] * (2 * g) + [spec.nic_latency_s] * (2 * c)
            + [spec.switch_latency_s] * (2 * n_leaf))
    ids = link_ids(spec)
    if spec.link_overrides:
        index = {lid: i for i, lid in enumerate(ids)}
        for lid, bw in spec.link_overrides:
            caps[index[lid]] = float(bw)
    return ids, kinds, caps, lats


def route(spec: ClusterSpec, src: int, dst: int, channel: int | None = None
          ) -> tuple[list[int], float]:
    """Links (indices) and latency (s) of a message from GPU ``src`` to GPU ``dst``.

    ``channel`` picks NIC ``channel % nics_per_node`` on both ends for an inter-node
    message (NCCL-style rail per channel); ``None`` uses each GPU's own NIC.
    Same GPU: no links, no latency. Same node: ``gpu.tx, gpu.rx``. Different nodes:
    ``nic.tx, [leaf.up, leaf.down,] nic.rx`` with one switch (same leaf) or three.
    """
    n_gpu = spec.num_gpus
    if not (0 <= src < n_gpu and 0 <= dst < n_gpu):
        raise ConfigError(f"route: GPUs must be in [0, {n_gpu}), got {src} -> {dst}")
    if src == dst:
        return [], 0.0
    gpn = spec.gpus_per_node
    node_s, node_d = src // gpn, dst // gpn
    if node_s == node_d:
        return [src, n_gpu + dst], spec.intra_latency_s
    if channel is None:
        nic_s, nic_d = spec.nic_of(src), spec.nic_of(dst)
    else:
        k = channel % spec.nics_per_node
        nic_s, nic_d = node_s * spec.nics_per_node + k, node_d * spec.nics_per_node + k
    base = 2 * n_gpu
    links = [base + nic_s, base + spec.num_nics + nic_d]
    leaf_s, leaf_d = spec.leaf_of(node_s), spec.leaf_of(node_d)
    switches = 1
    if leaf_s != leaf_d:
        up = base + 2 * spec.num_nics
        links += [up + leaf_s, up + spec.num_leaves + leaf_d]
        switches = 3
    return links, spec.nic_latency_s + switches * spec.switch_latency_s


# -- presets (data, with sources) -------------------------------------------------------------

_NCCL_HWLAT = ("NCCL src/graph/tuning.cc hwLat table, NVLink Ring/Simple = 3.4 us per step")
_EST = "estimate (order of magnitude; no single published source) - override if known"

#: Preset name -> field -> (value, source). Values in SI units.
PRESETS: dict[str, dict[str, tuple[Any, str]]] = {
    "dgx-a100": {
        "device": ("a100-80gb", "NVIDIA DGX A100 datasheet: 8x A100 SXM4 80GB (640GB system); "
                               "hardware.CATALOG key"),
        "gpus_per_node": (8, "NVIDIA DGX A100 datasheet"),
        "intra_link": ("nvswitch", "NVIDIA DGX A100 datasheet: 6x NVSwitch"),
        "intra_bw_Bps": (300 * GBps, "NVIDIA A100 datasheet: NVLink3 600 GB/s bidirectional "
                                     "per GPU = 300 GB/s per direction"),
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT),
        "nics_per_node": (8, "NVIDIA DGX A100 user guide: 8x single-port ConnectX-6 "
                             "HDR 200 Gb/s for compute"),
        "nic_bw_Bps": (200 * Gbps, "InfiniBand HDR = 200 Gb/s per port"),
        "nic_latency_s": (5.0 * US, _EST),
        "fabric": ("infiniband", "NVIDIA DGX A100 user guide"),
        "nodes_per_leaf": (20, "NVIDIA DGX SuperPOD (A100) reference architecture: "
                               "scalable unit of 20 nodes, rail-optimized full fat tree"),
        "oversubscription": (1.0, "DGX SuperPOD reference architecture: non-blocking fabric"),
        "switch_latency_s": (0.13 * US, "NVIDIA QM8700 HDR switch: ~130 ns port-to-port "
                                        "(vendor brief; approximate)"),
    },
    "dgx-h100": {
        "device": ("h100-sxm", "NVIDIA DGX H100 datasheet: 8x H100 SXM5 80GB"),
        "gpus_per_node": (8, "NVIDIA DGX H100 datasheet"),
        "intra_link": ("nvswitch", "NVIDIA DGX H100 datasheet: 4x NVSwitch (NVLink4)"),
        "intra_bw_Bps": (450 * GBps, "NVIDIA H100 datasheet: NVLink4 900 GB/s bidirectional "
                                     "per GPU = 450 GB/s per direction (NVIDIA/nccl-tests "
                                     "issue #212, maintainer: 450 GB/s line rate)"),
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT),
        "nics_per_node": (8, "NVIDIA DGX H100 user guide: 8x single-port ConnectX-7 "
                             "NDR 400 Gb/s for compute (4x OSFP)"),
        "nic_bw_Bps": (400 * Gbps, "InfiniBand NDR = 400 Gb/s per port (NVIDIA/nccl-tests "
                                  "issue #290, NVIDIA staff: 46-48 GB/s busbw per NIC)"),
        "nic_latency_s": (5.0 * US, _EST),
        "fabric": ("infiniband", "NVIDIA DGX H100 user guide"),
        "nodes_per_leaf": (32, "NVIDIA DGX SuperPOD (H100) reference architecture: "
                               "scalable unit of 32 nodes, rail-optimized"),
        "oversubscription": (1.0, "DGX SuperPOD reference architecture: non-blocking fabric"),
        "switch_latency_s": (0.13 * US, "NVIDIA QM9700 NDR switch, ~100-200 ns port-to-port "
                                        "(approximate)"),
    },
    "pcie-8gpu": {
        "device": ("l4", "example: an 8x NVIDIA L4 (PCIe 4.0 x16 card) server; "
                        "hardware.CATALOG key"),
        "gpus_per_node": (8, "8 GPUs behind PCIe switches (typical 4U server)"),
        "intra_link": ("pcie", "PCIe 4.0 x16"),
        "intra_bw_Bps": (25 * GBps, "PCIe 4.0 x16: 16 GT/s x 16 lanes x 128/130 = 31.5 GB/s "
                                    "per direction raw; ~25 GB/s achievable (PCI-SIG spec; "
                                    "achievable fraction is an estimate)"),
        "intra_latency_s": (5.0 * US, _EST),
        "nics_per_node": (1, "one 100 GbE NIC per node"),
        "nic_bw_Bps": (100 * Gbps, "100 Gigabit Ethernet (IEEE 802.3)"),
        "nic_latency_s": (10.0 * US, _EST),
        "fabric": ("ethernet", "100 GbE"),
        "nodes_per_leaf": (32, _EST),
        "oversubscription": (1.0, "non-blocking assumed; override for oversubscribed fabrics"),
        "switch_latency_s": (0.5 * US, _EST),
    },
    "cloud-25gbe": {
        "device": ("v100-sxm2-16gb", "AWS EC2 P3 instances page: p3.16xlarge has 8x V100"),
        "gpus_per_node": (8, "AWS EC2 P3 instances page: p3.16xlarge"),
        "intra_link": ("nvlink", "AWS EC2 P3: NVLink2 hybrid cube mesh"),
        "intra_bw_Bps": (150 * GBps, "NVIDIA V100 datasheet: NVLink2 300 GB/s bidirectional "
                                     "per GPU = 150 GB/s per direction (cube mesh treated "
                                     "as a switch)"),
        "intra_latency_s": (3.4 * US, _NCCL_HWLAT),
        "nics_per_node": (1, "AWS EC2 P3 instances page: one network interface"),
        "nic_bw_Bps": (25 * Gbps, "AWS EC2 P3 instances page: p3.16xlarge 25 Gbps networking"),
        "nic_latency_s": (30.0 * US, _EST + " (TCP sockets in a cloud VPC)"),
        "fabric": ("ethernet", "AWS ENA"),
        "nodes_per_leaf": (32, _EST),
        "oversubscription": (1.0, "non-blocking assumed; override for oversubscribed fabrics"),
        "switch_latency_s": (1.0 * US, _EST),
    },
    "cpu-cluster": {
        "device": ("cpu-generic", "CPU nodes, one device per node; hardware.CATALOG key"),
        "gpus_per_node": (1, "one device (the CPU socket set) per node"),
        "intra_link": ("none", "single device per node"),
        "intra_bw_Bps": (10 * GBps, "unused with one device per node"),
        "intra_latency_s": (0.0, "unused with one device per node"),
        "nics_per_node": (1, "one 10 GbE NIC per node"),
        "nic_bw_Bps": (10 * Gbps, "10 Gigabit Ethernet (IEEE 802.3ae)"),
        "nic_latency_s": (30.0 * US, _EST + " (TCP sockets)"),
        "fabric": ("ethernet", "10 GbE"),
        "nodes_per_leaf": (48, "typical 48-port top-of-rack switch (estimate)"),
        "oversubscription": (1.0, "non-blocking assumed; override for oversubscribed fabrics"),
        "switch_latency_s": (1.0 * US, _EST),
    },
}

#: The systems rented today (DGX H200/B200, GB200 NVL72, MI300X, AWS p4d/p5/g6e).
PRESETS.update(MORE_PRESETS)


def preset_sources(preset: str) -> dict[str, str]:
    """Field -> source text of a preset (for reports)."""
    return {k: src for k, (_, src) in _preset(preset).items()}


def _preset(preset: str) -> dict[str, tuple[Any, str]]:
    if preset not in PRESETS:
        raise unknown_name("preset", preset, PRESETS, "cluster preset")
    return PRESETS[preset]


_FIELDS = tuple(f.name for f in fields(ClusterSpec))


def make_cluster(preset: str, nodes: int, gpus_per_node: int | None = None,
                 **overrides: Any) -> ClusterSpec:
    """Build a :class:`ClusterSpec` from a preset, ``nodes`` and optional overrides.

    Args:
        preset: one of :data:`PRESETS` (``dgx-a100``, ``dgx-h100``, ``pcie-8gpu``,
            ``cloud-25gbe``, ``cpu-cluster``).
        nodes: number of nodes.
        gpus_per_node: devices per node (default: the preset's). ``nics_per_node`` is
            clamped to ``gpus_per_node`` when not overridden.
        **overrides: any :class:`ClusterSpec` field (SI units), plus ``device`` (one
            name for every GPU); ``link_overrides`` may be a dict ``{link_id: bytes/s}``.
    """
    data = {k: v for k, (v, _) in _preset(preset).items()}
    for key in overrides:
        if key not in _FIELDS and key != "device":
            raise unknown_name(key, key, _FIELDS + ("device",), "cluster field")
    gpn = data["gpus_per_node"] if gpus_per_node is None else gpus_per_node
    data["gpus_per_node"] = gpn
    if isinstance(gpn, int) and gpn >= 1 and "nics_per_node" not in overrides:
        nics = min(data["nics_per_node"], gpn)
        while gpn % nics:
            nics -= 1
        data["nics_per_node"] = nics
    data.update(overrides)
    device = data.pop("device")
    if "devices" not in overrides:
        if not isinstance(nodes, int) or not isinstance(gpn, int):
            n = 0
        else:
            n = max(nodes, 0) * max(gpn, 0)
        data["devices"] = (device,) * n
    else:
        data["devices"] = tuple(data["devices"])
    lo = data.get("link_overrides", ())
    if isinstance(lo, dict):
        data["link_overrides"] = tuple((str(k), float(v)) for k, v in lo.items())
    data.setdefault("source", f"preset {preset!r} (see topology.PRESETS for per-field sources)")
    return ClusterSpec(name=data.pop("name", preset), nodes=nodes, **data)


def with_link_capacity(spec: ClusterSpec, link_id: str, bw_Bps: float) -> ClusterSpec:
    """A copy of ``spec`` with one link's capacity replaced (bytes/s)."""
    kept = tuple(item for item in spec.link_overrides if item[0] != link_id)
    return replace(spec, link_overrides=kept + ((link_id, float(bw_Bps)),))
