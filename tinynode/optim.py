"""Optimisers that update ONE flat parameter vector in place.

The optimiser object holds only hyper-parameters; its state is a plain dict of
arrays (and a step count) made by ``opt.init(params)``, so saving and restoring
it is exact: write the arrays, read them back (see :func:`state_to_arrays`).

Usage::

    opt = Adam(lr=0.001)
    state = opt.init(params)
    opt.step(params, grads, state)     # params and state change in place
"""

import math

import numpy as np

from . import fused
from .backend import array_module
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = ["Adam", "SGD", "state_to_arrays", "state_from_arrays"]


def _check(params, grads, state, keys):
    if not isinstance(state, dict) or not all(k in state for k in keys):
        raise ArgumentError(f"the optimiser state must be what opt.init(params) returned (with {', '.join(keys)})")
    if getattr(grads, "shape", None) != params.shape:
        raise ShapeError(f"gradient shape {grads.shape} does not match parameters {params.shape}")
    if grads.dtype != params.dtype:
        raise DTypeError(f"gradient dtype {grads.dtype} does not match parameters {params.dtype}")


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{name} must be a number, got {value!r}")
    return float(value)


def _rate(name, value):
    """A finite positive float (a NaN or negative learning rate would only show up later as a NaN loss)."""
    value = _number(name, value)
    if not (math.isfinite(value) and value > 0):
        raise ArgumentError(f"{name} must be a finite positive number, got {value}; the tutorial uses 0.001")
    return value


def _fraction(name, value):
    value = _number(name, value)
    if not 0 <= value < 1:
        raise ArgumentError(f"{name} must lie in [0, 1), got {value}")
    return value


class Adam:
    """Adam (Kingma and Ba 2015) with Optimisers.jl's defaults.

    With ``g`` the gradient and ``t`` the step number (from 1)::

        m <- b1 m + (1 - b1) g
        v <- b2 v + (1 - b2) g^2
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    exactly as Optimisers.jl's ``Adam`` (``eps`` outside the square root, after
    bias correction). Each update is a dozen in-place array calls on the flat
    vector and allocates nothing.
    """

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ArgumentError(f"Adam betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = _fraction("Adam beta1", betas[0]), _fraction("Adam beta2", betas[1])
        self.lr, self.betas, self.eps = _rate("Adam learning rate lr", lr), (b1, b2), _rate("Adam eps", eps)

    def __repr__(self):
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps})"

    def init(self, params):
        """Fresh state: zero moments, step 0, and a scratch buffer."""
        xp = array_module(params)
        return {"m": xp.zeros_like(params), "v": xp.zeros_like(params), "t": 0, "_tmp": xp.empty_like(params)}

    def step(self, params, grads, state):
        """One Adam update of ``params`` (in place) from ``grads``."""
        _check(params, grads, state, ("m", "v", "t"))
        xp = array_module(params)
        b1, b2 = self.betas
        m, v, tmp = state["m"], state["v"], state.get("_tmp")
        if tmp is None:
            tmp = state["_tmp"] = xp.empty_like(params)
        state["t"] = t = state["t"] + 1
        if fused.enabled(xp):  # on a GPU: the same update as one kernel
            fused.adam_update(xp, params, grads, m, v, self.lr, b1, b2, self.eps, t)
            return params
        # m += (1 - b1) (g - m)   <=>   m = b1 m + (1 - b1) g
        xp.subtract(grads, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        # v += (1 - b2) (g^2 - v)
        xp.multiply(grads, grads, out=tmp)
        tmp -= v
        tmp *= 1 - b2
        v += tmp
        # p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        xp.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - b2**t)
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - b1**t)
        params -= tmp
        return params


class SGD:
    """Plain gradient descent, optionally with (heavy-ball) momentum.

    ``buf <- momentum * buf + g``;  ``p <- p - lr * buf``.
    """

    def __init__(self, lr=0.01, momentum=0.0):
        self.lr, self.momentum = _rate("SGD learning rate lr", lr), _fraction("SGD momentum", momentum)

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum})"

    def init(self, params):
        """State: the momentum buffer (zeros) and the step count."""
        return {"buf": array_module(params).zeros_like(params), "t": 0}

    def step(self, params, grads, state):
        """One SGD update of ``params`` (in place)."""
        _check(params, grads, state, ("buf", "t"))
        state["t"] += 1
        buf = state["buf"]
        if self.momentum:
            buf *= self.momentum
            buf += grads
        else:
            buf[...] = grads
        params -= self.lr * buf
        return params


def state_to_arrays(state):
    """An optimiser state as ``{name: array}`` (scratch buffers dropped), for saving."""
    out = {}
    for key, value in state.items():
        if key.startswith("_"):
            continue
        out[key] = np.asarray(value) if isinstance(value, int) else value
    return out


def state_from_arrays(arrays):
    """Inverse of :func:`state_to_arrays`: restores the step count as an int."""
    state = dict(arrays)
    if "t" in state:
        state["t"] = int(state["t"])
    return state
