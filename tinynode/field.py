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

__all__ = ["VectorField", "FrozenField", "Linearization"]


class VectorField:
    """A layer ``y -> layer(params, y)`` seen as an autonomous vector field.

    Beyond the protocol it offers forms that the solver and the adjoints use
    when present: ``value_and_vjp`` (one forward pass gives both ``f`` and the
    VJPs, which BacksolveAdjoint needs at the same point), ``vjp(...,
    need_params=False)`` (GaussAdjoint's state-only product) and ``freeze``
    (the field with its parameters fixed for one solve: :class:`FrozenField`).

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
        self._bound_to, self._bound, self._bound_memory = None, None, None
        self._tile_buffers = {}  # rows -> per-layer bias tiles of the bound parameters (FrozenField)
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

    def freeze(self, params, shape, dtype):
        """This field with ``params`` fixed for one solve of states of ``shape``, or None.

        A :class:`FrozenField` (only on the MLP fast path, and not for a subclass
        that overrides ``__call__`` or ``vjp``; None otherwise) may prepare
        things that stay valid only while the parameters do not change, which
        they never do during one solve: the solver and the adjoints make one per
        solve.
        """
        if self._stack is None or params is None or len(shape) == 0 or shape[-1] != self._in \
                or dtype != params.dtype:
            return None
        if type(self).__call__ is not VectorField.__call__ or type(self).vjp is not VectorField.vjp:
            return None  # a subclass that changes f or its VJP: the frozen forms would not follow it
        return FrozenField(self, params, math.prod(shape[:-1]))

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
        if params is not self._bound_to and not self._same_memory(params):
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
            self._bound_memory = _memory(params)
            self._tile_buffers = {}  # a solve frozen on other parameters keeps its own
        return self._bound

    def _same_memory(self, params):
        # A Chain hands its layers a new view of the same flat vector on every call: the bound
        # views (and tiles) are still right for an array with the same memory and layout. The
        # bound views keep that memory alive, so an equal address is the same memory.
        if self._bound_to is None or type(params) is not type(self._bound_to):
            return False
        if _memory(params) != self._bound_memory:
            return False
        self._bound_to = params
        return True

    def _bias_tiles(self, params, rows):
        """``[(b repeated over `rows` rows, in-place activation), ...]`` per layer, refreshed from ``params``.

        The buffers are kept from solve to solve for the bound parameter array,
        and each :class:`FrozenField` refreshes them once (one copy per layer):
        an optimiser changes the values in place between solves. A nested solve
        on the same parameters refreshes them with the same values.
        """
        _, layers = self._bind(params)
        buffers = self._tile_buffers.get(rows)
        if buffers is None:
            if len(self._tile_buffers) >= 4:  # many batch sizes: keep the memory bounded
                self._tile_buffers.clear()
            buffers = self._tile_buffers[rows] = [
                array_module(params).empty((rows, d.out_features), dtype=params.dtype) for _, d in self._stack]
        for tile, (_, _, _, (_, _, b_slice)) in zip(buffers, layers):
            tile[...] = params[b_slice]
        return [(tile, d._act) for tile, (_, d) in zip(buffers, self._stack)]

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


class FrozenField:
    """A :class:`VectorField` with its parameters fixed for one solve (made by ``freeze``).

    **Why freeze.** Adding a bias ``b`` of width 10 to a ``128 x 10`` array
    broadcasts it over the rows, and NumPy then runs its inner loop 128 times
    over 10 numbers: that one ``+ b`` costs more than the layer's matrix
    product. Adding a ``128 x 10`` copy of ``b`` instead is a single flat loop,
    3-4 times cheaper, and saves about a quarter of an evaluation. The copies
    ("tiles") are right only while ``b`` does not change, which it does between
    solves (an optimiser updates the parameters in place): their buffers stay
    on the field, and each frozen field refreshes their values once, at its
    first evaluation. On a GPU the fused bias kernel broadcasts for free and no
    tiles are made.

    ``into(t, y, out)`` evaluates f into a row of the solver's stage buffer;
    ``linearize(ys, sign)`` gives a :class:`Linearization` at several points.
    """

    def __init__(self, field, params, rows):
        self.field, self.params, self.rows = field, params, rows
        self.xp, self.layers = field._bind(params)
        self.fuse = fused.enabled(self.xp)
        self._tiles = {}

    def forward(self, x, out=None, tiled=True):
        """Every layer's output for the ``(rows, in)`` input ``x`` (the last into ``out``).

        ``tiled=False`` adds the biases by broadcasting: for a one-off pass, making
        the tiles would cost what they save."""
        xp = self.xp
        tiles = None if (self.fuse or not tiled) else self._tiles_for(x.shape[0])
        xs = [x]
        for j, (w_t, bias_act, _, _) in enumerate(self.layers):
            z = xp.dot(xs[-1], w_t, out=out if j == len(self.layers) - 1 else None)
            if tiles is None:
                bias_act(z)
            else:
                z += tiles[j][0]
                if tiles[j][1] is not None:
                    tiles[j][1](xp, z)
            xs.append(z)
        return xs

    def into(self, t, y, out):
        """``out[...] = f(t, y)``; ``out`` is C-contiguous with y's shape and dtype."""
        self.forward(y.reshape(self.rows, -1), out=out.reshape(self.rows, -1))
        return out

    def linearize(self, ys, sign=1.0):
        """The Jacobians of ``sign * f`` at the points ``ys`` (shape ``(m, *y.shape)``)."""
        return Linearization(self, ys, sign)

    def _tiles_for(self, rows):
        tiles = self._tiles.get(rows)
        if tiles is None:
            tiles = self._tiles[rows] = self.field._bias_tiles(self.params, rows)
        return tiles


