"""Vector fields: ``f(t, y, params)`` together with its vector-Jacobian product.

The adjoint methods need, besides ``f`` itself, the products of a vector ``v``
with f's Jacobians::

    field(t, y, params)             -> dy/dt
    field.vjp(t, y, params, v)      -> (v^T df/dy, v^T df/dparams)

Any object with these two methods is a vector field. :class:`VectorField` makes
one from any tinynode layer (autonomous: the layer does not see ``t``); check a
hand-written one with ``tinynode.testing.gradcheck(field, y, params, t=...)``.
"""

import math

from . import fused
from .backend import array_module
from .nn import _check_params, dense_stack

__all__ = ["VectorField", "Linearization"]


class VectorField:
    """A layer ``y -> layer(params, y)`` seen as an autonomous vector field.

    Beyond the protocol it offers two fused forms that the adjoints use when
    present: ``value_and_vjp`` (one forward pass gives both ``f`` and the VJPs,
    which BacksolveAdjoint needs at the same point) and ``vjp(...,
    need_params=False)`` (GaussAdjoint's state-only product).

    **The MLP fast path.** A solve calls the field hundreds of times with the
    same parameters and same-shaped states, and for the tutorial's 20=>10=>10=>20
    network each call does only microseconds of arithmetic: the layer protocol's
    per-call work (checking the parameters, slicing them into weights, building
    contexts) would cost as much as the math. So when the layer is a stack of
    Dense layers (a Dense, or a Chain of them), the field *binds* the parameter
    vector once -- checks it and makes views ``W^T`` and ``b`` of each layer --
    and each call is then just ``x = act(x W^T + b)`` per layer, three array
    calls. The views stay valid while an optimiser updates the parameters in
    place; a different parameter array is bound anew. Inputs that do not fit
    (another dtype or width) take the layer's own path, which raises its error.
    The VJP is the same as :meth:`tinynode.nn.Dense.backward`, layer by layer.
    """

    def __init__(self, layer):
        if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
            raise TypeError(f"VectorField needs a layer with forward and backward, got {layer!r}")
        self.layer = layer
        self._stack = dense_stack(layer)
        self._in = None if self._stack is None else self._stack[0][1].in_features
        self._bound_to, self._bound = None, None
        self._ones = None

    def __repr__(self):
        return f"VectorField({self.layer!r})"

    def __call__(self, t, y, params):
        if not self._fast(y, params):
            return self.layer.forward(params, y)[0]
        xp, layers = self._bind(params)
        x = y
        for w_t, bias_act, _, _ in layers:
            x = xp.dot(x, w_t)  # a fresh array: bias_act works in place and never touches y
            bias_act(x)
        return x

    def evaluate_into(self, t, y, params, out):
        """``out[...] = f(t, y)``, writing the last layer straight into ``out``.

        The solver keeps every stage derivative in rows of one buffer; this saves
        the copy from a fresh array into that row (one array call per evaluation).
        ``out`` must be C-contiguous with y's shape and dtype.
        """
        if not self._fast(y, params) or out.dtype != y.dtype or out.shape != y.shape:
            from .odeint import _store  # checks the shape and dtype, with the solver's messages
            _store(self(t, y, params), t, out.shape, out.dtype, out)
            return out
        xp, layers = self._bind(params)
        x = y
        for j, (w_t, bias_act, _, _) in enumerate(layers):
            if j == len(layers) - 1:
                x = xp.dot(x, w_t, out=out.reshape(x.shape[:-1] + (w_t.shape[1],)))
            else:
                x = xp.dot(x, w_t)
            bias_act(x)
        return out

    def linearize(self, ys, params, sign=1.0):
        """The Jacobians of ``sign * f`` at ``m`` points at once, or None off the fast path.

        ``ys`` has shape ``(m, *y.shape)``. One forward pass over all ``m``
        points (``m`` times the rows, the same number of array calls as one
        evaluation) keeps each layer's input and its activation derivative
        ``act'(z)``; then :meth:`Linearization.vjp` at any of the points is only
        a product per layer. The adjoints use it for the stages of a backward
        step, whose forward states are all known before the step begins.
        """
        if not self._fast(ys, params):
            return None
        return Linearization(self, ys, params, sign)

    def vjp(self, t, y, params, v, *, need_params=True):
        """``(v^T df/dy, v^T df/dparams)``; the second is None when ``need_params`` is False."""
        if not self._fast(y, params):
            _, ctx = self.layer.forward(params, y)
            gy, gp = self.layer.backward(params, ctx, v)
            return gy, (gp if need_params else None)
        return self._mlp_vjp(y, params, v, need_params)[1:]

    def value_and_vjp(self, t, y, params, v):
        """``(f(t, y), v^T df/dy, v^T df/dparams)`` from one forward pass."""
        if not self._fast(y, params):
            out, ctx = self.layer.forward(params, y)
            gy, gp = self.layer.backward(params, ctx, v)
            return out, gy, gp
        value, gy, gp = self._mlp_vjp(y, params, v, True)
        return value.reshape(y.shape), gy, gp

    # -- the MLP fast path ---------------------------------------------------

    def _fast(self, y, params):
        return (self._stack is not None and params is not None and y.dtype == params.dtype
                and y.shape[-1:] == (self._in,))

    def _bind(self, params):
        """``(xp, [(W^T, bias_act, act_vjp, gradient slices), ...])`` for this parameter array.

        ``bias_act(z)`` does ``z = act(z + b)`` in place and ``act_vjp(y, g)``
        returns ``g * act'`` given ``y = act(z)``: the NumPy calls of
        :class:`~tinynode.nn.Dense`, or one fused kernel each on a GPU
        (:mod:`tinynode.fused`).
        """
        if params is not self._bound_to:
            _check_params(self.layer, params)
            xp = array_module(params)
            fuse = fused.enabled(xp)
            layers = []
            for offset, d in self._stack:
                w = params[offset: offset + d._nw].reshape(d.out_features, d.in_features)
                b = params[offset + d._nw: offset + d.num_params]
                grad_slices = (slice(offset, offset + d._nw), (d.out_features, d.in_features),
                               slice(offset + d._nw, offset + d.num_params))
                layers.append((w.T, *_activation_steps(xp, d, b, fuse), grad_slices))
            self._bound_to, self._bound = params, (xp, layers)
        return self._bound

    def _mlp_vjp(self, y, params, v, need_params):
        xp, layers = self._bind(params)
        rows = math.prod(y.shape[:-1])
        xs = [y.reshape(rows, self._in)]  # each layer's input, then the output
        for w_t, bias_act, _, _ in layers:
            x = xp.dot(xs[-1], w_t)
            bias_act(x)
            xs.append(x)
        g = v.reshape(rows, -1)
        gp = None
        if need_params:
            gp = xp.empty(params.shape[0], dtype=params.dtype)
            ones = self._ones_row(xp, rows, params.dtype)
        for i in range(len(layers) - 1, -1, -1):
            w_t, _, act_vjp, (w_slice, w_shape, b_slice) = layers[i]
            gz = act_vjp(xs[i + 1], g)                                 # gz = g * act'(z)
            if need_params:
                xp.dot(gz.T, xs[i], out=gp[w_slice].reshape(w_shape))  # gW = gz^T x
                xp.dot(ones, gz, out=gp[b_slice])                      # gb = sum over rows of gz
            g = xp.dot(gz, w_t.T)                                      # gx = gz W
        return xs[-1], g.reshape(y.shape), gp

    def _ones_row(self, xp, rows, dtype):
        # The bias gradient as a (1 x rows) @ (rows x out) product: one BLAS call,
        # several times cheaper than gz.sum(axis=0) for these small matrices.
        if self._ones is None or self._ones.shape[0] != rows or self._ones.dtype != dtype \
                or array_module(self._ones) is not xp:
            self._ones = xp.ones(rows, dtype=dtype)
        return self._ones


