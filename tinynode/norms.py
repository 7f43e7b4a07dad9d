"""The error norm: how big a step's error estimate is, relative to the tolerances.

OrdinaryDiffEq's (and Hairer's) rule: a step from ``y_n`` to ``y_n+1`` with
error estimate ``err`` is accepted when

    EEst = RMS_i( err_i / (atol_i + rtol_i max(|y_n,i|, |y_n+1,i|)) )  <= 1.

``EEst`` is the one number per step that the host needs from the device (the
accept/reject decision), so computing it ends in the step's only
synchronisation (:func:`tinynode.backend.item`). On a GPU the whole formula is
one fused kernel (:mod:`tinynode.fused`); on NumPy it is six in-place calls.

A *seminorm* (Kidger, Chen and Lyons 2021) lets only the first ``size``
entries count: an adjoint leaves out the parameter adjoint mu, a pure
quadrature that nothing else depends on.
"""

import math

import numpy as np

from . import fused
from .backend import array_module, item

__all__ = ["rms", "ErrorNorm"]


def rms(x):
    """Root mean square over all entries (OrdinaryDiffEq's ODE_DEFAULT_NORM), as a float."""
    xp = array_module(x)
    flat = x.reshape(-1)
    return math.sqrt(item(xp.dot(flat, flat)) / max(flat.size, 1))


class ErrorNorm:
    """``EEst(err, y, y_new)`` for states of ``n`` entries, of which the first ``size`` count.

    ``rtol`` and ``atol`` are floats or flat arrays of ``n`` entries. The object
    owns its scratch buffer (one per solve), so a step allocates nothing here.
    """

    def __init__(self, rtol, atol, n, dtype, xp=np, size=None):
        self.size = n if size is None else int(size)
        m = self.size
        self.rtol = rtol if isinstance(rtol, float) else rtol[:m]
        self.atol = atol if isinstance(atol, float) else atol[:m]
        self.fuse = fused.enabled(xp) and isinstance(rtol, float) and isinstance(atol, float)
        self._scratch = xp.empty((2, m), dtype=dtype)

    def scale(self, y):
        """``atol + rtol |y|`` over the entries that count (a new array)."""
        sk = array_module(y).abs(y[: self.size])
        sk *= self.rtol
        sk += self.atol
        return sk

    def __call__(self, err, y, y_new):
        """The scaled RMS error ``EEst`` of a step from ``y`` to ``y_new`` (a float)."""
        m = self.size
        err, y, y_new = err[:m], y[:m], y_new[:m]
        xp = array_module(err)
        if self.fuse:  # on a GPU: the lines below as one kernel
            return math.sqrt(item(fused.error_norm_sq(xp, err, y, y_new, self.rtol, self.atol)) / m)
        scale, a = self._scratch
        xp.abs(y, out=scale)
        xp.abs(y_new, out=a)
        xp.maximum(scale, a, out=scale)  # max(|y_n|, |y_n+1|)
        scale *= self.rtol
        scale += self.atol
        xp.divide(err, scale, out=scale)
        return math.sqrt(item(xp.dot(scale, scale)) / m)
