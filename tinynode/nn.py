"""Layers in the Lux style: stateless objects, explicit parameters, hand-written VJPs.

A layer describes a function ``y = layer(params, x)``. It holds only its
*hyper*-parameters (sizes, activation); the parameters live in ONE flat 1-D
array that the caller owns. That single vector is what Adam updates, what the
gradient fills and what the adjoint's mu accumulates into.

The layer protocol (what :class:`Chain`, :class:`~tinynode.VectorField` and
``gradcheck`` rely on):

* ``forward(params, x) -> (y, ctx)``: ``ctx`` is what the backward pass needs.
  It is *returned*, never stored on ``self``: an ODE vector field is evaluated
  six times per Tsit5 step before any backward pass runs;
* ``backward(params, ctx, gy, need_gx=True) -> (gx, gparams)``: the
  vector-Jacobian product ``gy^T dy/dx`` and ``gy^T dy/dparams``, written by
  hand, ``gparams`` flat like ``params``. ``need_gx=False`` says nobody needs
  ``gx`` (d loss / d pixels): a layer may skip it, or ignore the flag;
* ``num_params``, ``init(seed_or_rng, dtype)`` and ``unflatten(params)``.

:class:`Layer` supplies the bookkeeping. A layer with parameters declares their
names and shapes in ``param_shapes()``; ``num_params``, ``unflatten`` (named
*views*, no copies) and ``init`` (from a seed or a ``numpy.random.Generator``,
each parameter from ``initial_value``) follow. Writing a layer is then about
ten lines (docs/layers.md).
"""

import math

import numpy as np

from .activations import ACTIVATIONS, Activation
from .backend import array_module
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = ["Layer", "Dense", "Flatten", "Augment", "Chain", "Activation", "ACTIVATIONS", "dense_vjp", "check_params"]


def dense_vjp(gz, x, w, gw=None, gb=None, *, need_gx=True, ones=None, out=None):
    """The VJP of the affine map ``z = x W^T + b`` (every Dense derivative goes through here).

    Given ``gz = dL/dz`` (rows x out) and the input ``x`` (rows x in)::

        gW = gz^T x  (into ``gw``, out x in),   gb = 1^T gz  (into ``gb``),   gx = gz W

    Returns ``gx`` (into ``out`` if given; None when ``need_gx`` is False). With
    ``gw`` None the parameter part is skipped (a state-only product). The bias
    gradient, a sum over rows, is computed as the product ``1^T gz``: one BLAS
    call, several times faster than ``gz.sum(axis=0)`` for narrow layers. Pass
    ``ones`` (a vector of ``rows`` ones) when calling this many times.
    """
    if gw is not None:
        if ones is None:
            ones = array_module(gz).ones(gz.shape[0], dtype=gz.dtype)
        gz.T.dot(x, out=gw)
        ones.dot(gz, out=gb)
    return gz.dot(w, out=out) if need_gx else None


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


class Dense(Layer):
    """``y = act(x @ W.T + b)``, Lux's ``Dense(in => out, act)``.

    The flat parameters hold ``W`` (shape ``(out, in)``, row-major) followed by
    ``b`` (shape ``(out,)``). ``x`` has shape ``(..., in)``; the batch is the
    leading axis (Julia's is the trailing one, hence ``W.T`` here).

    VJP, with ``gz = gy * act'(z)`` (:data:`ACTIVATIONS`) and then
    :func:`dense_vjp`: ``gx = gz W``, ``gW = gz^T x``, ``gb = sum over the batch of gz``.
    """

    def __init__(self, in_features, out_features, activation=None):
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        name = "identity" if activation is None else activation
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise ArgumentError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[name]

    def __repr__(self):
        act = "" if self.activation.name == "identity" else f", {self.activation.name}"
        return f"Dense({self.in_features} => {self.out_features}{act})"

    @property
    def num_params(self):
        """The length of the flat parameter vector."""
        return self.out_features * (self.in_features + 1)

    def param_shapes(self):
        """``{'weight': (out, in), 'bias': (out,)}``."""
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def unflatten(self, params):
        """``{"weight": (out, in) view, "bias": (out,) view}`` (as :meth:`Layer.unflatten`, written out:
        it runs on every call)."""
        nw = self.out_features * self.in_features
        return {"weight": params[:nw].reshape(self.out_features, self.in_features), "bias": params[nw:]}

    def initial_value(self, name, shape, rng):
        """Glorot-uniform weights (as Lux's Dense), zero biases."""
        if name == "bias":
            return np.zeros(shape)
        limit = np.sqrt(6.0 / (self.in_features + self.out_features))
        return rng.uniform(-limit, limit, shape)

    def forward(self, params, x):
        """``(act(x @ W.T + b), ctx)``; ``ctx = (x, y)`` is all the VJP needs."""
        check_params(self, params)
        if getattr(x, "shape", ())[-1:] != (self.in_features,):
            raise ShapeError(
                f"{self!r} expects inputs of shape (..., {self.in_features}), "
                f"got {getattr(x, 'shape', type(x).__name__)}"
            )
        if x.dtype != params.dtype:
            raise DTypeError(
                f"{self!r}: input dtype {x.dtype} differs from parameter dtype {params.dtype}; "
                "cast one of them (tinynode does not promote silently)."
            )
        p = self.unflatten(params)
        z = x @ p["weight"].T
        z += p["bias"]
        y = self.activation.forward(array_module(params), z)
        return y, (x, y)

    def backward(self, params, ctx, gy, need_gx=True):
        """``(gx, gparams)``: ``gz = gy * act'``, then :func:`dense_vjp`."""
        x, y = ctx
        xp = array_module(params)
        if getattr(gy, "shape", None) != y.shape:
            raise ShapeError(
                f"{self!r}: the output gradient has shape {getattr(gy, 'shape', None)}, the output {y.shape}"
            )
        if gy.dtype != y.dtype:
            raise DTypeError(f"{self!r}: the output gradient is {gy.dtype}, the output {y.dtype}; cast it")
        gz = self.activation.vjp(xp, y, gy).reshape(-1, self.out_features)
        gparams = xp.empty(self.num_params, dtype=params.dtype)
        g = self.unflatten(gparams)
        gx = dense_vjp(
            gz,
            x.reshape(-1, self.in_features),
            self.unflatten(params)["weight"],
            g["weight"],
            g["bias"],
            need_gx=need_gx,
        )
        return (None if gx is None else gx.reshape(x.shape)), gparams


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


