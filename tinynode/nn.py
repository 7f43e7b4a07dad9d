"""Layers in the Lux style: stateless objects, explicit parameters, hand-written VJPs.

A layer describes a function ``y = layer(params, x)``. It holds only its
*hyper*-parameters (sizes, activation); the parameters live in ONE flat 1-D
array that the caller owns. That single vector is what Adam updates, what the
gradient fills and what the adjoint's mu accumulates into -- no per-layer
allocation anywhere.

Every layer has

* ``init(seed_or_rng, dtype=float32) -> params`` (deterministic for a seed);
* ``forward(params, x) -> (y, ctx)``: ``ctx`` is what the backward pass needs.
  It is *returned*, never stored on ``self``: an ODE vector field is evaluated
  six times per Tsit5 step before any backward pass runs;
* ``backward(params, ctx, gy) -> (gx, gparams)``: the vector-Jacobian product
  ``gy^T dy/dx`` and ``gy^T dy/dparams``, written by hand; ``gparams`` has the
  layout of ``params``;
* ``layer(params, x) -> y``, ``layer.num_params`` and ``layer.unflatten(params)``,
  a nested dict of named *views* into the flat vector (no copies).

Two keyword arguments of ``backward`` exist for speed, not for the math:
``out=`` writes ``gparams`` into a caller's buffer (a :class:`Chain` hands each
layer its slice), and ``need_gx=False`` skips the input gradient (nobody needs
d loss / d pixels).
"""

import numpy as np

from .backend import array_module
from .errors import DTypeError, ShapeError

__all__ = ["Layer", "Dense", "Flatten", "Chain", "ACTIVATIONS", "dense_stack"]


# ---------------------------------------------------------------------------
# Activations. Each derivative is written in terms of the OUTPUT y = act(z),
# so the forward pass only has to keep y (tanh' = 1 - y^2, sigmoid' = y(1 - y),
# softplus' = sigmoid(z) = 1 - exp(-y), relu' = [y > 0]).
# ---------------------------------------------------------------------------

def _tanh(xp, z):
    return xp.tanh(z, out=z)


def _sigmoid(xp, z):
    # 1 / (1 + exp(-z)), written as 0.5 * (1 + tanh(z / 2)): no overflow for large |z|.
    z *= 0.5
    xp.tanh(z, out=z)
    z += 1
    z *= 0.5
    return z


def _relu(xp, z):
    return xp.maximum(z, 0, out=z)


def _softplus(xp, z):
    # log(1 + exp(z)) = logaddexp(0, z), stable for large |z|.
    return xp.logaddexp(0, z, out=z)


def _dtanh(xp, y, gy):
    gz = y * y
    xp.subtract(1, gz, out=gz)
    gz *= gy
    return gz


def _dsigmoid(xp, y, gy):
    gz = 1 - y
    gz *= y
    gz *= gy
    return gz


def _drelu(xp, y, gy):
    return gy * (y > 0)


def _dsoftplus(xp, y, gy):
    gz = xp.expm1(-y)  # -(1 - exp(-y)) = -sigmoid(z), accurate when y is tiny
    gz *= gy
    xp.negative(gz, out=gz)
    return gz


#: name -> (in-place activation, VJP through it given y = act(z)).
ACTIVATIONS = {
    "identity": (None, None),
    "tanh": (_tanh, _dtanh),
    "sigmoid": (_sigmoid, _dsigmoid),
    "relu": (_relu, _drelu),
    "softplus": (_softplus, _dsoftplus),
}


def _rng(seed_or_rng):
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def _check_params(layer, params):
    if getattr(params, "ndim", None) != 1 or params.shape[0] != layer.num_params:
        raise ShapeError(
            f"{layer!r} expects a flat parameter vector of length {layer.num_params}, "
            f"got shape {getattr(params, 'shape', type(params).__name__)}. "
            "Create it with layer.init(seed)."
        )


class Layer:
    """What every layer shares: calling, counting and naming parameters."""

    num_params = 0

    def __call__(self, params, x):
        """``y = layer(params, x)``: the forward pass without its context."""
        return self.forward(params, x)[0]

    def init(self, seed_or_rng=0, dtype=np.float32):
        """A fresh flat parameter vector (empty for a parameter-free layer)."""
        return np.zeros(0, dtype=dtype)

    def unflatten(self, params):
        """Named views into the flat parameter vector (empty for this layer)."""
        return {}


