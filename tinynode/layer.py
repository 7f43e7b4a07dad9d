"""The layer protocol and :class:`Layer`, the bookkeeping every layer shares.

A layer describes a function ``y = layer(params, x)``. It holds only its
*hyper*-parameters (sizes, activation); the parameters live in ONE flat 1-D
array that the caller owns. That single vector is what Adam updates, what the
gradient fills and what the adjoint's mu accumulates into.

The layer protocol (what :class:`~tinynode.nn.Chain`, :class:`~tinynode.VectorField` and
``gradcheck`` rely on):

* ``forward(params, x) -> (y, ctx)``: ``ctx`` is what the backward pass needs.
  It is *returned*, never stored on ``self``: an ODE vector field is evaluated
  six times per Tsit5 step before any backward pass runs;
* ``backward(params, ctx, gy, need_gx=True) -> (gx, gparams)``: the
  vector-Jacobian product ``gy^T dy/dx`` and ``gy^T dy/dparams``, written by
  hand, ``gparams`` flat like ``params``. ``need_gx=False`` says nobody needs
  ``gx`` (d loss / d pixels): a layer may skip it, or ignore the flag;
* ``num_params``, ``init(seed_or_rng, dtype)`` and ``unflatten(params)``;
* optionally ``backward_vjp(params, ctx, gy, cgx, cgparams=None) -> (cx, cparams, cgy)``:
  the VJP of ``backward`` itself (a second derivative, by hand), which the
  Jacobian regulariser needs (:mod:`tinynode.regularizers`).

:class:`Layer` supplies the bookkeeping. A layer with parameters declares their
names and shapes in ``param_shapes()``; ``num_params``, ``unflatten`` (named
*views*, no copies) and ``init`` (from a seed or a ``numpy.random.Generator``,
each parameter from ``initial_value``) follow. Writing a layer is then about
ten lines (docs/layers.md).
"""

import math

import numpy as np

from .backend import array_module
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = ["Layer", "check_params"]


def _rng(seed_or_rng):
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if isinstance(seed_or_rng, bool) or not isinstance(seed_or_rng, (int, np.integer)) or seed_or_rng < 0:
        raise ArgumentError(f"init needs a seed (a non-negative integer) or a numpy Generator, got {seed_or_rng!r}")
    return np.random.default_rng(seed_or_rng)


def _float_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise DTypeError(f"parameters are float32 or float64, got {dtype}")
    return dtype


def check_params(layer, params):
    """Raise a ShapeError unless ``params`` is a flat vector of ``layer.num_params`` floats."""
    if getattr(params, "ndim", None) != 1 or params.shape[0] != layer.num_params:
        raise ShapeError(
            f"{layer!r} expects a flat parameter vector of length {layer.num_params}, "
            f"got shape {getattr(params, 'shape', type(params).__name__)}. "
            "Create it with layer.init(seed)."
        )
    if params.dtype.kind != "f" or params.dtype.itemsize not in (4, 8):
        raise DTypeError(
            f"{layer!r}: parameters must be float32 or float64, got {params.dtype}; "
            "cast them, e.g. params.astype(numpy.float32)."
        )


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Layer:
    """What every layer shares: calling, counting, naming and initialising parameters.

    Override ``param_shapes()`` (``{name: shape}``, in storage order) and
    ``initial_value(name, shape, rng)`` for a layer with parameters; then
    ``num_params``, ``unflatten`` and ``init`` work without more code.
    """

    def param_shapes(self):
        """``{name: shape}`` of this layer's parameters, in the order they are stored."""
        return {}

    def initial_value(self, name, shape, rng):
        """A float64 array of ``shape`` for parameter ``name`` (zeros unless overridden)."""
        return np.zeros(shape)

    @property
    def num_params(self):
        """The length of the flat parameter vector."""
        return sum(math.prod(shape) for shape in self.param_shapes().values())

    def __call__(self, params, x):
        """``y = layer(params, x)``: the forward pass without its context."""
        return self.forward(params, x)[0]

    def init(self, seed_or_rng=0, dtype=np.float32):
        """A fresh flat parameter vector, each parameter from ``initial_value`` (deterministic for a seed)."""
        rng = _rng(seed_or_rng)
        params = np.zeros(self.num_params, dtype=_float_dtype(dtype))
        for name, view in self.unflatten(params).items():
            view[...] = self.initial_value(name, view.shape, rng)
        return params

    def unflatten(self, params):
        """``{name: view}``: each parameter as a view of its part of the flat vector (no copies)."""
        views, start = {}, 0
        for name, shape in self.param_shapes().items():
            size = math.prod(shape)
            views[name] = params[start : start + size].reshape(shape)
            start += size
        return views

    @staticmethod
    def xp(array):
        """The array module (``numpy`` or ``cupy``) of ``array``: write layers once for both."""
        return array_module(array)
