"""Backend selection, detection failures and dtype support (CuPy faked where needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from ddlsim.errors import BackendUnavailableError, ConfigError
from ddlsim.kernels import backend as be


def fake_detector(result):
    def detect():
        return result
    return detect


def test_cpu_is_numpy():
    b = be.get_backend("cpu")
    assert b.name == "numpy" and b.xp is np
    assert "cpu" in b.reason


def test_auto_without_usable_cupy_falls_back_to_numpy_and_says_why(monkeypatch):
    monkeypatch.setattr(be, "_detect_cupy", fake_detector((None, "no CUDA device: boom")))
    b = be.get_backend("auto")
    assert b.name == "numpy" and b.xp is np
    assert "no CUDA device: boom" in b.reason


def test_gpu_without_usable_cupy_raises_one_line(monkeypatch):
    monkeypatch.setattr(be, "_detect_cupy", fake_detector((None, "cupy not installed (x)")))
    with pytest.raises(BackendUnavailableError) as info:
        be.get_backend("gpu")
    message = str(info.value)
    assert "\n" not in message
    assert "cupy not installed" in message and "gpu" in message


def test_auto_and_gpu_take_cupy_when_usable(monkeypatch):
    fake = types.ModuleType("cupy")
    monkeypatch.setattr(be, "_detect_cupy", fake_detector((fake, "cupy 99 usable on FakeGPU")))
    for device in ("auto", "gpu"):
        b = be.get_backend(device)
        assert b.name == "cupy" and b.xp is fake and "FakeGPU" in b.reason
    assert be.get_backend("cpu").xp is np


@pytest.mark.parametrize("bad", ["gpux", "CPU", "", None, 0])
def test_invalid_device_names_the_argument(bad):
    with pytest.raises(ConfigError, match=f"^device: unknown device {re.escape(repr(bad))}"
                       ) as info:
        be.get_backend(bad)
    if bad == "gpux":
        assert "did you mean 'gpu'" in str(info.value)
    elif bad in ("", None, 0):
        assert "(known: auto, cpu, gpu)" in str(info.value)


def test_numpy_dtypes():
    b = be.get_backend("cpu")
    assert [b.supports_dtype(d) for d in ("float64", "float32", "float16", "bfloat16")] == \
        [True, True, True, False]
    assert b.dtype("float32") == np.float32 and b.dtype("float16") == np.float16
    with pytest.raises(ConfigError, match="^dtype: 'bfloat16' not supported on numpy backend"):
        b.dtype("bfloat16")
    with pytest.raises(ConfigError, match="did you mean 'float32'"):
        b.dtype("float23")


def test_cupy_bfloat16_only_when_exposed():
    plain = be.Backend("cupy", types.SimpleNamespace(), "fake")
    assert plain.supports_dtype("float16") and not plain.supports_dtype("bfloat16")
    marker = object()
    rich = be.Backend("cupy", types.SimpleNamespace(bfloat16=marker), "fake")
    assert rich.supports_dtype("bfloat16") and rich.dtype("bfloat16") is marker


def test_numpy_backend_helpers_and_device_info():
    b = be.get_backend("cpu")
    a = np.arange(3.0)
    b.synchronize()  # no-op, must not raise
    assert b.asnumpy(a) is a
    info = b.device_info()
    assert info["backend"] == "numpy"
    assert info["logical_cores"] == os.cpu_count()
    assert info["numpy_version"] == np.__version__
    assert isinstance(info["name"], str) and info["name"]
    assert isinstance(info["blas"], dict)


class _FakeCudaError(Exception):
    pass


def _fake_cupy(count=1, count_error=None, smoke_error=None):
    """A stand-in cupy module exercising each detection step."""
    def get_count():
        if count_error:
            raise count_error
        return count

    def asarray(a):
        if smoke_error:
            raise smoke_error
        return np.asarray(a)

    runtime = types.SimpleNamespace(
        getDeviceCount=get_count, driverGetVersion=lambda: 13000,
        runtimeGetVersion=lambda: 13000,
        getDeviceProperties=lambda i: {"name": b"FakeGPU", "totalGlobalMem": 2**30,
                                       "major": 9, "minor": 0, "multiProcessorCount": 4})
    device = types.SimpleNamespace(id=0, synchronize=lambda: None)
    cuda = types.SimpleNamespace(runtime=runtime, Device=lambda *a: device)
    return types.SimpleNamespace(cuda=cuda, asarray=asarray, asnumpy=np.asarray,
                                 __version__="99.0")


@pytest.mark.parametrize("fake, expected", [
    (ImportError("No module named 'cupy'"), "cupy not installed"),
    (OSError("libcudart.so: cannot open\nsecond line"), "cupy import failed: OSError: libcudart"),
    (_fake_cupy(count_error=_FakeCudaError("cudaErrorNoDevice: no CUDA-capable device\nx")),
     "no CUDA device: _FakeCudaError: cudaErrorNoDevice"),
    (_fake_cupy(count=0), "no CUDA device: device count is 0"),
    (_fake_cupy(smoke_error=_FakeCudaError("out of memory")),
     "CUDA smoke test failed: _FakeCudaError: out of memory"),
])
def test_detection_reports_the_failing_step(monkeypatch, fake, expected):
    def import_module(name):
        assert name == "cupy"
        if isinstance(fake, Exception):
            raise fake
        return fake

    monkeypatch.setattr(be.importlib, "import_module", import_module)
    module, reason = be._detect_cupy.__wrapped__()
    assert module is None
    assert reason.startswith(expected)
    assert "\n" not in reason


def test_detection_accepts_a_working_device(monkeypatch):
    fake = _fake_cupy(count=2)
    monkeypatch.setattr(be.importlib, "import_module", lambda name: fake)
    module, reason = be._detect_cupy.__wrapped__()
    assert module is fake
    assert reason == "cupy 99.0 usable on FakeGPU (2 CUDA devices)"
    info = be.Backend("cupy", fake, reason).device_info()
    assert info["memory_bytes"] == 2**30 and info["name"] == "FakeGPU"


def test_array_module_never_imports_cupy(monkeypatch):
    assert be.array_module(np.zeros(2), 3.0) is np
    assert be.array_module() is np
    sentinel = types.ModuleType("cupy")
    monkeypatch.setitem(sys.modules, "cupy", sentinel)
    fake_array_type = type("ndarray", (), {"__module__": "cupy._core.core"})
    assert be.array_module(np.zeros(1), fake_array_type()) is sentinel


def test_importing_kernels_does_not_import_cupy():
    code = ("import sys, ddlsim.kernels.backend, ddlsim.kernels.ops; "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_real_gpu_backend():
    b = be.get_backend("gpu")
    assert b.name == "cupy"
    info = b.device_info()
    assert info["memory_bytes"] > 0 and info["name"]
    a = b.xp.arange(6, dtype=b.xp.float32).reshape(2, 3)
    b.synchronize()
    np.testing.assert_array_equal(b.asnumpy(a @ a.T), np.array([[5, 14], [14, 50]]))
    assert be.array_module(a) is b.xp
