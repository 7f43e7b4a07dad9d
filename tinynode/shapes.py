"""Layers that only move numbers around: :class:`Flatten` and :class:`Augment` (no parameters).

Their VJPs are copies and reshapes, linear in the output gradient alone, so
their second derivatives (``backward_vjp``) are as simple: nothing flows back
to the input, and the cotangent of the input gradient goes back to the output
gradient through the same reshape.
"""

import numpy as np

from .backend import array_module
from .errors import ArgumentError, ShapeError
from .layer import Layer

__all__ = ["Flatten", "Augment"]


class Flatten(Layer):
    """``(batch, d1, d2, ...) -> (batch, d1*d2*...)``, Lux's ``FlattenLayer``."""

    def __repr__(self):
        return "Flatten()"

    def forward(self, params, x):
        """``(x.reshape(batch, -1), x.shape)``."""
        if getattr(x, "ndim", 0) < 1:
            raise ShapeError(
                f"Flatten needs an array with a batch axis, got {type(x).__name__} of shape {getattr(x, 'shape', None)}"
            )
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, params, ctx, gy, need_gx=True):
        """The gradient reshaped back to the input's shape (no parameters)."""
        return (gy.reshape(ctx) if need_gx else None), array_module(gy).empty(0, dtype=gy.dtype)

    def backward_vjp(self, params, ctx, gy, cgx, cgparams=None):
        """The VJP of :meth:`backward`: a reshape, linear in ``gy`` alone (``cx = 0``, ``cgy = cgx`` reshaped)."""
        xp = array_module(gy)
        return xp.zeros(ctx, dtype=gy.dtype), xp.empty(0, dtype=gy.dtype), cgx.reshape(gy.shape)


class Augment(Layer):
    """``(..., d) -> (..., d + k)``: ``k`` zero channels appended to the last axis (Dupont et al. 2019).

    The flow of an ODE cannot make trajectories cross, so a Neural ODE on ``d``
    numbers can only learn maps that keep their order (on a line, ``x -> -x``
    is out of reach). Started at ``[x, 0]`` in ``d + k`` dimensions, the flow
    can move points past each other in the extra channels ("Augmented Neural
    ODEs", NeurIPS 2019): ``Chain(Augment(k), NeuralODE(... d + k ...), Dense(d + k => out))``.

    No parameters. The extra channels are constants, so the VJP keeps the
    first ``d`` channels of the output gradient and drops the rest: ``gx = gy[..., :d]``.
    """

    def __init__(self, k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(
                f"Augment's k (the number of zero channels to append) must be a positive integer, got {k!r}; "
                "e.g. Augment(2) turns inputs of shape (batch, d) into (batch, d + 2)"
            )
        self.k = int(k)

    def __repr__(self):
        return f"Augment({self.k})"

    def forward(self, params, x):
        """``([x, 0], x.shape)``: a new array in ``x``'s dtype, zeros in the last ``k`` channels."""
        if getattr(x, "ndim", 0) < 1:
            raise ShapeError(
                f"{self!r} appends channels to the last axis, so it needs an array with at least one axis, "
                f"got {type(x).__name__} of shape {getattr(x, 'shape', None)}"
            )
        d = x.shape[-1]
        y = array_module(x).zeros((*x.shape[:-1], d + self.k), dtype=x.dtype)
        y[..., :d] = x
        return y, x.shape

    def backward(self, params, ctx, gy, need_gx=True):
        """``gy[..., :d]`` (a copy): the appended zeros depend on nothing (no parameters)."""
        shape = (*ctx[:-1], ctx[-1] + self.k)
        if getattr(gy, "shape", None) != shape:
            raise ShapeError(
                f"{self!r}: the output gradient has shape {getattr(gy, 'shape', None)}, the output {shape}"
            )
        gx = gy[..., : ctx[-1]].copy() if need_gx else None
        return gx, array_module(gy).empty(0, dtype=gy.dtype)

    def backward_vjp(self, params, ctx, gy, cgx, cgparams=None):
        """The VJP of :meth:`backward`: linear in ``gy`` alone (``cx = 0``; ``cgy`` is ``cgx`` padded with zeros)."""
        xp = array_module(gy)
        cgy = xp.zeros_like(gy)
        cgy[..., : ctx[-1]] = cgx
        return xp.zeros(ctx, dtype=gy.dtype), xp.empty(0, dtype=gy.dtype), cgy