class Linearization:
    """An MLP field's Jacobian factors at ``m`` points (made by :meth:`FrozenField.linearize`).

    For ``x_{l+1} = act(x_l W_l^T + b_l)`` the VJP of one layer is
    ``g_z = g * act'(z_l)`` and then ``g_x = g_z W_l``, ``g_W = g_z^T x_l``,
    ``g_b = sum over rows of g_z``. One forward pass over all ``m`` points
    (``m`` times the rows, the same number of array calls as one evaluation)
    keeps each layer's input ``x_l`` and ``D_l = act'(z_l)``; a VJP at point
    ``i`` is then one multiply and one product per layer, plus two products per
    layer for the parameter part. ``sign`` is folded into the last layer's
    ``D`` (the adjoint needs ``-v^T df/dy``).
    """

    def __init__(self, frozen, ys, sign):
        xp, layers = frozen.xp, frozen.layers
        self.xp, self.layers, self.params = xp, layers, frozen.params
        self.m = ys.shape[0]
        self.point_shape = ys.shape[1:]
        per = math.prod(ys.shape[1:-1])
        xs = frozen.forward(ys.reshape(self.m * per, -1), tiled=False)
        self.ds = []
        for j, (_, _, act_vjp, _) in enumerate(layers):
            scale = sign if j == len(layers) - 1 else 1.0
            d = act_vjp(xs[j + 1], xp.asarray(scale, dtype=ys.dtype))  # D_l = scale * act'(z_l)
            if d.shape != xs[j + 1].shape:  # the identity: act' = 1
                d = xp.full(xs[j + 1].shape, scale, dtype=ys.dtype)
            self.ds.append(d)
        self.xs = [x.reshape(self.m, per, x.shape[-1]) for x in xs]
        self.ds = [d.reshape(self.m, per, d.shape[-1]) for d in self.ds]
        self.ones = frozen.field._ones_row(xp, per, ys.dtype)
        self._ones_all = None

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

    def param_vjp_sum(self, vs):
        """``sum_i sign * vs[i]^T df/dparams(point i)``, flat like the parameters (``vs``: ``(m, *y.shape)``).

        A quadrature of the parameter VJP over all the points at once (put the
        weights into ``vs``: the VJP is linear in ``v``): the backward pass runs
        stacked, and each layer's sum over points and rows is one product,
        ``g_W = G^T X`` with ``G`` the ``(m rows, out)`` stack of ``g_z``.
        """
        xp = self.xp
        rows = self.m * self.ds[-1].shape[1]
        out = xp.empty(self.params.shape[0], dtype=self.params.dtype)
        ones = self._ones_stack(rows)
        g = vs.reshape(self.ds[-1].shape)
        for j in range(len(self.layers) - 1, -1, -1):
            w_t, _, _, (w_slice, w_shape, b_slice) = self.layers[j]
            G = (g * self.ds[j]).reshape(rows, -1)                          # g_z at every point
            xp.dot(G.T, self.xs[j].reshape(rows, -1), out=out[w_slice].reshape(w_shape))  # g_W = G^T X
            xp.dot(ones, G, out=out[b_slice])                               # g_b = 1^T G
            if j:
                g = xp.dot(G, w_t.T).reshape(self.xs[j].shape)              # g_x = G W
        return out

    def _ones_stack(self, length):
        if self._ones_all is None or self._ones_all.shape[0] != length:
            self._ones_all = self.xp.ones(length, dtype=self.params.dtype)
        return self._ones_all


def _memory(a):
    """``(address, shape, strides, dtype)`` of an array's data (NumPy or CuPy)."""
    data = a.data
    address = data.ptr if hasattr(data, "ptr") else a.__array_interface__["data"][0]
    return address, a.shape, a.strides, a.dtype


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