class Dense(Layer):
    """``y = act(x @ W.T + b)``, Lux's ``Dense(in => out, act)``.

    The flat parameters hold ``W`` (shape ``(out, in)``, row-major) followed by
    ``b`` (shape ``(out,)``). ``x`` has shape ``(..., in)``; the batch is the
    leading axis (Julia's is the trailing one, hence ``W.T`` here).

    VJP, with ``gz = gy * act'(z)``:  ``gx = gz @ W``,  ``gW = gz^T x``,
    ``gb = sum over the batch of gz``.
    """

    def __init__(self, in_features, out_features, activation=None):
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Dense sizes must be positive, got {in_features} => {out_features}")
        name = "identity" if activation is None else activation
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = name
        self._act, self._dact = ACTIVATIONS[name]
        self._nw = self.out_features * self.in_features
        self.num_params = self._nw + self.out_features

    def __repr__(self):
        act = "" if self.activation == "identity" else f", {self.activation}"
        return f"Dense({self.in_features} => {self.out_features}{act})"

    def init(self, seed_or_rng=0, dtype=np.float32):
        """Glorot-uniform weights (as Lux's Dense), zero biases."""
        rng = _rng(seed_or_rng)
        limit = np.sqrt(6.0 / (self.in_features + self.out_features))
        params = np.zeros(self.num_params, dtype=dtype)
        params[: self._nw] = rng.uniform(-limit, limit, self._nw)
        return params

    def unflatten(self, params):
        """``{"weight": (out, in) view, "bias": (out,) view}``."""
        return {
            "weight": params[: self._nw].reshape(self.out_features, self.in_features),
            "bias": params[self._nw:],
        }

    def forward(self, params, x):
        """``(act(x @ W.T + b), ctx)``; ``ctx = (x, y)`` is all the VJP needs."""
        _check_params(self, params)
        if x.shape[-1:] != (self.in_features,):
            raise ShapeError(f"{self!r} expects inputs of shape (..., {self.in_features}), got {x.shape}")
        if x.dtype != params.dtype:
            raise DTypeError(
                f"{self!r}: input dtype {x.dtype} differs from parameter dtype {params.dtype}; "
                "cast one of them (tinynode does not promote silently)."
            )
        xp = array_module(params)
        w = params[: self._nw].reshape(self.out_features, self.in_features)
        z = x @ w.T
        z += params[self._nw:]
        y = z if self._act is None else self._act(xp, z)
        return y, (x, y)

    def backward(self, params, ctx, gy, *, out=None, need_gx=True):
        """``(gx, gparams)`` with ``gz = gy * act'``: ``gx = gz W``, ``gW = gz^T x``, ``gb = sum gz``."""
        x, y = ctx
        xp = array_module(params)
        gz = gy if self._dact is None else self._dact(xp, y, gy)
        if out is None:
            out = xp.empty(self.num_params, dtype=params.dtype)
        gz2 = gz.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        xp.matmul(gz2.T, x2, out=out[: self._nw].reshape(self.out_features, self.in_features))
        gz2.sum(axis=0, out=out[self._nw:])
        gx = None
        if need_gx:
            gx = gz @ params[: self._nw].reshape(self.out_features, self.in_features)
        return gx, out


class Flatten(Layer):
    """``(batch, d1, d2, ...) -> (batch, d1*d2*...)``, Lux's ``FlattenLayer``."""

    def __repr__(self):
        return "Flatten()"

    def forward(self, params, x):
        """``(x.reshape(batch, -1), x.shape)``."""
        if x.ndim < 1:
            raise ShapeError(f"Flatten needs at least a batch axis, got a {x.ndim}-d array")
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, params, ctx, gy, *, out=None, need_gx=True):
        """The gradient reshaped back to the input's shape (no parameters)."""
        xp = array_module(gy)
        if out is None:
            out = xp.empty(0, dtype=gy.dtype)
        return (gy.reshape(ctx) if need_gx else None), out


class Chain(Layer):
    """Layers applied in order; their parameter vectors laid end to end.

    ``chain.unflatten(params)["layers"][i]`` is layer ``i``'s named view.
    The backward pass hands each layer the slice of one gradient buffer it
    owns, so a chain's gradient is written in place, never concatenated.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Chain needs at least one layer")
        for layer in layers:
            if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
                raise TypeError(f"{layer!r} is not a layer (it needs forward and backward)")
        self.layers = tuple(layers)
        self.offsets = [0]
        for layer in self.layers:
            self.offsets.append(self.offsets[-1] + layer.num_params)
        self.num_params = self.offsets[-1]
        self._slices = [slice(a, b) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def __repr__(self):
        return "Chain(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    def init(self, seed_or_rng=0, dtype=np.float32):
        """Each layer initialised in turn from one generator seeded by ``seed_or_rng``."""
        rng = _rng(seed_or_rng)
        return np.concatenate([np.asarray(layer.init(rng, dtype), dtype=dtype) for layer in self.layers])

    def unflatten(self, params):
        """``{"layers": [view of layer 0, view of layer 1, ...]}``."""
        return {"layers": [layer.unflatten(params[s]) for layer, s in zip(self.layers, self._slices)]}

    def __call__(self, params, x):
        """Inference: each layer's own call, so none keeps data for a backward pass."""
        _check_params(self, params)
        for layer, s in zip(self.layers, self._slices):
            x = layer(params[s], x)
        return x

    def forward(self, params, x):
        """Each layer in turn on its slice of ``params``; ``ctx`` is the list of their contexts."""
        _check_params(self, params)
        ctxs = []
        for layer, s in zip(self.layers, self._slices):
            x, ctx = layer.forward(params[s], x)
            ctxs.append(ctx)
        return x, ctxs

    def backward(self, params, ctx, gy, *, out=None, need_gx=True):
        """The layers' VJPs in reverse order, each writing its slice of one gradient buffer."""
        xp = array_module(params)
        if out is None:
            out = xp.empty(self.num_params, dtype=params.dtype)
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            s = self._slices[i]
            gy, _ = self.layers[i].backward(params[s], ctx[i], gy, out=out[s], need_gx=need_gx or i > 0)
        return gy, out


def dense_stack(layer):
    """``[(offset, Dense), ...]`` if ``layer`` is a Dense or a Chain (nested or not) of
    Dense layers only, with each layer's offset in the flat parameters; else None.

    Such a stack is a multilayer perceptron, the usual Neural ODE vector field,
    and :class:`tinynode.VectorField` evaluates it with a fused fast path.
    """
    if isinstance(layer, Dense):
        return [(0, layer)]
    if not isinstance(layer, Chain):
        return None
    stack = []
    for offset, sub in zip(layer.offsets, layer.layers):
        inner = dense_stack(sub)
        if inner is None:
            return None
        stack += [(offset + o, d) for o, d in inner]
    return stack
