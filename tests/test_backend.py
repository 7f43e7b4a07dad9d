import builtins

import numpy as np
import pytest

from tinynode import backend
from tinynode.errors import BackendError


def test_array_module_follows_the_arrays(xp):
    a = xp.ones(3)
    assert backend.array_module(a) is xp
    assert backend.array_module(None, np.ones(2), a) is xp
    assert backend.array_module(1.0) is np


def test_to_host_and_back(xp):
    a = xp.arange(4.0)
    h = backend.to_host(a)
    assert isinstance(h, np.ndarray) and h.tolist() == [0.0, 1.0, 2.0, 3.0]
    d = backend.to_device(h, "cpu")
    assert d is h


def test_item_is_counted(xp):
    backend.reset_counters()
    assert backend.item(xp.asarray(2.5)) == 2.5
    assert backend.item(xp.ones(3).sum()) == 3.0
    assert backend.counters["host_syncs"] == 2


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="'cpu', 'gpu' or 'auto'"):
        backend.get_array_module("tpu")


def test_gpu_without_cupy_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(BackendError, match=r"CuPy, which is not installed.*pip install 'tinynode\[gpu\]'"):
        backend.get_array_module("gpu")


def test_gpu_without_a_device_says_so(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("cupy")
    fake.__version__ = "13.0.0"

    class Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.cuda = types.SimpleNamespace(runtime=Runtime)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendError, match="installed but cannot reach a CUDA device"):
        backend.get_array_module("gpu")


def test_auto_falls_back_to_numpy_without_a_gpu():
    xp = backend.get_array_module("auto")
    assert xp is np or backend.gpu_available()


def test_blas_threads_limits_and_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    before = [i["num_threads"] for i in blas]
    with backend.blas_threads(1) as applied:
        assert applied is True
        assert all(i["num_threads"] == 1 for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"] == before
    with backend.blas_threads(None) as applied:
        assert applied is False


def test_blas_threads_without_threadpoolctl_is_a_no_op(monkeypatch):
    import sys

    from tinynode import threads

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    monkeypatch.setattr(threads, "_state", {"controller": None, "pinned": None})  # forget the found BLAS
    with backend.blas_threads(1) as applied:
        assert applied is False
