"""Shared pytest setup: skip ``@pytest.mark.gpu`` tests unless CuPy can compute here."""

from __future__ import annotations

import pytest

from ddlsim.kernels.backend import get_backend


def _gpu_usable() -> tuple[bool, str]:
    backend = get_backend("auto")
    return backend.name == "cupy", backend.reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every ``gpu`` test as skipped when the auto backend is not CuPy."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    usable, reason = _gpu_usable()
    if usable:
        return
    skip = pytest.mark.skip(reason=f"needs a usable CUDA device: {reason}")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp_backend(request: pytest.FixtureRequest):
    """Each compute backend in turn: NumPy always, CuPy only where a GPU is usable."""
    return get_backend("cpu" if request.param == "numpy" else "gpu")
