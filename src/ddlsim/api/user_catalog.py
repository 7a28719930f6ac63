"""A user's own devices and cluster presets, from a YAML file, for the rest of the process.

:func:`register_user_catalog` (what the command line calls once at start-up) validates the
whole file, then adds its devices to the catalog (``get_device`` finds them) and its presets
to the cluster presets (``make_cluster`` builds them). Units are in the key names; every
number needs a source (one per device or preset, or one per number). Built-in names are
never replaced. Format::

    devices:
      acme-x1:                          # key: lower case letters, digits, '.', '_', '-'
        display_name: ACME X1 80GB      # optional (default: the key)
        source: ACME X1 datasheet rev 2 (acme.example/x1.pdf, 2026-01)
        peak_TFLOPS: {fp32: 60, tf32: 400, bf16: 800, fp16: 800, fp8: 1600}  # DENSE rates
        memory_GiB: 80
        memory_bw_GBps: 3000            # 1 GB/s = 1e9 B/s
        nvlink_GBps: 450                # GPU-to-GPU link, ONE direction (omitted: none)
        pcie_GBps: 64                   # host link, one direction
        sources: {peak_TFLOPS.fp8: "ACME X1 datasheet p. 3 (sparse 3200 / 2)"}
    presets:
      acme-x1-8:
        base: dgx-h100                  # optional: unset fields (and their sources) from it
        device: acme-x1
        nic_bandwidth_Gbps: 200
        source: ACME X1-8 system guide (2026)

Preset keys: ``base, device, gpus_per_node, intra_link (nvswitch|nvlink|pcie|none),
intra_bandwidth_GBps, intra_latency_us, nics_per_node, nic_bandwidth_Gbps, nic_latency_us,
fabric (infiniband|ethernet), nodes_per_leaf, oversubscription, switch_latency_us, source,
sources``; without ``base`` every field is required. Peak keys: ``fp64, fp32, tf32, fp16,
bf16, fp8`` (or ``float64 ... bfloat16``). Every error is one line naming the file, the
field, the rule and the value; unknown keys suggest the closest valid one.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.units import GB, TFLOPS, US, Gbps, GiB

#: Environment variable holding the registered files (``os.pathsep``-separated), so worker
#: processes can call :func:`register_from_env` and see the same catalog.
CATALOG_ENV = "DDLSIM_CATALOG"
MAX_FILE_BYTES = 1_000_000

_DTYPES = {"fp64": "float64", "fp32": "float32", "tf32": "tf32", "fp16": "float16",
           "bf16": "bfloat16", "fp8": "fp8", "float64": "float64", "float32": "float32",
           "float16": "float16", "bfloat16": "bfloat16"}
_NUMBERS = ("memory_GiB", "memory_bw_GBps", "nvlink_GBps", "pcie_GBps")
_DEVICE_KEYS = ("display_name", "kind", "source", "sources", "peak_TFLOPS") + _NUMBERS
#: Preset key -> (ClusterSpec field, SI factor or None for non-numbers, rule).
_PRESET_FIELDS: dict[str, tuple[str, float | None, str]] = {
    "device": ("device", None, "name"), "gpus_per_node": ("gpus_per_node", None, "int"),
    "intra_link": ("intra_link", None, "name"),
    "intra_bandwidth_GBps": ("intra_bw_Bps", GB, ">0"),
    "intra_latency_us": ("intra_latency_s", US, ">=0"),
    "nics_per_node": ("nics_per_node", None, "int"),
    "nic_bandwidth_Gbps": ("nic_bw_Bps", Gbps, ">0"),
    "nic_latency_us": ("nic_latency_s", US, ">=0"), "fabric": ("fabric", None, "name"),
    "nodes_per_leaf": ("nodes_per_leaf", None, "int"),
    "oversubscription": ("oversubscription", 1.0, ">=1"),
    "switch_latency_us": ("switch_latency_s", US, ">=0"),
}
_PRESET_KEYS = ("base", "source", "sources") + tuple(_PRESET_FIELDS)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class UserCatalog:
    """What one file holds, validated and in SI: devices and presets by name."""

    path: str
    devices: dict[str, Any] = field(default_factory=dict)  # name -> DeviceSpec
    presets: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)


def _number(where: str, value: Any, rule: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    limit = {">0": "> 0", ">=0": ">= 0", ">=1": ">= 1"}[rule]
    if not ok or {">0": value <= 0, ">=0": value < 0, ">=1": value < 1}[rule]:
        raise ConfigError(f"{where}: must be a finite number {limit}, got {value!r}")
    return float(value)


def _mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping of names to fields, got {value!r:.60}")
    return value


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: must be a non-empty string, got {value!r:.60}")
    return value.strip()


def _check_keys(where: str, given: dict, known: tuple[str, ...]) -> None:
    for key in given:
        if key not in known:
            raise unknown_name(f"{where}.{key}", key, known, "key")


def _sources(where: str, entry: dict, keys: list[str], label: str) -> dict[str, str]:
    """YAML number key -> its source text (per-number ``sources`` over the entry's ``source``)."""
    common = _text(f"{where}.source", entry["source"]) if "source" in entry else None
    per = _mapping(f"{where}.sources", entry.get("sources", {}))
    _check_keys(f"{where}.sources", per, tuple(keys))
    out = {k: _text(f"{where}.sources.{k}", per[k]) if k in per else common for k in keys}
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise ConfigError(f"{where}: every number needs a source (give 'source' or "
                          f"'sources: {{{missing[0]}: ...}}'), missing {missing}")
    return {k: f"{v} (user catalog {label})" for k, v in out.items()}


def _device(label: str, name: str, entry: Any):
    from ddlsim.sim.device_spec import KINDS, DeviceSpec

    where = f"{label}: devices.{name}"
    entry = _mapping(where, entry)
    _check_keys(where, entry, _DEVICE_KEYS)
    kind = entry.get("kind", "gpu")
    if kind not in KINDS:
        raise unknown_name(f"{where}.kind", kind, KINDS, "kind")
    if "peak_TFLOPS" not in entry:
        raise ConfigError(f"{where}: peak_TFLOPS is required (dense TFLOP/s per dtype, e.g. "
                          "{bf16: 989})")
    peaks_in = _mapping(f"{where}.peak_TFLOPS", entry["peak_TFLOPS"])
    if not peaks_in:
        raise ConfigError(f"{where}.peak_TFLOPS: needs at least one dtype (e.g. bf16: 989), "
                          "got {}")
    peaks: dict[str, float] = {}
    for key, value in peaks_in.items():
        if key not in _DTYPES:
            raise unknown_name(f"{where}.peak_TFLOPS.{key}", key, list(_DTYPES)[:6], "dtype")
        if _DTYPES[key] in peaks:
            raise ConfigError(f"{where}.peak_TFLOPS.{key}: {_DTYPES[key]} given twice")
        peaks[_DTYPES[key]] = _number(f"{where}.peak_TFLOPS.{key}", value, ">0") * TFLOPS
    required = ["memory_GiB", "memory_bw_GBps"] + (["pcie_GBps"] if kind == "gpu" else [])
    for key in required:
        if key not in entry:
            raise ConfigError(f"{where}: {key} is required (a number; units in the key)")
    given = [f"peak_TFLOPS.{k}" for k in peaks_in] + [k for k in _NUMBERS if k in entry]
    src = _sources(where, entry, given, label)
    value = {k: _number(f"{where}.{k}", entry[k], ">0" if k in required else ">=0")
             for k in _NUMBERS if k in entry}
    sources = {f"peak_flops_per_s.{_DTYPES[k]}": src[f"peak_TFLOPS.{k}"] for k in peaks_in}
    absent = f"not given in {label}: none (0)"
    for yaml_key, si_key in (("memory_GiB", "memory_bytes"),
                             ("memory_bw_GBps", "memory_bw_bytes_per_s"),
                             ("pcie_GBps", "pcie_bw_bytes_per_s"),
                             ("nvlink_GBps", "nvlink_bw_bytes_per_s")):
        sources[si_key] = src.get(yaml_key, absent)
    display = _text(f"{where}.display_name", entry.get("display_name", name))
    try:
        return DeviceSpec(name=name, display_name=display, kind=kind, peak_flops_per_s=peaks,
                          memory_bytes=value["memory_GiB"] * GiB,
                          memory_bw_bytes_per_s=value["memory_bw_GBps"] * GB,
                          pcie_bw_bytes_per_s=value.get("pcie_GBps", 0.0) * GB,
                          nvlink_bw_bytes_per_s=value.get("nvlink_GBps", 0.0) * GB,
                          sources=sources)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _preset(label: str, name: str, entry: Any, devices: dict, earlier: dict) -> dict:
    from ddlsim.sim.hardware import get_device
    from ddlsim.sim.topology import PRESETS, ClusterSpec

    where = f"{label}: presets.{name}"
    entry = _mapping(where, entry)
    _check_keys(where, entry, _PRESET_KEYS)
    fields: dict[str, tuple[Any, str]] = {}
    if "base" in entry:
        base = entry["base"]
        known = {**PRESETS, **earlier}
        if base not in known:
            raise unknown_name(f"{where}.base", base, known, "cluster preset")
        fields.update(known[base])
    given = [k for k in _PRESET_FIELDS if k in entry]
    src = _sources(where, entry, given, label) if given else {}
    for key in given:
        target, factor, rule = _PRESET_FIELDS[key]
        raw = entry[key]
        if rule == "int":
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
                raise ConfigError(f"{where}.{key}: must be an integer >= 1, got {raw!r}")
            value: Any = raw
        elif rule == "name":
            value = _text(f"{where}.{key}", raw)
            if key == "device":
                value = value.lower() if value.lower() in devices else _resolve(where, value,
                                                                                get_device)
        else:
            value = _number(f"{where}.{key}", raw, rule) * factor
        fields[target] = (value, src[key])
    missing = [k for k, (t, _, _) in _PRESET_FIELDS.items() if t not in fields]
    if missing:
        raise ConfigError(f"{where}: {missing[0]} is required without 'base' (missing "
                          f"{missing})")
    data = {k: v for k, (v, _) in fields.items()}
    device = data.pop("device")
    try:  # the same rules as every cluster: NICs divide GPUs, known link kinds, ...
        ClusterSpec(name=name, nodes=1, devices=(device,) * data["gpus_per_node"], **data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return fields


def _resolve(where: str, name: str, get_device) -> str:
    try:
        return get_device(name).name
    except ConfigError as err:
        raise ConfigError(f"{where}.{err}") from None


def parse_user_catalog(text: str, label: str = "<user catalog>") -> UserCatalog:
    """Validate YAML ``text`` (``label`` names it in errors); registers nothing."""
    import yaml

    from ddlsim.sim.user_registry import check_device_name, check_preset_name

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML ({' '.join(str(exc).split())})") from None
    doc = {} if doc is None else _mapping(label, doc)
    _check_keys(label, doc, ("devices", "presets"))
    devices, presets = {}, {}
    for name, entry in _mapping(f"{label}: devices", doc.get("devices") or {}).items():
        _check_name(f"{label}: devices", name, check_device_name, label)
        devices[name] = _device(label, name, entry)
    for name, entry in _mapping(f"{label}: presets", doc.get("presets") or {}).items():
        _check_name(f"{label}: presets", name, check_preset_name, label)
        presets[name] = _preset(label, name, entry, devices, presets)
    return UserCatalog(path=label, devices=devices, presets=presets)


def _check_name(where: str, name: Any, check, origin: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: a name must be lower-case letters, digits, '.', '_' or "
                          f"'-', got {name!r}")
    try:
        check(name, origin)
    except ConfigError as err:
        raise ConfigError(f"{where}.{name}: {err}") from None


def load_user_catalog(path: str | Path) -> UserCatalog:
    """Read and validate the file at ``path``; registers nothing."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{p}: file is larger than {MAX_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"catalog: no such file {str(p)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read catalog file ({exc})") from None
    return parse_user_catalog(text, str(p.resolve()))


def register_user_catalog(path: str | Path, export: bool = True) -> UserCatalog:
    """Validate the file at ``path``, then add its devices and presets for the rest of the
    process (all or nothing). ``export``: also list the file in ``$DDLSIM_CATALOG`` so
    worker processes that call :func:`register_from_env` see it."""
    from ddlsim.sim.user_registry import register_device, register_preset

    cat = load_user_catalog(path)
    for spec in cat.devices.values():
        register_device(spec, cat.path)
    for name, fields in cat.presets.items():
        register_preset(name, fields, cat.path)
    if export:
        paths = [p for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p]
        if cat.path not in paths:
            os.environ[CATALOG_ENV] = os.pathsep.join(paths + [cat.path])
    return cat


def register_from_env() -> list[UserCatalog]:
    """Register every file listed in ``$DDLSIM_CATALOG`` (e.g. in a worker process)."""
    paths = [p for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p]
    return [register_user_catalog(p, export=False) for p in paths]


def clear_user_catalog() -> None:
    """Forget every user device and preset (and ``$DDLSIM_CATALOG``); for tests."""
    from ddlsim.sim.user_registry import clear

    clear()
    os.environ.pop(CATALOG_ENV, None)
