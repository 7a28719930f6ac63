"""The cluster of a reference row: the cloud instance or system it names (a cluster preset,
:mod:`ddlsim.sim.cluster_presets`), else the nodes, links and NICs its cells state, with
every guess recorded."""

from __future__ import annotations

import math

from ddlsim.api.calibration import device_family
from ddlsim.job import Cluster
from ddlsim.validation import parse as P

#: GBps per Gb/s.
_GBIT = 1e9 / 8.0


def whole_number(value: object) -> int | None:
    """A table cell as a whole number >= 1 (``"8"``, ``"8.0"``), None otherwise."""
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if math.isfinite(f) and f == int(f) and f >= 1 else None


#: 8-GPU SXM boards of these families are HGX baseboards with NVSwitch (NVIDIA HGX A100 /
#: H100 / H200 datasheets), whose topology the DGX presets describe.
_HGX = {"a100": "dgx-a100", "h100": "dgx-h100", "h200": "dgx-h100"}


def cluster_of(row, device: str, gpus: int, ic: P.InterconnectParse, notes: list[str],
               sp: P.SystemParse | None = None) -> tuple[Cluster | None, str]:
    """The cluster a row ran on (from the named instance or system, else from the nodes,
    links and NICs its cells state) or (None, the reason); guesses go to ``notes``."""
    nodes = whole_number(row.get("nodes")) or (sp.nodes if sp and sp.gpus == gpus else None)
    if sp is not None and sp.preset:
        return _preset_cluster(device, gpus, nodes, ic, sp)
    if gpus == 1:
        return Cluster("dgx-a100", 1, device=device, gpus_per_node=1), ""
    if nodes is None:
        nodes = 1 if ic.system in ("", "dgx-1", "dgx-2") and gpus <= 8 else None
        if nodes is None:
            return None, "nodes not stated"
        notes.append("nodes not stated: one node assumed")
    if gpus % nodes:
        return None, f"{gpus} GPUs do not fill {nodes} nodes evenly"
    gpn = gpus // nodes
    nic = {}
    if ic.nics_per_node:
        nic["nics_per_node"] = ic.nics_per_node
    if ic.nic_Gbps:
        nic["nic_bw_Bps"] = ic.nic_Gbps * _GBIT
    if ic.fabric:
        nic["fabric"] = ic.fabric
    if ic.system in ("dgx-a100", "dgx-h100"):
        return Cluster(ic.system, gpus, device=device, gpus_per_node=gpn, **nic), ""
    hgx = _HGX.get(device_family(device))
    if hgx and gpn == 8 and ic.intra in ("", "nvlink", "nvswitch") and ic.system == "":
        notes.append(f"8 SXM GPUs per node: an HGX board with NVSwitch ({hgx} topology) "
                     "assumed")
        return Cluster(hgx, gpus, device=device, gpus_per_node=gpn, **nic), ""
    cube = _DGX_OF.get(device_family(device)) if device_family(device) in ("p100", "v100") \
        else None
    if cube and gpn == 8 and not ic.intra and not ic.system and (
            nodes == 1 or "nic_bw_Bps" in nic):
        notes.append(f"8 SXM2 GPUs per node, links not stated: the DGX-1's NVLink hybrid "
                     f"cube-mesh ({cube} preset) assumed")
        return Cluster(cube, gpus, device=device, gpus_per_node=gpn, **nic), ""
    if gpn == 1 and not ic.intra:
        ic_intra = "none"
        if "nic_bw_Bps" not in nic:
            return None, f"{nodes} nodes: the inter-node network is not stated"
        return Cluster("dgx-a100", gpus, device=device, gpus_per_node=1, intra_link=ic_intra,
                       nics_per_node=1, **{k: v for k, v in nic.items()
                                           if k != "nics_per_node"}), ""
    intra = ic.intra or {"dgx-1": "nvlink", "dgx-2": "nvswitch", "big-basin": "nvlink"}.get(
        ic.system, "")
    if not intra:
        return None, f"interconnect {row.get('interconnect', '')!r} not understood"
    if nodes > 1 and "nic_bw_Bps" not in nic and ic.fabric == "infiniband":
        rate = _ib_of_generation(device, notes)
        nic.update({"nic_bw_Bps": rate} if rate else {})
    if nodes > 1 and "nic_bw_Bps" not in nic:
        return None, f"{nodes} nodes: the inter-node network is not stated"
    if nodes > 1 and "nics_per_node" not in nic:
        nic["nics_per_node"] = 1
        notes.append("NICs per node not stated: one assumed")
    preset = "pcie-8gpu" if intra == "pcie" else "dgx-a100"
    return Cluster(preset, gpus, device=device, gpus_per_node=gpn, intra_link=intra, **nic), ""


#: The DGX system of each GPU generation, whose InfiniBand rate stands in for an unstated one.
_DGX_OF = {"p100": "dgx-1-p100", "v100": "dgx-1-v100", "a100": "dgx-a100", "h100": "dgx-h100",
           "h200": "dgx-h200", "b200": "dgx-b200"}


def _ib_of_generation(device: str, notes: list[str]) -> float | None:
    """Bytes/s of the InfiniBand of the device generation's DGX (None: no DGX known)."""
    from ddlsim.sim.topology import PRESETS

    dgx = _DGX_OF.get(device_family(device).split("-")[0])
    if dgx is None:
        return None
    rate = PRESETS[dgx]["nic_bw_Bps"][0]
    notes.append(f"InfiniBand rate not stated: {rate * 8 / 1e9:g} Gb/s, the rate of the "
                 f"{dgx} preset (the GPU generation's DGX), assumed")
    return rate


def _preset_cluster(device: str, gpus: int, nodes: int | None, ic: P.InterconnectParse,
                    sp: P.SystemParse) -> tuple[Cluster | None, str]:
    """The named instance's or system's preset, ``nodes`` of it (None: as many as the GPUs
    fill); links or NICs the row states override the preset's."""
    from ddlsim.sim.topology import PRESETS

    per = sp.per_node or int(PRESETS[sp.preset]["gpus_per_node"][0])
    nodes = nodes or max(1, -(-gpus // per))
    if gpus % nodes or gpus // nodes > per or (nodes > 1 and gpus // nodes != per):
        return None, f"{gpus} GPUs do not fill {nodes} {sp.name} instances of {per} GPUs"
    nic = {k: v for k, v in (("nics_per_node", ic.nics_per_node),
                             ("nic_bw_Bps", ic.nic_Gbps * _GBIT if ic.nic_Gbps else None),
                             ("fabric", ic.fabric)) if v}
    dev = None if device == PRESETS[sp.preset]["device"][0] else device
    return Cluster(sp.preset, gpus, device=dev, gpus_per_node=gpus // nodes, **nic), ""
