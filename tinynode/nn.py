"""Layers in the Lux style: stateless objects, explicit parameters, hand-written VJPs.

A layer describes a function ``y = layer(params, x)``. It holds only its
*hyper*-parameters (sizes, activation); the parameters live in ONE flat 1-D
array that the caller owns. That single vector is what Adam updates, what the
gradient fills and what the adjoint's mu accumulates into. The protocol every
layer follows, and the :class:`Layer` base, are in :mod:`tinynode.layer`;
:class:`Dense` and :class:`Chain` are here, :class:`Flatten` and
:class:`Augment` in :mod:`tinynode.shapes` (all importable from here).
Writing a layer is about ten lines (docs/layers.md).
"""

import numpy as np

from .activations import ACTIVATIONS, Activation
from .backend import array_module
from .errors import ArgumentError, DTypeError, ShapeError
from .layer import Layer, _positive_int, _rng, check_params
from .shapes import Augment, Flatten

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

    def backward_vjp(self, params, ctx, gy, cgx, cgparams=None):
        """The VJP of :meth:`backward` (second order): from cotangents ``cgx``, ``cgparams`` of
        its outputs ``(gx, gparams)``, those of its inputs ``(x, params, gy)``.

        With ``gz = act'(z) gy`` and ``gx = gz W``, ``gW = gz^T x``, ``gb = 1^T gz``::

            cgz = cgx W^T + x cgW^T + 1 cgb^T     the cotangent of gz
            cgy = act'(z) cgz                      gz is linear in gy
            cz  = act''(z) gy cgz                  act' depends on z = x W^T + b
            cx  = cz W + gz cgW,   cW = cz^T x + gz^T cgx,   cb = 1^T cz

        ``cgparams`` None means zero (the Jacobian regulariser only looks at ``gx``).
        """
        x, y = ctx
        xp, w = array_module(params), self.unflatten(params)["weight"]
        x2, y2 = x.reshape(-1, self.in_features), y.reshape(-1, self.out_features)
        gy2, cgx2 = gy.reshape(y2.shape), cgx.reshape(x2.shape)
        gz = self.activation.vjp(xp, y2, gy2)
        cgz = cgx2 @ w.T
        if cgparams is not None:
            c = self.unflatten(cgparams)
            cgz += x2 @ c["weight"].T + c["bias"]
        cz = self.activation.second(xp, y2, gy2 * cgz)
        cparams = xp.empty(self.num_params, dtype=params.dtype)
        g = self.unflatten(cparams)
        cx = dense_vjp(cz, x2, w, g["weight"], g["bias"])
        g["weight"] += gz.T @ cgx2
        if cgparams is not None:
            cx += gz @ c["weight"]
        return cx.reshape(x.shape), cparams, self.activation.vjp(xp, y2, cgz).reshape(y.shape)


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

    def backward_vjp(self, params, ctx, gy, cgx, cgparams=None):
        """The VJP of :meth:`backward` (second order): reverse mode over the backward pass.

        The backward pass ran the layers last to first, so its VJP runs them first
        to last (each layer's ``backward_vjp``), handing each the cotangent of its
        output gradient; what each says about its *input* is then carried back
        through the forward pass by the ordinary VJPs, last to first.
        """
        layers, slices = self.layers, self.param_slices
        gys = [None] * len(layers)  # each layer's output gradient in the first-order pass
        for i in range(len(layers) - 1, -1, -1):
            gys[i] = gy
            gy, _ = layers[i].backward(params[slices[i]], ctx[i], gy)
        cparams = array_module(params).zeros(self.num_params, dtype=params.dtype)
        cxs, c = [], cgx
        for i, layer in enumerate(layers):  # the backward pass, reversed
            cg = None if cgparams is None else cgparams[slices[i]]
            cx, cp, c = layer.backward_vjp(params[slices[i]], ctx[i], gys[i], c, cg)
            cparams[slices[i]] += cp
            cxs.append(cx)
        acc = cxs[-1]
        for i in range(len(layers) - 2, -1, -1):  # the inputs' cotangents through the forward pass
            g_in, gp = layers[i].backward(params[slices[i]], ctx[i], acc)
            cparams[slices[i]] += gp
            acc = cxs[i] + g_in
        return acc, cparams, c
