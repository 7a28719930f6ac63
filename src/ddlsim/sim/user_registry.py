"""Devices and cluster presets a user adds for the rest of the process (no file I/O here:
:mod:`ddlsim.api.user_catalog` reads and validates the YAML file, then calls these).

A registered device joins :data:`ddlsim.sim.hardware.CATALOG`, so
:func:`~ddlsim.sim.hardware.get_device` finds it; a registered preset joins
:data:`ddlsim.sim.topology.PRESETS`, so :func:`~ddlsim.sim.topology.make_cluster` builds it.
Built-in names are never replaced, nor shadowed (a user device may not be named like an
alias of a built-in one, e.g. ``h100``). A name registered from one file cannot be taken by
another file; registering the same file again replaces its entries.
"""

from __future__ import annotations

from typing import Any

from ddlsim.errors import ConfigError
from ddlsim.sim.device_catalog import BUILTIN_DEVICES, add_device, remove_device
from ddlsim.sim.device_spec import DeviceSpec
from ddlsim.sim.hardware import resolve_device_name
from ddlsim.sim.topology import PRESETS

#: Preset names that ship with ddlsim (captured before any user preset can exist).
BUILTIN_PRESETS: frozenset[str] = frozenset(PRESETS)

_DEVICE_ORIGIN: dict[str, str] = {}
_PRESET_ORIGIN: dict[str, str] = {}


def check_device_name(name: str, origin: str) -> None:
    """ConfigError unless ``name`` may be registered from ``origin``."""
    if name in BUILTIN_DEVICES:
        raise ConfigError(f"{name!r} is a built-in device; a user device cannot replace it "
                          "(choose another name)")
    if name not in _DEVICE_ORIGIN:
        builtin = resolve_device_name(name)
        if builtin is not None and builtin in BUILTIN_DEVICES:
            raise ConfigError(f"{name!r} already names the built-in device {builtin!r}; a "
                              "user device cannot shadow it (choose another name)")
    elif _DEVICE_ORIGIN[name] != origin:
        raise ConfigError(f"device {name!r} was already added from {_DEVICE_ORIGIN[name]}")


def check_preset_name(name: str, origin: str) -> None:
    """ConfigError unless preset ``name`` may be registered from ``origin``."""
    if name in BUILTIN_PRESETS:
        raise ConfigError(f"{name!r} is a built-in cluster preset; a user preset cannot "
                          "replace it (choose another name)")
    if name in _PRESET_ORIGIN and _PRESET_ORIGIN[name] != origin:
        raise ConfigError(f"preset {name!r} was already added from {_PRESET_ORIGIN[name]}")


def register_device(spec: DeviceSpec, origin: str) -> None:
    """Add ``spec`` to the device catalog; ``origin`` names the file it came from."""
    check_device_name(spec.name, origin)
    add_device(spec)
    _DEVICE_ORIGIN[spec.name] = origin


def register_preset(name: str, fields: dict[str, tuple[Any, str]], origin: str) -> None:
    """Add a cluster preset (field -> (SI value, source), like :data:`PRESETS` rows)."""
    check_preset_name(name, origin)
    PRESETS[name] = dict(fields)
    _PRESET_ORIGIN[name] = origin


def registered() -> dict[str, dict[str, str]]:
    """``{"devices": {name: origin}, "presets": {name: origin}}`` of the user entries."""
    return {"devices": dict(_DEVICE_ORIGIN), "presets": dict(_PRESET_ORIGIN)}


def clear() -> None:
    """Remove every user device and preset (the built-in ones stay)."""
    for name in list(_PRESET_ORIGIN):
        PRESETS.pop(name, None)
        del _PRESET_ORIGIN[name]
    for name in list(_DEVICE_ORIGIN):
        remove_device(name)
        del _DEVICE_ORIGIN[name]
