"""Model cells: the workload-zoo key a model name denotes, its family, size and the
dimensions stated next to it (:func:`parse_model`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ddlsim.sim import workloads
from ddlsim.validation.parse.text import cell_text


@dataclass(frozen=True)
class ModelParse:
    zoo: str | None
    arch: dict[str, int] = field(default_factory=dict)
    family: str = ""
    params_b: float | None = None
    seq: int | None = None
    assumptions: tuple[str, ...] = ()


_FAMILIES = {"gpt": "gpt", "megatron": "gpt", "llama": "llama", "nemotron": "llama",
             "mistral": "llama", "mixtral": "llama", "bert": "bert", "roberta": "bert",
             "resnet": "cnn", "vgg": "cnn", "alexnet": "cnn", "lenet": "cnn",
             "inception": "cnn", "amoebanet": "cnn", "unet": "cnn", "cnn": "cnn"}
_NAME = re.compile(r"(?<![a-z])(?P<fam>[a-z]+)(?:[\s_-]*lm)?"
                   r"(?:[\s_-]*(?P<ver>\d+(?:\.\d+)?)(?![\d.]*\s*[bmt]\b))?"
                   r"(?:[\s_-]*v\d+(?:\.\d+)?)?"
                   r"(?:[\s_-]*(?P<size>\d+(?:\.\d+)?\s*[bmt]|large|base|small|medium|xl)\b)?")
_SIZE_WORDS = {("gpt", "xl"): 1.3}  # Brown et al. 2020 Table 2.1: GPT-3 XL is 1.3B


def _size(fam: str, size: str | None) -> float | str | None:
    if not size:
        return None
    if (fam, size) in _SIZE_WORDS:
        return _SIZE_WORDS[(fam, size)]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bmt])", size)
    if not m:
        return size
    return round(float(m.group(1)) * {"b": 1.0, "m": 1e-3, "t": 1e3}[m.group(2)], 6)


def _name_parts(text: str) -> tuple[str, str | None, float | str | None] | None:
    m = _NAME.fullmatch(text)
    return (m["fam"], m["ver"], _size(m["fam"], m["size"])) if m else None


_ZOO = {k: p for k in workloads.WORKLOADS if (p := _name_parts(k.lower()))}
#: (family, version, data set) -> zoo key, for the networks built for one data set's images
#: (``resnet9-cifar``: the CIFAR ResNet-9, not an ImageNet network).
_DATASET_ZOO = {(m[1], m[2], m[3]): k for k in workloads.WORKLOADS
                if (m := re.fullmatch(r"([a-z]+)(\d+)-(cifar)", k))}

_ARCH: list[tuple[str, str]] = []  # (key, pattern), most specific first
for _key, _words, _letter, _plural in (
        ("ffn", r"ffn[\s_-]*hidden[\s_-]*size|ffn[\s_-]*(?:hidden|size|dim)|ffn|"
                r"intermediate[\s_-]*size|d[\s_-]*ff", "", ""),
        ("kv_heads", r"num[\s_-]*query[\s_-]*groups|query[\s_-]*groups|(?:num|n)[\s_-]*kv[\s_-]*"
                     r"heads|num[\s_-]*key[\s_-]*value[\s_-]*heads|kv[\s_-]*(?:heads|groups)|"
                     r"gqa|kv", "", r"query[\s_-]*groups|kv[\s_-]*(?:heads|groups)"),
        ("heads", r"num[\s_-]*attention[\s_-]*heads|attention[\s_-]*heads|(?:num|n)[\s_-]*"
                  r"heads?|heads?", "A", r"(?:attention[\s_-]*)?heads"),
        ("layers", r"num[\s_-]*layers|n[\s_-]*layers?|layers?", "[lL]",
                   r"(?:transformer[\s_-]*)?layers"),
        ("hidden", r"hidden[\s_-]*(?:size|dim)|d[\s_-]*model|model[\s_-]*dim|hidden", "[hH]", ""),
        ("seq", r"max[\s_-]*seq[\s_-]*len|seq(?:uence)?[\s_-]*len(?:gth)?|seqlen|"
                r"context[\s_-]*length|sequence|seq", "", ""),
        ("vocab", r"padded[\s_-]*vocab[\s_-]*size|vocab(?:ulary)?[\s_-]*size|vocab(?:ulary)?",
                  "V", "")):
    _VAL = r"(\d+(?:,\d{3})*)(?![\d.]*\d)(\s*k\b)?"
    _ARCH.append((_key, rf"(?i:(?<![\w/*.])(?:{_words}))(?:\s*[=:]\s*|\s+|(?=\d)){_VAL}"))
    if _letter:
        _ARCH.append((_key, rf"(?<![\w/*.^]){_letter}\s*=\s*{_VAL}"))
    if _plural:
        _ARCH.append((_key, rf"(?<![\w.,])(\d+)()\s*(?i:{_plural})\b"))


def _arch(texts: tuple[str, ...], notes: list[str]) -> dict[str, int]:
    found: dict[str, list[int]] = {}
    for text in texts:
        for key, pattern in _ARCH:
            for m in re.finditer(pattern, text):
                value = int(m.group(1).replace(",", ""))
                text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
                if m.group(2) and key == "seq":
                    value *= 1024
                    notes.append(f"seq {m.group(0).strip()!r} taken as {value} (k = 1024)")
                elif m.group(2):
                    notes.append(f"{key} {m.group(0).strip()!r} is not exact: ignored")
                    continue
                found.setdefault(key, [])
                if value not in found[key]:
                    found[key].append(value)
    for key, values in found.items():
        if len(values) > 1:
            notes.append(f"several {key} values stated {tuple(values)}: the first, "
                         f"{values[0]}, taken")
    return {k: v[0] for k, v in found.items()}


def _sized_zoo(unsized: list[tuple[str, str | None]], params_b: float, raw: str,
               notes: list[str]) -> str | None:
    """The zoo key of a name whose family (and version) and size are stated apart
    (``'GPT-2-style 8.3B'``): same family group, same size, the version when given."""
    for fam, ver in unsized:
        group = _FAMILIES.get(fam, fam)
        keys = [k for k, (kfam, kver, ksize) in _ZOO.items()
                if _FAMILIES.get(kfam, kfam) == group and ksize == params_b
                and (ver is None or kver is None or kver == ver)]
        if len(keys) == 1:
            notes.append(f"{raw.strip()!r} taken as the zoo's {keys[0]} (family {group}, "
                         f"{params_b:g}B)")
            return keys[0]
    return None


def parse_model(model_text: str, *other_texts: str) -> ModelParse | None:
    """Model name (and dimensions stated in it or in ``other_texts``) -> :class:`ModelParse`.

    ``zoo`` is the workload-zoo key the name denotes (``"Llama-3.1 405B"`` -> ``llama3-405b``)
    or None; ``arch`` holds explicit dimensions (``hidden=4096``, ``24 layers``, ``h=12288``,
    ``gqa=8``, ``seq512``...); both are returned when both are found.
    """
    raw = cell_text(model_text)
    notes: list[str] = []
    name = re.sub(r"\(.*?\)", " ", raw.lower())
    zoo, fam = None, ""
    dataset = "cifar" if re.search(r"cifar", raw.lower()) else ""
    for m in _NAME.finditer(name) if dataset else ():
        zoo = _DATASET_ZOO.get((m["fam"], m["ver"], dataset))
        if zoo:
            fam = m["fam"]
            if re.search(r"\bcustom\b|\bmodified\b|\bvariant\b", name):
                notes.append(f"{raw.strip()!r} taken as the zoo's {zoo} (a custom variant "
                             "may differ from it)")
            break
    unsized: list[tuple[str, str | None]] = []  # (family, version) named without a size
    for m in _NAME.finditer(name) if zoo is None else ():
        if m["fam"] not in _FAMILIES and not any(p[0] == m["fam"] for p in _ZOO.values()):
            continue
        fam = fam or m["fam"]
        if not m["size"]:
            unsized.append((m["fam"], m["ver"]))
        ver, size = m["ver"], _size(m["fam"], m["size"])
        for key, (kfam, kver, ksize) in _ZOO.items():
            if kfam != m["fam"] or ksize != size:
                continue
            if kver == ver or kver is None:
                zoo = key
            elif ver and kver and "." not in kver and ver.split(".")[0] == kver:
                zoo = key
                notes.append(f"{m['fam']} {ver} taken as the zoo's {key} (same architecture "
                             f"as version {kver} assumed)")
            if zoo:
                break
        if zoo:
            break
    pm = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bmt])\b", raw, re.I)
    params_b = _size("", pm.group(0).lower()) if pm else None
    if zoo is None and unsized and isinstance(params_b, float):
        zoo = _sized_zoo(unsized, params_b, raw, notes)
    if zoo is None:
        spaced = re.sub(r"[\s_-]+", "-", name.strip())
        zoo = next((k for k in workloads.WORKLOADS if f" {k} " in f" {name.strip()} "
                    or re.search(rf"(?<![\w.-]){re.escape(k)}(?![\w.-])", spaced)), None)
    arch = _arch((raw, *(cell_text(t) for t in other_texts)), notes)
    family = _FAMILIES.get(fam, "")
    if not family:
        words = re.sub(r"[\s_-]", "", " ".join((raw, *map(cell_text, other_texts))).lower())
        family = next((f for w, f in _FAMILIES.items() if re.search(rf"\b{w}", words)), "")
    if zoo is None and not arch and not family and params_b is None:
        return None
    return ModelParse(zoo=zoo, arch=arch, family=family,
                      params_b=params_b if isinstance(params_b, float) else None,
                      seq=arch.get("seq"), assumptions=tuple(notes))
