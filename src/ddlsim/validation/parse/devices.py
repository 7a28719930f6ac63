"""GPU, training-framework and interconnect cells: the catalog device and GPU counts
(:func:`parse_gpu`), the framework (:func:`parse_framework`) and the node's links and NICs
(:func:`parse_interconnect`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ddlsim.sim import hardware
from ddlsim.validation.parse.text import cell_text, first, spaced


@dataclass(frozen=True)
class GpuParse:
    device: str | None
    family: str = ""
    form: str = ""
    memory_GB: int | None = None
    count: int | None = None
    per_node: int | None = None
    assumptions: tuple[str, ...] = ()


_GPU = (r"(?<![a-z0-9])(p100|p40|v100|a100|h100|h200|l4|l40s?|k80|t4|a10g?|gtx\s*\d+|"
        r"titan\s*(?:xp?|v|rtx)?|rtx\s*\d+|mi\d+x?)(?![a-z0-9])")
_MEM = {"p100": (16,), "p40": (24,), "v100": (16, 32), "a100": (40, 80), "h100": (80,),
        "h200": (141,), "l4": (24,)}
_INSTANCES = ((r"\bp3dn\b", "v100", 32), (r"\bp3\b", "v100", 16), (r"\bp4de\b", "a100", 80),
              (r"\bp4d\b", "a100", 40), (r"\bp5e", "h200", 141), (r"\bp5\b", "h100", 80),
              (r"\bnd40r?s v2\b", "v100", 32), (r"\bgn6e\b", "v100", 32),
              (r"\bgn6v\b", "v100", 16))
_PER_INSTANCE = {2: 1, 3: 1, 6: 2, 8: 4, 12: 4, 16: 8, 24: 8, 48: 8}


#: Words that make a parenthetical describe the links, not the GPU part ("H100 PCIe (NVLink
#: bridge)", "H100 SXM (NVSwitch)"); one naming a GPU ("(8*V100 with NVLink)") is kept.
_LINK_NOTE = (r"\b(?:nvlink|nvswitch|bridged?|infiniband|roce|ethernet|interconnect|"
              r"pci\s*-?e\s+switch(?:es)?)\b")


def _without_link_notes(t: str) -> str:
    """``t`` without its parentheticals about the interconnect (see :data:`_LINK_NOTE`)."""
    return re.sub(r"\(([^()]*)\)", lambda m: " " if re.search(_LINK_NOTE, m.group(1))
                  and not re.search(_GPU, m.group(1)) else m.group(0), t)


def parse_gpu(text: str) -> GpuParse | None:
    """GPU text -> catalog device (None for a GPU the catalog lacks), form, memory, count.

    ``memory_GB`` is the resolved part's memory (an assumption when not stated). ``count``
    is a total GPU count; a count said to be per node (or an instance type's) is ``per_node``.
    """
    raw = cell_text(text)
    t = raw.lower()
    notes: list[str] = []
    gm = re.search(_GPU, t)
    per_node = None
    if gm:
        fam = re.sub(r"\s+", " ", gm.group(1))
    else:
        sp = spaced(raw)
        inst = next((x for x in _INSTANCES if re.search(x[0], sp)), None)
        if inst is None:
            return None
        fam, imem = inst[1], inst[2]
        size = re.search(r"(\d+)xlarge", t)
        per_node = 8 if " nd40" in sp else _PER_INSTANCE.get(int(size.group(1))) if size else None
        notes.append(f"instance type taken as {per_node or '?'} x {fam.upper()} {imem} GB")
        t = f"{fam} {imem}gb {t}"
    part = _without_link_notes(t)  # what names the part: links in parentheses do not
    sxm3 = bool(re.search(r"sxm\s*3", part))
    form = ("pcie" if re.search(r"pci\s*-?e|\bpcie", part) or fam == "p40" else
            "sxm" if re.search(r"sxm|hgx|dgx|nvlink", part) else "")
    if form == "" and re.search(r"nvlink\s*-?\s*bridge", t):
        form = "pcie"
        notes.append("an NVLink bridge joins PCIe cards: the PCIe part assumed")
    stated = [int(x) for x in re.findall(r"(\d+)\s*gb\b", part)]
    mem = next((x for x in stated if x in _MEM.get(fam, ())), None)
    if stated and mem is None and fam in _MEM:
        notes.append(f"{stated[0]} GB is not a {fam.upper()} memory size (host memory?): ignored")
    cm = first([rf"(\d+)\s*[x×*]\s*(?:nvidia\s+|tesla\s+)?{re.escape(fam)}",
                 rf"{re.escape(fam)}\S*\s*[x×*]\s*(\d+)\b", rf"\b(\d+)\s+(?:nvidia\s+|tesla\s+)?"
                 rf"{re.escape(fam)}", r"\b(\d+)\s*gpus?\b"], t) if gm else None
    count = int(cm.group(1)) if cm else None
    pm = re.search(r"(\d+)\s*(?:gpus?\s*)?(?:/\s*|per\s+|each\s+|for\s+each\s+)(?:node|server|"
                   r"machine)", t)
    if cm and re.search(r"(?:each|per|/)\s*(?:node|server|machine)", t[cm.end():cm.end() + 40]):
        per_node, count = count, None
    elif pm:
        per_node = int(pm.group(1))
    device = None
    pcie = (hardware.resolve_device_name(f"{fam} pcie" + (f" {mem}gb" if mem else ""))
            if form == "pcie" and fam != "p40" and not re.search(r"\bnvl\b", part) else None)
    if pcie is not None:
        device = pcie
        if mem is None:
            mem = _MEM[fam][0]
            notes.append(f"memory size not stated: the {mem} GB PCIe part assumed")
    elif (form == "pcie" and fam != "p40") or re.search(r"\bnvl\b", part):
        notes.append(f"{fam.upper()} PCIe/NVL card is not in the device catalog")
    elif fam == "v100" and sxm3:
        device, mem = ("v100-sxm3-32gb", 32) if mem in (None, 32) else (None, mem)
        notes.append("V100-SXM3 (DGX-2) is not in the device catalog: taken as the SXM2 "
                     "32 GB part's rates")
    elif fam in _MEM:
        sizes = _MEM[fam]
        if mem is None:
            mem = sizes[0]
            if len(sizes) > 1 or fam in ("h100",):
                notes.append(f"memory size not stated: {mem} GB part assumed")
        if form == "" and fam in ("p100", "v100", "a100", "h100"):
            notes.append("form factor not stated: SXM part assumed")
        key = {"p100": "p100-sxm2-16gb", "p40": "p40", "v100": f"v100-sxm2-{mem}gb",
               "a100": f"a100-{mem}gb", "h100": "h100-sxm", "h200": "h200", "l4": "l4"}[fam]
        device = key if key in hardware.CATALOG else hardware.resolve_device_name(raw)
    else:
        notes.append(f"{fam.upper()} is not in the device catalog")
    return GpuParse(device, fam, form, mem, count, per_node, tuple(notes))


# --------------------------------------------------------------------------- frameworks
_FRAMEWORKS = (("caffe2", r"\bcaffe ?2\b"), ("mxnet", r"\bmxnet|\bkvstore|\bgluon\b"),
               ("tensorflow", r"tensorflow|tensorpack|\bkeras\b|\btf(?!32)\d*\b"),
               ("pytorch", r"pytorch|\btorch|\bddp\b|\bnemo\b|megatron|fastai|deepspeed|"
                           r"dataparallel"))


def parse_framework(*texts: str) -> str:
    """Training framework named in ``texts`` (the first named wins): ``pytorch``,
    ``mxnet``, ``tensorflow-xla`` (TensorFlow with XLA, or XLA alone), ``tensorflow``,
    ``caffe2``, or ``""``."""
    t = spaced(" ; ".join(cell_text(x) for x in texts)).replace("+", " ")
    hits = [(m.start(), name) for name, p in _FRAMEWORKS if (m := re.search(p, t))]
    name = min(hits)[1] if hits else ""
    if re.search(r"\bxla\b", t) and name in ("", "tensorflow"):
        return "tensorflow-xla"
    return name


# --------------------------------------------------------------------------- interconnects
@dataclass(frozen=True)
class InterconnectParse:
    system: str = ""
    intra: str = ""
    nvls: bool = False
    nics_per_node: int | None = None
    nic_Gbps: float | None = None
    fabric: str = ""
    assumptions: tuple[str, ...] = ()
    #: Why these links cannot be simulated honestly ("" when they can).
    reason: str = ""


#: NVLink bridges join PCIe cards two by two; no preset has such pairs.
BRIDGE_REASON = ("NVLink bridge (PCIe cards joined two by two) cannot be expressed: a cluster "
                 "preset has one intra-node link kind for all its GPUs (nvswitch | nvlink | "
                 "pcie) and the device catalog holds no bridge rate for PCIe cards (their "
                 "NVLink is 0, 'not modelled'); a PCIe or NVSwitch node would be a different "
                 "machine")

_SYSTEMS = (("dgx-a100", r" (?:dgx|hgx) a100 | selene "), ("dgx-h100", r" (?:dgx|hgx) h100 "),
            ("dgx-2", r" dgx 2h? | hgx 2 "), ("dgx-1", r" dgx 1 "), ("big-basin", r" big basin "))
_NIC_WORDS = r"\b(?:ib|infiniband|connectx|mellanox|hdr|ndr|edr|nics?|hcas?|roce|efa|ethernet)\b"
_IB_GEN = {"xdr": 800.0, "ndr": 400.0, "hdr": 200.0, "edr": 100.0, "fdr": 56.0, "qdr": 40.0}


def parse_interconnect(text: str) -> InterconnectParse:
    """Interconnect text -> system preset, intra-node link, NICs per node, NIC line rate,
    fabric (only what is stated; empty fields otherwise)."""
    raw = cell_text(text)
    t = raw.lower()
    sp = " " + re.sub(r"[^a-z0-9]+", " ", t).strip() + " "
    notes: list[str] = []
    found = sorted((m.start(), s) for s, p in _SYSTEMS if (m := re.search(p, sp)))
    system = found[0][1] if found else ""
    if len(found) > 1:
        notes.append(f"several systems named; the first, {system}, taken")
    if system and re.search(r" hgx ", sp):
        notes.append(f"HGX board taken as a {system} node")
    nvls = bool(re.search(r"\bnvls\b|nvlink\s*sharp", t))
    if re.search(r"nvswitch", t) or nvls:
        intra = "nvswitch"
    elif re.search(r"nvlink", t):
        intra = "nvlink"
    elif re.search(r"\bpci\s*-?e", t):
        intra = "pcie"
    elif system:
        intra = "nvlink" if system in ("dgx-1", "big-basin") else "nvswitch"
        notes.append(f"intra-node link not stated: {intra} of a {system} assumed")
    elif re.search(r"\bhgx\b", t):
        intra = "nvswitch"
        notes.append("HGX board taken as NVSwitch-connected")
    else:
        intra = ""
    nics = None
    for m in re.finditer(r"(?<![\w.])(\d+)\s*[x×*]\s*", t):
        window = re.split(r"[,;()]", t[m.end():m.end() + 40])[0]
        if re.search(_NIC_WORDS, window) and not re.search(_GPU, window):
            nics = int(m.group(1))
            break
    rate = re.search(r"(\d+(?:\.\d+)?)\s*(?:g|gb|gbit|gbits|gbe)(?:\s*/\s*s|ps)?(?![a-z/])",
                     raw.replace("GB", "\0"), re.I)
    nic_gbps = float(rate.group(1)) if rate else None
    if nic_gbps is None:
        gen = re.search(r"\b(xdr|ndr|hdr|edr|fdr|qdr)\b", t)
        nic_gbps = _IB_GEN[gen.group(1)] if gen else None
    fabric = ("ethernet" if re.search(r"ethernet|roce|\bgbe\b|\befa\b", t) else
              "infiniband" if re.search(r"\bib\b|infiniband|\b(?:xdr|ndr|hdr|edr|fdr)\b", t)
              else "")
    if fabric == "ethernet" and re.search(r"\befa\b", t) and "ethernet" not in t:
        notes.append("EFA taken as an Ethernet fabric")
    reason = BRIDGE_REASON if re.search(r"nvlink\s*-?\s*bridge", t) else ""
    return InterconnectParse(system, intra, nvls, nics, nic_gbps, fabric, tuple(notes), reason)
