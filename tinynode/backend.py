"""The array backend: NumPy on the CPU, CuPy on the GPU.

The math never asks "which device am I on?". Every function looks at the arrays
it receives (:func:`array_module`) and uses the matching module, so the same
code runs on ``numpy.ndarray`` and on ``cupy.ndarray`` with no global switch.

Two things cross the host/device boundary, and each has exactly one door here:

* :func:`to_device` / :func:`to_host` move whole arrays;
* :func:`item` turns a 0-d (device) array into a Python float. This is the
  *synchronisation* point: on a GPU it waits for all queued kernels. The
  adaptive solver needs one per step (the accept/reject decision), and tests
  count them through :data:`counters`.

CuPy is imported lazily, only when a CuPy array or the GPU is asked for, so
``import tinynode`` stays fast and needs nothing but NumPy.
"""

import numpy as np

from .errors import ArgumentError, BackendError
from .threads import blas_threads  # noqa: F401 (its home before threads.py; kept for callers)

__all__ = [
    "array_module",
    "is_cupy",
    "cupy_or_none",
    "gpu_available",
    "get_array_module",
    "to_device",
    "to_host",
    "item",
    "counters",
    "reset_counters",
    "blas_threads",
]

#: Counts of host/device traffic made by tinynode itself (not by user code).
#: ``host_syncs``: calls of :func:`item`; ``to_host``: arrays copied to the host.
counters = {"host_syncs": 0, "to_host": 0}


def reset_counters():
    """Zero :data:`counters` (tests call this before counting a solve's syncs)."""
    for key in counters:
        counters[key] = 0


def is_cupy(x):
    """True if ``x`` is a CuPy array (checked without importing CuPy)."""
    return type(x).__module__.startswith("cupy")


def array_module(*arrays):
    """``numpy`` or ``cupy``: the module that owns the given arrays.

    NumPy arrays and Python scalars give NumPy; any CuPy array gives CuPy.
    """
    for a in arrays:
        if a is not None and type(a) is not np.ndarray and is_cupy(a):
            import cupy

            return cupy
    return np


_cupy_state = {}


def cupy_or_none():
    """The ``cupy`` module if it imports *and* sees a CUDA device, else None."""
    if "module" not in _cupy_state:
        try:
            _require_cupy()
            import cupy

            _cupy_state["module"] = cupy
        except BackendError as e:
            _cupy_state["module"] = None
            _cupy_state["why"] = str(e)
    return _cupy_state["module"]


def gpu_available():
    """True when CuPy is installed and a CUDA device is visible."""
    return cupy_or_none() is not None


def _require_cupy():
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            "The GPU backend needs CuPy, which is not installed "
            f"({e}). Install it with: pip install 'tinynode[gpu]' "
            "(CUDA 12; for another CUDA version install the matching cupy-cudaXXx wheel)."
        ) from None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise BackendError(
            f"CuPy {cupy.__version__} is installed but cannot reach a CUDA device ({e}). "
            "Check the NVIDIA driver (nvidia-smi) or run on the CPU with device='cpu'."
        ) from None
    if n < 1:
        raise BackendError(
            f"CuPy {cupy.__version__} is installed but found no CUDA device. Run on the CPU with device='cpu'."
        )
    return cupy


def get_array_module(device="cpu"):
    """The array module for a device name: ``"cpu"``, ``"gpu"`` or ``"auto"``.

    ``"gpu"`` raises :class:`~tinynode.errors.BackendError` naming what is
    missing (CuPy, or a CUDA device) and how to install it; ``"auto"`` picks the
    GPU when one is usable and the CPU otherwise.
    """
    if device == "cpu":
        return np
    if device == "gpu":
        return _require_cupy()
    if device == "auto":
        return cupy_or_none() or np
    raise ArgumentError(f"device must be 'cpu', 'gpu' or 'auto', got {device!r}")


def to_device(x, device="cpu"):
    """Return ``x`` as an array on ``device`` (no copy if it is already there)."""
    xp = get_array_module(device)
    if xp is np:
        return to_host(x)
    return xp.asarray(x)


def to_host(x):
    """Return ``x`` as a NumPy array (copying from the GPU if needed)."""
    if is_cupy(x):  # checked first: a device array may subclass numpy.ndarray (tests/fakecupy.py does)
        counters["to_host"] += 1
        return x.get()
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def item(x):
    """``float(x)`` for a 0-d array: the one device-to-host synchronisation.

    Every scalar the library needs on the host (an error norm for the
    accept/reject decision, a loss for printing) goes through here, so that
    tests can count synchronisations in :data:`counters`.
    """
    counters["host_syncs"] += 1
    if is_cupy(x):
        return float(x.get())  # the explicit copy; CuPy's float(x) would do the same, implicitly
    return float(x)
