"""The device catalog: GPU and CPU specs as data rows, every number with its source.

A :class:`DeviceSpec` is one row. The catalog (:data:`CATALOG`) holds the GPUs of
``published.csv`` (its ``hardware_spec`` rows; each number's entry in ``sources`` cites the
primary source those rows name: the vendor datasheet or spec table and where it was read),
a few GPUs taken straight from their vendor datasheets, and a generic CPU;
:func:`cpu_spec` builds a row for a detected host CPU.

Conventions for turning vendor numbers into SI:

* Peak FLOP/s are *dense* (no 2:4 sparsity). ``float32`` is the non-tensor FP32 rate;
  ``tf32``, ``float16``, ``bfloat16`` and ``fp8`` are tensor-core rates; ``float64`` is the
  FP64 tensor-core rate where the GPU has one (A100, H100, H200), else the FP64 vector rate.
* Memory and link bandwidths are decimal (1 GB/s = 1e9 B/s). NVLink and PCIe numbers in
  vendor tables are bidirectional aggregates; the catalog stores one direction (half).
  ``nvlink_bw_bytes_per_s`` is the GPU's whole scale-up (GPU-to-GPU) link, one direction:
  NVLink on NVIDIA parts, the sum of the seven Infinity Fabric links on AMD Instinct ones;
  0 for PCIe cards (an NVLink bridge that pairs two cards is not modelled).
* Memory capacity: the vendor's "GB" for HBM/GDDR parts is taken as GiB (2**30 B), as the
  devices report it (an A100-80GB has 80 x 2**30 bytes of HBM2e).

The catalog does no file I/O: the numbers in :mod:`ddlsim.sim.device_catalog` were read
from ``src/ddlsim/data/published.csv`` and are checked against it by
``tests/sim/test_hardware.py``; the rows of :mod:`ddlsim.sim.device_catalog_nvidia` and
:mod:`ddlsim.sim.device_catalog_amd` come from vendor datasheets, each number checked
against its cited value by ``tests/sim/test_datasheet_devices.py``. A user file adds rows
through :mod:`ddlsim.sim.user_registry` (loaded by :mod:`ddlsim.api.user_catalog`).
"""

from __future__ import annotations

import re

from ddlsim.errors import unknown_name
from ddlsim.sim.device_catalog import BUILTIN_DEVICES, CATALOG, list_devices
from ddlsim.sim.device_spec import KINDS, DeviceSpec, cpu_spec

__all__ = ["BUILTIN_DEVICES", "CATALOG", "KINDS", "DeviceSpec", "cpu_spec", "get_device",
           "list_devices", "resolve_device_name"]

# Words that say a *different* product from the one in the catalog (other clocks, TDP or
# memory): the NVL variant, the DGX-2 SXM3 V100, a PCIe card of a GPU whose PCIe part is not
# catalogued. These resolve to None.
_OTHER_VARIANT = re.compile(r"\b(pcie|nvl|sxm3)\b")


def _normalise(text: str) -> str:
    t = text.lower()
    t = re.sub(r"\b(nvidia|tesla|geforce)\b", " ", t)
    t = re.sub(r"[_/(),:]", " ", t)
    return " " + re.sub(r"\s+", " ", t).strip() + " "


def _memory_gb(t: str) -> int | None:
    m = re.search(r"(\d+)\s*gb\b", t)
    return int(m.group(1)) if m else None


# Short names a user may mistype, for did-you-mean suggestions only.
_SHORT_NAMES = {"p100": "p100-sxm2-16gb", "p40": "p40", "v100": "v100-sxm2-16gb",
                "a100": "a100-40gb",
                "h100": "h100-sxm", "h200": "h200", "l4": "l4", "cpu": "cpu-generic",
                "b200": "b200", "gb200": "gb200", "l40s": "l40s", "mi300x": "mi300x",
                "mi325x": "mi325x", "a100-pcie": "a100-pcie-40gb"}

# Families with one catalog row each: token -> (key, memory sizes in GB that name it).
_SINGLE = (("l40s", "l40s", (48,)), ("gb200", "gb200", (186, 192)),
           ("b200", "b200", (180, 183, 192)), ("mi300x", "mi300x", (192,)),
           ("mi325x", "mi325x", (256,)))


def resolve_device_name(text: str) -> str | None:
    """Map free text naming a device to a catalog key, or None when no row is that device.

    Case-insensitive; accepts catalog keys and the usual spellings ("A100",
    "A100-SXM4-80GB", "NVIDIA A100 80GB", "H100", "H100-SXM5-80GB", "NVIDIA H100 80GB HBM3",
    "V100", "Tesla V100-SXM2-32GB", "H200-SXM-141GB", "L4", "Tesla P40", "B200", "GB200",
    "L40S", "NVIDIA H100 PCIe", "NVIDIA A100-PCIE-40GB", "AMD Instinct MI300X", "cpu").
    Without a memory size, "V100" is the 16 GB and "A100" the 40 GB part (the first of
    each). The A100 and H100 PCIe cards are their own rows; any other PCIe, NVL or SXM3
    variant is a different product (other clocks) and gives None (except the P40, which
    exists only as a PCIe card), as does any other GPU.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    key = text.strip().lower()
    if key in CATALOG:
        return key
    t = _normalise(text)
    tokens = re.sub(r"-", " ", t)
    if re.search(r"\bp40\b", tokens):  # only ever a PCIe card: "P40 PCIe" is this row
        return "p40" if _memory_gb(tokens) in (None, 24) else None
    mem = _memory_gb(tokens)
    for token, row, sizes in _SINGLE:
        if re.search(rf"\b{token}\b", tokens):
            return row if mem is None or mem in sizes else None
    if re.search(r"\bpcie\b", tokens) and not re.search(r"\b(nvl|sxm\d?)\b", tokens):
        if re.search(r"\ba100\b", tokens):
            return {None: "a100-pcie-40gb", 40: "a100-pcie-40gb", 80: "a100-pcie-80gb"}.get(mem)
        if re.search(r"\bh100\b", tokens):
            return "h100-pcie" if mem in (None, 80) else None
    if _OTHER_VARIANT.search(tokens):
        return None
    if re.search(r"\bp100\b", tokens):
        return "p100-sxm2-16gb" if mem in (None, 16) else None
    if re.search(r"\bv100\b", tokens):
        return {None: "v100-sxm2-16gb", 16: "v100-sxm2-16gb", 32: "v100-sxm2-32gb"}.get(mem)
    if re.search(r"\ba100\b", tokens):
        return {None: "a100-40gb", 40: "a100-40gb", 80: "a100-80gb"}.get(mem)
    if re.search(r"\bh100\b", tokens):
        return "h100-sxm" if mem in (None, 80) else None
    if re.search(r"\bh200\b", tokens):
        return "h200" if mem in (None, 141) else None
    if re.search(r"\bl4\b", tokens):
        return "l4" if mem in (None, 24) else None
    if tokens.strip() in ("cpu", "generic cpu", "cpu generic"):
        return "cpu-generic"
    return None


def get_device(name: str) -> DeviceSpec:
    """The catalog row for ``name`` (a key or any alias :func:`resolve_device_name` accepts).

    Raises ConfigError for an unknown name, suggesting the closest catalog key.
    """
    key = resolve_device_name(name) if isinstance(name, str) else None
    if key is not None:
        return CATALOG[key]
    raise unknown_name("device", name, CATALOG, "device", aliases=_SHORT_NAMES, cutoff=0.4)