class Chain(Layer):
    """Layers applied in order; their parameter vectors laid end to end.

    ``chain.params_of(params, i)`` is layer ``i``'s part of the flat vector (a
    view), ``chain.unflatten(params)["layers"][i]`` its named views, and
    ``chain.param_slices[i]`` the slice of the flat vector it occupies.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ArgumentError("Chain needs at least one layer")
        for layer in layers:
            if not all(hasattr(layer, m) for m in ("forward", "backward", "num_params")):
                raise ArgumentError(f"{layer!r} is not a layer (it needs forward, backward and num_params)")
        self.layers = tuple(layers)
        self.param_slices, start = [], 0
        for layer in self.layers:
            self.param_slices.append(slice(start, start + layer.num_params))
            start += layer.num_params

    def __repr__(self):
        return "Chain(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    @property
    def num_params(self):
        """The length of the flat parameter vector."""
        return self.param_slices[-1].stop

    def params_of(self, params, index):
        """Layer ``index``'s parameters: a view of its part of ``params``."""
        return params[self.param_slices[index]]

    def init(self, seed_or_rng=0, dtype=np.float32):
        """Each layer initialised in turn from one generator seeded by ``seed_or_rng``."""
        rng = _rng(seed_or_rng)
        return np.concatenate([np.asarray(layer.init(rng, dtype), dtype=dtype) for layer in self.layers])

    def unflatten(self, params):
        """``{"layers": [view of layer 0, view of layer 1, ...]}``."""
        return {"layers": [layer.unflatten(params[s]) for layer, s in zip(self.layers, self.param_slices)]}

    def __call__(self, params, x):
        """Inference: each layer's own call, so none keeps data for a backward pass."""
        check_params(self, params)
        for layer, s in zip(self.layers, self.param_slices):
            x = layer(params[s], x)
        return x

    def forward(self, params, x):
        """Each layer in turn on its slice of ``params``; ``ctx`` is the list of their contexts."""
        check_params(self, params)
        ctxs = []
        for layer, s in zip(self.layers, self.param_slices):
            x, ctx = layer.forward(params[s], x)
            ctxs.append(ctx)
        return x, ctxs

    def backward(self, params, ctx, gy, need_gx=True):
        """The layers' VJPs in reverse order; each layer's returned gradient goes into its slice."""
        gparams = array_module(params).empty(self.num_params, dtype=params.dtype)
        for i in range(len(self.layers) - 1, -1, -1):
            s = self.param_slices[i]
            gy, g = self.layers[i].backward(params[s], ctx[i], gy, need_gx=need_gx or i > 0)
            if getattr(g, "shape", None) != (s.stop - s.start,):
                raise ShapeError(
                    f"{self.layers[i]!r}.backward returned a parameter gradient of shape "
                    f"{getattr(g, 'shape', type(g).__name__)}; it must be flat, of length "
                    f"{s.stop - s.start} (the layer's num_params)"
                )
            gparams[s] = g
        return gy, gparams
