"""Shared fixtures: the digits data set, loaded once per test session."""

from __future__ import annotations

import pytest

from ddlsim.convergence.data import load_digits


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits with the default seeded split."""
    return load_digits()
