"""A CPU stand-in for CuPy that is as strict as a GPU about the host.

On a GPU, every value that reaches Python (``float(x)``, ``if x > 0:``,
``x.item()``, ``x.tolist()``, ``numpy.asarray(x)``) is a device-to-host copy
and a synchronisation that stalls the kernel queue. CuPy makes most of them
look harmless; this module makes each of them an error, so that a test can
prove, without a GPU, that tinynode never converts device arrays implicitly
and that every synchronisation goes through ``tinynode.backend.item`` (which
uses the explicit ``x.get()``, as it does on CuPy).

It is NumPy underneath: ``install()`` puts a module named ``cupy`` into
``sys.modules`` whose functions return :class:`ndarray`, a NumPy subclass
whose class lives in a module called ``cupy`` (which is how
``tinynode.backend.is_cupy`` recognises CuPy arrays). Like CuPy, reductions
and products return 0-d device arrays, never host scalars. What it cannot
catch: ``numpy.asarray(x)`` on a subclass returns a host view without asking
the array, so the library's few ``np.asarray`` calls are reviewed by hand.
"""

import sys
import types

import numpy as np


class ImplicitHostTransfer(AssertionError):
    """A device array was turned into a host value without ``backend.item``/``to_host``."""


def _refuse(what):
    def method(self, *args, **kwargs):
        raise ImplicitHostTransfer(
            f"{what} on a device array: an implicit device-to-host transfer (use tinynode.backend.item or to_host)"
        )

    return method


class ndarray(np.ndarray):  # noqa: N801 - named as CuPy's
    """A NumPy array that refuses to become a host value implicitly."""

    __float__ = _refuse("float()")
    __int__ = _refuse("int()")
    __index__ = _refuse("using it as an index or size")
    __complex__ = _refuse("complex()")
    __bool__ = _refuse("bool() (an `if` on an array)")
    item = _refuse(".item()")
    tolist = _refuse(".tolist()")

    def get(self, stream=None, out=None):
        """The explicit device-to-host copy, as ``cupy.ndarray.get``."""
        _stats["get"] += 1
        return np.array(self.view(np.ndarray), copy=True)

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        # Keep 0-d results on the "device" (NumPy would hand back a host scalar).
        return np.asarray(obj).view(ndarray)


def _reduction(name):
    method = getattr(np.ndarray, name)

    def reduce(self, *args, **kwargs):  # like CuPy: the result stays on the device, even when 0-d
        return _device(method(self.view(np.ndarray), *args, **kwargs))

    reduce.__name__ = name
    return reduce


for _name in ("sum", "max", "min", "mean", "argmax", "all", "any"):
    setattr(ndarray, _name, _reduction(_name))

ndarray.__module__ = "cupy"
_stats = {"get": 0}


def _device(x):
    """Results as device arrays: NumPy arrays and scalars become :class:`ndarray`."""
    if isinstance(x, ndarray):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        return tuple(_device(v) for v in x)
    if isinstance(x, list):
        return [_device(v) for v in x]
    return x


def _wrap(fn):
    def wrapped(*args, **kwargs):
        return _device(fn(*args, **kwargs))

    wrapped.__name__ = getattr(fn, "__name__", "wrapped")
    return wrapped


def _module():
    mod = types.ModuleType("cupy")
    mod.__version__ = "0.0-fake (tests/fakecupy.py: NumPy with a GPU's strictness)"
    mod.ndarray = ndarray
    mod.get_array_module = lambda *arrays: mod
    mod.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(
            getDeviceCount=lambda: 1,
            getDeviceProperties=lambda i: {"name": b"fakecupy CPU stand-in", "totalGlobalMem": 0},
            runtimeGetVersion=lambda: 0,
            driverGetVersion=lambda: 0,
            memGetInfo=lambda: (2**30, 2**32),  # (free, total) bytes, as CUDA's cudaMemGetInfo
        )
    )
    mod.asnumpy = lambda x: x.get() if isinstance(x, ndarray) else np.asarray(x)
    for name in (
        "float16",
        "float32",
        "float64",
        "int32",
        "int64",
        "uint8",
        "bool_",
        "newaxis",
        "pi",
        "e",
        "inf",
        "nan",
        "dtype",
    ):
        setattr(mod, name, getattr(np, name))

    def __getattr__(name):  # everything else: NumPy's function, results kept on the "device"
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            return attr  # ufuncs keep the subclass through __array_wrap__
        if callable(attr):
            return _wrap(attr)
        return attr

    mod.__getattr__ = __getattr__
    mod.random = types.SimpleNamespace(default_rng=lambda seed=None: np.random.default_rng(seed))
    return mod


def install(monkeypatch):
    """Make ``import cupy`` give the stand-in for the rest of a test (pytest's monkeypatch undoes it)."""
    from tinynode import backend

    fake = _module()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_cupy_state", {})
    _stats["get"] = 0
    return fake


def stats():
    """How many explicit ``.get()`` copies were made since ``install``."""
    return dict(_stats)
