"""Shared fixtures: the array backends, dtypes and hypothesis profiles.

Every backend-sensitive test takes the ``xp`` fixture and so runs once per
backend present: NumPy always, CuPy when it imports and sees a CUDA device
(skipped cleanly otherwise).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tinynode import backend

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _backends():
    yield pytest.param(np, id="numpy")
    yield pytest.param("cupy", id="cupy", marks=pytest.mark.gpu)


@pytest.fixture(scope="session", params=list(_backends()))
def xp(request):
    """The array module under test (numpy, or cupy on a machine with a GPU)."""
    if request.param == "cupy":
        cp = backend.cupy_or_none()
        if cp is None:
            pytest.skip("CuPy with a CUDA device is not available")
        return cp
    return request.param


def to_numpy(a):
    """Host copy of an array from either backend (for assertions)."""
    return backend.to_host(a)


@pytest.fixture
def cli_sandbox(monkeypatch, tmp_path):
    """A command-line run in its own directory: a private cache, no TINYNODE_DATA, CI=true (1,500 images)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYNODE_DATA", raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.chdir(tmp_path)
