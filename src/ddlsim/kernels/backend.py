"""Compute backends: NumPy on the CPU, CuPy on a CUDA GPU when one is usable.

CuPy is optional. It is imported lazily, only here, through :mod:`importlib`, so
``ddlsim.kernels`` imports with NumPy alone. Whether CuPy is *usable* is decided once per
process by :func:`_detect_cupy` (guarded import, guarded device count, then a tiny matmul
checked against NumPy); tests replace that function with ``monkeypatch``.
"""

from __future__ import annotations

import functools
import importlib
import os
import platform
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ddlsim.errors import BackendUnavailableError, ConfigError, unknown_name

DEVICES = ("auto", "cpu", "gpu")

#: dtype names each backend can compute in. bfloat16 has no NumPy dtype; CuPy gets it
#: only when the installed CuPy exposes ``cupy.bfloat16``.
_NUMPY_DTYPES = ("float64", "float32", "float16")
_KNOWN_DTYPES = ("float64", "float32", "float16", "bfloat16")


def _one_line(exc: BaseException) -> str:
    """``'TypeName: first line of the message'`` (messages from CUDA can span lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class Backend:
    """An array module plus what it runs on.

    ``name`` is ``'numpy'`` or ``'cupy'``; ``xp`` is the module itself; ``reason`` says in
    one line why this backend was chosen (shown in reports and ``--verbose`` output).
    """

    name: str
    xp: ModuleType
    reason: str

    def synchronize(self) -> None:
        """Wait until queued device work has finished (no-op on NumPy, which is synchronous)."""
        if self.name == "cupy":
            self.xp.cuda.Device().synchronize()

    def asnumpy(self, a: Any) -> np.ndarray:
        """Copy an array of this backend to a host NumPy array (NumPy arrays pass through)."""
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def device_info(self) -> dict[str, Any]:
        """Describe the device: model name, memory (bytes), versions, and for CPUs the BLAS."""
        if self.name == "cupy":
            return _cupy_device_info(self.xp)
        return _cpu_device_info()

    def supports_dtype(self, dtype: str) -> bool:
        """Whether arrays of the named dtype (``'float32'``, ``'bfloat16'``, ...) work here."""
        if self.name == "numpy":
            return dtype in _NUMPY_DTYPES
        if dtype == "bfloat16":
            return hasattr(self.xp, "bfloat16")
        return dtype in _NUMPY_DTYPES

    def dtype(self, name: str) -> Any:
        """The backend's dtype object for ``name``; :class:`ConfigError` if unsupported."""
        if not self.supports_dtype(name):
            if name not in _KNOWN_DTYPES:
                raise unknown_name("dtype", name, _KNOWN_DTYPES, "dtype")
            supported = [d for d in _KNOWN_DTYPES if self.supports_dtype(d)]
            raise ConfigError(f"dtype: {name!r} not supported on {self.name} backend "
                              f"(supported: {', '.join(supported)})")
        if name == "bfloat16":
            return self.xp.bfloat16
        return np.dtype(name)


# --------------------------------------------------------------------------- device info


def _cpu_model() -> str:
    """CPU model string from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _blas_info() -> dict[str, Any]:
    """BLAS name/version NumPy was built with, from ``numpy.show_config(mode='dicts')``."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return {"name": blas.get("name"), "version": blas.get("version")}
    except Exception:  # noqa: BLE001 - older NumPy: no 'dicts' mode; the info is optional
        return {}


def _cpu_device_info() -> dict[str, Any]:
    return {
        "backend": "numpy",
        "name": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "numpy_version": np.__version__,
        "blas": _blas_info(),
    }


def _cupy_device_info(cupy: ModuleType) -> dict[str, Any]:
    runtime = cupy.cuda.runtime
    dev_id = cupy.cuda.Device().id
    props = runtime.getDeviceProperties(dev_id)
    name = props.get("name", b"")
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return {
        "backend": "cupy",
        "name": name,
        "device_id": dev_id,
        "memory_bytes": int(props.get("totalGlobalMem", 0)),
        "compute_capability": f"{props.get('major', '?')}.{props.get('minor', '?')}",
        "multiprocessors": props.get("multiProcessorCount"),
        "driver_version": runtime.driverGetVersion(),
        "runtime_version": runtime.runtimeGetVersion(),
        "cupy_version": cupy.__version__,
    }


# --------------------------------------------------------------------------- detection


def _smoke_test(cupy: ModuleType) -> None:
    """Run a tiny matmul on the device and compare with NumPy; raise if anything is off."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7.0
    b = np.arange(8, dtype=np.float32).reshape(4, 2) - 3.0
    got = cupy.asnumpy(cupy.asarray(a) @ cupy.asarray(b))
    cupy.cuda.Device().synchronize()
    if not np.allclose(got, a @ b, rtol=1e-4, atol=1e-5):
        raise RuntimeError("device matmul disagrees with numpy")


@functools.cache
def _detect_cupy() -> tuple[ModuleType | None, str]:
    """``(cupy module, reason)`` when CuPy can compute here, else ``(None, why not)``.

    Cached: detection touches the driver and costs a few hundred ms. Tests monkeypatch
    this function (the module global is looked up at every :func:`get_backend` call).
    """
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        return None, f"cupy not installed ({_one_line(exc)})"
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install raises anything
        return None, f"cupy import failed: {_one_line(exc)}"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError without a driver
        return None, f"no CUDA device: {_one_line(exc)}"
    if count <= 0:
        return None, "no CUDA device: device count is 0"
    try:
        _smoke_test(cupy)
        info = _cupy_device_info(cupy)
    except Exception as exc:  # noqa: BLE001 - allocation/launch failures of any kind
        return None, f"CUDA smoke test failed: {_one_line(exc)}"
    return cupy, (f"cupy {cupy.__version__} usable on {info['name']} "
                  f"({count} CUDA device{'s' if count != 1 else ''})")


def get_backend(device: str = "auto") -> Backend:
    """Pick the compute backend for ``device`` (``'auto'``, ``'cpu'`` or ``'gpu'``).

    ``'auto'`` takes CuPy when it is usable, else NumPy; ``'gpu'`` insists on CuPy and
    raises :class:`BackendUnavailableError` (one line, with the reason) when it is not;
    ``'cpu'`` is always NumPy.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise unknown_name("device", device, DEVICES, "device")
    if device == "cpu":
        return Backend("numpy", np, "device='cpu' requested: numpy on the CPU")
    cupy, why = _detect_cupy()
    if cupy is not None:
        return Backend("cupy", cupy, f"device={device!r}: {why}")
    if device == "gpu":
        raise BackendUnavailableError(f"device='gpu' requested but CuPy cannot be used: {why}")
    return Backend("numpy", np, f"device='auto': numpy on the CPU because {why}")


def array_module(*arrays: Any) -> ModuleType:
    """The array module (numpy or cupy) of ``arrays``; numpy when none is a CuPy array.

    Never imports CuPy: an array can only be a CuPy array if CuPy is already imported.
    """
    for a in arrays:
        if type(a).__module__.split(".", 1)[0] == "cupy":
            return sys.modules["cupy"]
    return np


def scatter_add(xp: ModuleType, target: Any, indices: Any, values: Any) -> None:
    """``target[indices] += values`` with repeated indices accumulated, on either backend
    (``xp.add.at``; older CuPy only has ``cupyx.scatter_add``, imported here lazily)."""
    add_at = getattr(xp.add, "at", None)
    if add_at is not None:
        add_at(target, indices, values)
    else:
        importlib.import_module("cupyx").scatter_add(target, indices, values)
