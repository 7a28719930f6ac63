"""Cloud instances and named systems in GPU cells, and the GPU count a cell states in any of
its spellings (:func:`parse_system`).

A table names its GPUs as a count of devices (``"8 * V100"``, ``"Tesla V100 * 8 GPU"``), a
count of instances (``"16 p3.16xlarge"``, ``"16 ecs.gn6e-c12g1.24xlarge"``), both
(``"32 * V100 (4 machines - AWS p3.16xlarge)"``), nodes with their GPUs
(``"16 nodes with InfiniBand (8*V100 with NVLink for each node)"``) or an instance or
system alone (``"Azure ND40s_v2"``: one instance). The instances and systems are the
cluster presets of :mod:`ddlsim.sim.cluster_presets`, whose sources give their GPU count,
GPU type, NVLink and network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ddlsim.validation.parse.devices import GpuParse, parse_gpu
from ddlsim.validation.parse.text import cell_text, spaced

#: Instance spelling (on :func:`~ddlsim.validation.parse.text.spaced` text) -> (preset,
#: display name). Longest spellings first.
INSTANCES = (
    (r"p3dn 24xlarge", "aws-p3dn-24xlarge", "AWS p3dn.24xlarge"),
    (r"p3 16xlarge", "aws-p3-16xlarge", "AWS p3.16xlarge"),
    (r"p3 8xlarge", "aws-p3-8xlarge", "AWS p3.8xlarge"),
    (r"p3 2xlarge", "aws-p3-2xlarge", "AWS p3.2xlarge"),
    (r"p4d 24xlarge", "aws-p4d", "AWS p4d.24xlarge"),
    (r"p5 48xlarge", "aws-p5", "AWS p5.48xlarge"),
    (r"g6e 48xlarge", "aws-g6e", "AWS g6e.48xlarge"),
    (r"(?:standard )?nd40r?s v2", "azure-nd40rs-v2", "Azure ND40rs_v2"),
    (r"(?:ecs )?gn6e c12g1 24xlarge", "alibaba-gn6e-24xlarge", "Alibaba ecs.gn6e-c12g1.24xlarge"),
)
#: An instance family named without a size we have a preset for.
_FAMILY = r"(?<![a-z0-9])(p3dn|p3|p4de|p4d|p5e?n?|p2|g4dn|g5|gn6[eiv]|gn5i?|nd\d+\w*)(?= |$)"
#: Named systems: spelling -> {GPU family: preset}.
SYSTEMS = ((r"(?<![a-z0-9])dgx ?1(?![0-9])", "NVIDIA DGX-1",
            {"p100": "dgx-1-p100", "v100": "dgx-1-v100"}),)
_NODE_WORDS = r"(?:nodes?|machines?|servers?|instances?|hosts?|vms?|boxes)"
_SUPERSEDED = ("instance type taken as", "memory size not stated", "form factor not stated")


@dataclass(frozen=True)
class SystemParse:
    """``gpu``: the cell's device parse (its device the instance's when one is named);
    ``preset``: the cluster preset of the named instance or system (``""``: none);
    ``gpus``: total GPUs, ``nodes``: instances or nodes, ``per_node``: GPUs of each
    (None where the cell does not say); ``reason``: why the count cannot be read (the
    cell is ambiguous or contradicts itself; ``""`` otherwise)."""

    gpu: GpuParse | None
    preset: str = ""
    name: str = ""
    gpus: int | None = None
    nodes: int | None = None
    per_node: int | None = None
    reason: str = ""
    assumptions: tuple[str, ...] = ()
    conflict: bool = False  # the reason is a contradiction, not a missing count


def _named(sp: str) -> tuple[str, str, re.Match[str]] | None:
    for pattern, preset, name in INSTANCES:
        m = re.search(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", sp)
        if m:
            return preset, name, m
    return None


def _count_before(sp: str, start: int) -> int | None:
    """A count written just before the instance name: ``16 p3...``, ``16 x AWS p3...``."""
    m = re.search(r"(?<![\w.])(\d+)\s*(?:[x×*]\s*)?(?:(?:aws|azure|alibaba\w*|ecs|nvidia)\s+)*$",
                  sp[:start])
    return int(m.group(1)) if m else None


def _nodes(t: str) -> int | None:
    m = re.search(rf"(?<![\w.])(\d+)\s*(?:[x×*]\s*)?{_NODE_WORDS}\b", t)
    if m:
        return int(m.group(1))
    return 1 if re.search(rf"\bsingle\b|\bone\s+(?:\w+\s+)?{_NODE_WORDS}\b", t) else None


def _preset_facts(preset: str) -> tuple[str, int]:
    from ddlsim.sim.topology import PRESETS

    return PRESETS[preset]["device"][0], int(PRESETS[preset]["gpus_per_node"][0])


def parse_system(gpu_text: str, interconnect_text: str = "") -> SystemParse:
    """GPU cell (and the interconnect cell, for a named system) -> :class:`SystemParse`."""
    gp = parse_gpu(gpu_text)
    raw = cell_text(gpu_text)
    t, sp = raw.lower(), spaced(raw)
    both = spaced(f"{raw} ; {cell_text(interconnect_text)}")
    inst = _named(sp) or _named(both)
    preset, name, k = "", "", None
    if inst:
        preset, name, m = inst
        k = _count_before(sp, m.start()) if _named(sp) else None
    else:
        fam = gp.family if gp else ""
        for pattern, label, by_family in SYSTEMS:
            sm = re.search(pattern, both)
            if sm and fam in by_family:
                preset, name = by_family[fam], label
                k = _count_before(both, sm.start()) if re.search(pattern, sp) else None
                break
    nodes = _nodes(t) if k is None else k
    stated = gp.count if gp else None
    if not preset:
        fm = re.search(_FAMILY, sp)
        if fm and stated is None and not (gp and gp.per_node and nodes):
            return SystemParse(gp, reason=f"instance {raw.strip()!r}: its size (and so its "
                                          "GPU count) is not one of the cluster presets")
        return _generic(gp, nodes, stated)
    device, per = _preset_facts(preset)
    fam = gp.family if gp else ""
    if fam and not device.startswith(fam.replace(" ", "")):
        return SystemParse(gp, preset, name, reason=(
            f"GPU {fam.upper()} named, but the {name} has {device}"), conflict=True)
    guessed = gp is None or any(a.startswith(_SUPERSEDED) and "memory" in a or
                                a.startswith("instance type") for a in gp.assumptions)
    if gp and gp.device and gp.device != device and not guessed:
        if not preset.startswith("dgx-1"):
            return SystemParse(gp, preset, name, reason=(
                f"{gp.device} named, but the {name} has {device}"), conflict=True)
        device = gp.device  # the DGX-1 came with 16 GB and (from 2018) 32 GB V100s
    if k is not None and stated is not None and k * per != stated:
        return SystemParse(gp, preset, name, reason=(
            f"{stated} GPUs stated, but {k} x {name} hold {k * per}: ambiguous count"))
    if nodes is not None and stated is not None and nodes * per != stated:
        return SystemParse(gp, preset, name, reason=(
            f"{stated} GPUs on {nodes} machines do not fill {name} instances of {per}"))
    notes = [f"{name}: {per} x {device} per instance (cluster preset {preset})"]
    if nodes is None and stated is not None:
        if stated % per and stated > per:
            return SystemParse(gp, preset, name, reason=(
                f"{stated} GPUs do not fill {name} instances of {per} GPUs evenly"))
        nodes = max(1, stated // per)
    if nodes is None:
        nodes = 1
        notes.append(f"{name} named without a count: one instance assumed")
    gpus = stated if stated is not None and stated < per else nodes * per
    kept = tuple(a for a in (gp.assumptions if gp else ()) if not a.startswith(_SUPERSEDED))
    gpu = replace(gp or GpuParse(device), device=device, count=gpus, per_node=per,
                  assumptions=kept)
    return SystemParse(gpu, preset, name, gpus, nodes, per, "", tuple(notes))


def _generic(gp: GpuParse | None, nodes: int | None, stated: int | None) -> SystemParse:
    """No instance or system named: the GPU count, or nodes x GPUs per node."""
    per = gp.per_node if gp else None
    if per and nodes:
        return SystemParse(gp, gpus=per * nodes, nodes=nodes, per_node=per)
    if stated is not None:
        if nodes and stated % nodes:
            return SystemParse(gp, reason=f"{stated} GPUs do not fill {nodes} nodes evenly")
        return SystemParse(gp, gpus=stated, nodes=nodes,
                           per_node=stated // nodes if nodes else None)
    if per:
        return SystemParse(gp, per_node=per, reason=(
            f"{per} GPUs per node stated, but not the number of nodes"))
    if nodes:
        return SystemParse(gp, nodes=nodes, reason=(
            f"{nodes} nodes stated, but not the GPUs of each"))
    return SystemParse(gp)