class Linearization:
    """An MLP field's Jacobian factors at ``m`` points (made by :meth:`VectorField.linearize`).

    For ``x_{l+1} = act(x_l W_l^T + b_l)`` the VJP of one layer is
    ``g_z = g * act'(z_l)`` and then ``g_x = g_z W_l``, ``g_W = g_z^T x_l``,
    ``g_b = sum over rows of g_z``: with ``D_l = act'(z_l)`` and ``x_l`` kept for
    every point, a VJP at point ``i`` is one multiply and one product per layer,
    plus two products per layer for the parameter part. ``sign`` is folded into
    the last layer's ``D`` (the adjoint needs ``-v^T df/dy``).
    """

    def __init__(self, field, ys, params, sign):
        xp, layers = field._bind(params)
        self.xp, self.layers, self.params = xp, layers, params
        self.m = ys.shape[0]
        self.point_shape = ys.shape[1:]
        rows = self.m * math.prod(ys.shape[1:-1])
        self.xs = [ys.reshape(rows, -1)]  # each layer's input over all points
        self.ds = []
        for w_t, bias_act, act_vjp, _ in layers:
            x = xp.dot(self.xs[-1], w_t)
            bias_act(x)
            self.xs.append(x)
        for j, (_, _, act_vjp, _) in enumerate(layers):
            x = self.xs[j + 1]
            scale = sign if j == len(layers) - 1 else 1.0
            self.ds.append(act_vjp(x, xp.full(x.shape, scale, dtype=x.dtype)))  # D_l = scale * act'(z_l)
        per = rows // self.m
        self.xs = [x.reshape(self.m, per, x.shape[-1]) for x in self.xs]
        self.ds = [d.reshape(self.m, per, d.shape[-1]) for d in self.ds]
        self.ones = field._ones_row(xp, per, params.dtype)

    def vjp(self, i, v, out=None, gparams=None):
        """``sign * v^T df/dy`` at point ``i`` (into ``out`` if given); with ``gparams``
        (a flat array like the parameters) also ``sign * v^T df/dparams`` into it."""
        xp = self.xp
        g = v.reshape(self.ds[-1].shape[1:])
        for j in range(len(self.layers) - 1, -1, -1):
            w_t, _, _, (w_slice, w_shape, b_slice) = self.layers[j]
            gz = g * self.ds[j][i]                                             # g_z = g * act'(z)
            if gparams is not None:
                xp.dot(gz.T, self.xs[j][i], out=gparams[w_slice].reshape(w_shape))  # g_W = g_z^T x
                xp.dot(self.ones, gz, out=gparams[b_slice])                        # g_b = 1^T g_z
            if j == 0 and out is not None:
                return xp.dot(gz, w_t.T, out=out.reshape(gz.shape[0], w_t.shape[0])).reshape(out.shape)
            g = xp.dot(gz, w_t.T)                                              # g_x = g_z W
        return g.reshape(self.point_shape)

    def weighted_param_vjp(self, vs, weights):
        """``sum_i weights[i] * sign * vs[i]^T df/dparams(point i)``, a flat array like the parameters.

        A quadrature of the parameter VJP over all the points at once: the
        backward pass runs stacked (``vs`` has shape ``(m, *y.shape)``), and
        each layer's weighted sum is one product, ``g_W = (w * G)^T X`` with
        every row of point ``i`` scaled by ``w_i``.
        """
        xp, m = self.xp, self.m
        w = xp.asarray(weights, dtype=self.params.dtype).reshape(m, 1, 1)
        out = xp.empty(self.params.shape[0], dtype=self.params.dtype)
        g = vs.reshape(self.ds[-1].shape)
        for j in range(len(self.layers) - 1, -1, -1):
            w_t, _, _, (w_slice, w_shape, b_slice) = self.layers[j]
            gz = g * self.ds[j]                                   # (m, rows, out)
            gzw = (gz * w).reshape(-1, gz.shape[-1])
            x = self.xs[j].reshape(-1, self.xs[j].shape[-1])
            xp.dot(gzw.T, x, out=out[w_slice].reshape(w_shape))
            xp.sum(gzw, axis=0, out=out[b_slice])
            if j:
                g = xp.matmul(gz, w_t.T)
        return out


def _activation_steps(xp, dense, b, fuse):
    """``(bias_act, act_vjp)`` for one Dense layer (see :meth:`VectorField._bind`)."""
    if fuse:
        name = dense.activation
        return ((lambda z: fused.bias_activation(xp, z, b, name)),
                (lambda y, g: fused.activation_vjp(xp, y, g, name)))
    act, dact = dense._act, dense._dact

    def bias_act(z):
        z += b
        if act is not None:
            act(xp, z)

    def act_vjp(y, g):
        return g if dact is None else dact(xp, y, g)

    return bias_act, act_vjp
