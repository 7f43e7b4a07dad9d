"""The fast path for multilayer perceptrons: a bound field that does only the arithmetic.

*A reader learning the algorithms can skip this module*: it changes how fast a
vector field built from Dense layers is evaluated, never what it computes.
Every derivative here is :func:`tinynode.nn.dense_vjp` and the activations'
own ``vjp`` (:data:`tinynode.nn.ACTIVATIONS`), the same code the layers use.

**Why it exists.** A solve evaluates the field hundreds of times with the same
parameters on same-shaped states, and for the tutorial's 20=>10=>10=>20 network
each evaluation is only microseconds of arithmetic: the layer protocol's
per-call work (checking the parameters, slicing them into weights, building
contexts) would cost as much as the math. So :func:`bind_mlp` takes the
parameter vector once per solve (checks it, makes the views ``W`` and ``b`` of
each layer) and each evaluation is then ``x = act(x W^T + b)`` per layer.

**Bias tiles.** Adding a bias ``b`` of width 10 to a ``128 x 10`` array
broadcasts it over the rows, and NumPy then runs its inner loop 128 times over
10 numbers: that one ``+ b`` costs more than the layer's product. Adding a
``128 x 10`` copy of ``b`` instead is one flat loop, 3-4 times cheaper. The
copies ("tiles") belong to the bound field, so they live exactly as long as
the solve that made them, and are right because the parameters do not change
during a solve. On a GPU one fused kernel (:mod:`tinynode.fused`) adds and
activates instead.

**Linearizations.** An adjoint's backward step knows all its stage points
before it starts, so :meth:`MLPField.linearize` runs ONE forward pass over all
of them (``m`` times the rows, the array calls of one evaluation) and keeps
each layer's input and ``act'``; a VJP at one point is then a multiply and a
product per layer (:class:`Linearization`).
"""

import math
from typing import NamedTuple

from . import fused
from .backend import array_module, is_cupy
from .heap import keep_freed_memory
from .nn import Chain, Dense, check_params, dense_vjp
from .protocol import BoundField

__all__ = ["dense_layers", "bind_mlp", "MLPField", "Linearization"]


def dense_layers(layer):
    """``[(Dense, its parameter slice), ...]`` when ``layer`` is a Dense or a Chain of them, else None.

    Only the library's own Dense qualifies (a subclass may change what it computes). This is
    the layer's structure, not its parameters: :class:`~tinynode.VectorField` finds it once."""
    if type(layer) is Dense:
        return [(layer, slice(0, layer.num_params))]
    if type(layer) is not Chain or not all(type(sub) is Dense for sub in layer.layers):
        return None
    return list(zip(layer.layers, layer.param_slices))


def bind_mlp(layer, stack, params, shape, dtype):
    """An :class:`MLPField` for ``layer`` (of structure ``stack``, from :func:`dense_layers`) bound to
    ``params``, or None where the fast path does not apply. On the CPU it first asks the C heap
    to keep freed memory (:mod:`tinynode.heap`: large temporaries would page-fault every step)."""
    if stack is None or params is None or len(shape) == 0 or shape[-1] != stack[0][0].in_features:
        return None
    if stack[-1][0].out_features != shape[-1]:  # not a vector field on this state: the layer path says so
        return None
    if dtype != params.dtype:
        return None
    check_params(layer, params)
    if not is_cupy(params):
        keep_freed_memory()
    return MLPField(stack, params, shape, dtype)


class _Affine(NamedTuple):
    """One Dense layer of a bound MLP: its weight and bias views, their places in the gradient, its activation."""

    dense: Dense
    w: object
    w_t: object  # W^T, the view the forward product uses (made once per solve, not per evaluation)
    b: object
    w_part: slice
    b_part: slice
    act: object  # the activation's in-place forward (nn.ACTIVATIONS)


def _affine(dense, params, part):
    views = dense.unflatten(params[part])
    nw = views["weight"].size
    w_part, b_part = slice(part.start, part.start + nw), slice(part.start + nw, part.stop)
    w = views["weight"]
    return _Affine(dense, w, w.T, views["bias"], w_part, b_part, dense.activation.forward)


def _tiles(biases, rows):
    """Each bias repeated over ``rows`` rows (added to a ``(rows, width)`` array in one flat pass),
    all in one allocation."""
    memory = array_module(biases[0]).empty(rows * sum(b.shape[0] for b in biases), dtype=biases[0].dtype)
    tiles, start = [], 0
    for b in biases:
        tile = memory[start : start + rows * b.shape[0]].reshape(rows, b.shape[0])
        tile[...] = b
        tiles.append(tile)
        start += tile.size
    return tiles


class MLPField(BoundField):
    """An MLP vector field with its parameters fixed for one solve (:mod:`tinynode.protocol`).

    States are flat; each is seen as ``(rows, width)`` with ``rows`` the
    product of the leading dimensions of ``shape``.
    """

    def __init__(self, stack, params, shape, dtype):
        self.params, self.shape, self.dtype = params, tuple(shape), dtype
        self.rows = math.prod(shape[:-1])
        self.xp = xp = array_module(params)
        self.fuse = fused.enabled(xp)
        self.layers = [_affine(dense, params, part) for dense, part in stack]
        self._ones = {}  # rows -> a vector of ones (bias gradients as products: nn.dense_vjp)
        self.tiles = None if self.fuse else _tiles([layer.b for layer in self.layers], self.rows)
        self.largest_product = self.rows * max(layer.w.size for layer in self.layers)  # (tinynode.threads)

    # -- evaluation ---------------------------------------------------------------------

    def forward(self, x, out=None, tiled=True):
        """Every layer's output for the ``(rows, in)`` input ``x`` (the last one into ``out``).

        ``tiled=False`` adds the biases by broadcasting: for a one-off pass of
        another row count, making tiles would cost what they save."""
        xp, last = self.xp, len(self.layers) - 1
        biases = self.tiles if tiled and x.shape[0] == self.rows else [layer.b for layer in self.layers]
        biases = None if self.fuse else biases
        xs = [x]
        for j, layer in enumerate(self.layers):
            z = xp.dot(xs[-1], layer.w_t, out=out if j == last else None)  # z = x W^T
            if biases is None:  # on a GPU: one kernel for both lines below
                fused.bias_activation(xp, z, layer.b, layer.dense.activation.name)
            else:
                z += biases[j]  # z = x W^T + b
                layer.act(xp, z)  # x' = act(z), in place
            xs.append(z)
        return xs

    def into(self, t, y, out):
        """``out[...] = f(y)`` (the field is autonomous: ``t`` is not used)."""
        self.forward(y.reshape(self.rows, -1), out=out.reshape(self.rows, -1))
        return out

    def into_keeping(self, t, y, out):
        """``into``, returning the hidden layers' outputs: with ``y`` and ``f(y)`` they are all a VJP needs."""
        return self.forward(y.reshape(self.rows, -1), out=out.reshape(self.rows, -1))[1:-1]

    def _ones_for(self, rows):
        ones = self._ones.get(rows)
        if ones is None:
            ones = self._ones[rows] = self.xp.ones(rows, dtype=self.dtype)
        return ones

    def _act_vjp(self, dense, y, g):
        if self.fuse:
            return fused.activation_vjp(self.xp, y, g, dense.activation.name)
        return dense.activation.vjp(self.xp, y, g)

    # -- derivatives ----------------------------------------------------------------------

    def _backward(self, xs, g, need_params):
        """The VJP through the layers from the output cotangent ``g``: ``(gx, gparams or None)``."""
        gp = self.xp.empty(self.params.shape[0], dtype=self.dtype) if need_params else None
        ones = self._ones_for(g.shape[0])
        for j in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[j]
            gz = self._act_vjp(layer.dense, xs[j + 1], g)  # gz = g * act'(z)
            gw, gb = (gp[layer.w_part].reshape(layer.w.shape), gp[layer.b_part]) if need_params else (None, None)
            g = dense_vjp(gz, xs[j], layer.w, gw, gb, ones=ones)  # gW, gb; gx = gz W
        return g, gp

    def vjp(self, t, y, v, need_params=True):
        """``(v^T df/dy, v^T df/dparams or None)``, flat: a forward pass, then the layers' VJPs in reverse."""
        xs = self.forward(y.reshape(self.rows, -1))
        gx, gp = self._backward(xs, v.reshape(self.rows, -1), need_params)
        return gx.reshape(-1), gp

    def vjp_kept(self, t, y, value, kept, v, need_params=True):
        """``vjp`` without the forward pass: the layers' inputs and outputs are ``y``, ``kept`` and ``value``."""
        xs = [y.reshape(self.rows, -1), *kept, value.reshape(self.rows, -1)]
        gx, gp = self._backward(xs, v.reshape(self.rows, -1), need_params)
        return gx.reshape(-1), gp

    def value_and_vjp(self, t, y, v):
        """``(f(y), v^T df/dy, v^T df/dparams)``, flat, from one forward pass."""
        xs = self.forward(y.reshape(self.rows, -1))
        gx, gp = self._backward(xs, v.reshape(self.rows, -1), True)
        return xs[-1].reshape(-1), gx.reshape(-1), gp

    def linearize(self, ys, sign=1.0):
        """The Jacobians of ``sign * f`` at the ``m`` flat points ``ys`` (``(m, n)``): a :class:`Linearization`."""
        return Linearization(self, ys, sign)


class Linearization:
    """An MLP field's Jacobian factors at ``m`` points (made by :meth:`MLPField.linearize`).

    For ``x_{l+1} = act(x_l W_l^T + b_l)`` one forward pass over all points keeps
    each layer's input ``x_l`` and ``D_l = act'(z_l)`` (``sign`` folded into the
    last layer's). The VJP at point ``i`` is then, per layer from the last,
    ``g_z = g * D_l[i]`` and :func:`tinynode.nn.dense_vjp`.
    """

    def __init__(self, field, ys, sign):
        self.field, xp = field, field.xp
        m, rows = ys.shape[0], field.rows
        xs = field.forward(ys.reshape(m * rows, -1), tiled=False)
        self.xs, self.ds = [], []
        for j, layer in enumerate(field.layers):
            scale = xp.full(xs[j + 1].shape, sign if j == len(field.layers) - 1 else 1.0, dtype=ys.dtype)
            self.ds.append(field._act_vjp(layer.dense, xs[j + 1], scale).reshape(m, rows, -1))  # D_l = act'(z_l)
            self.xs.append(xs[j].reshape(m, rows, -1))
        self.m = m

    def vjp(self, i, v, out=None, gparams=None):
        """``sign * v^T df/dy`` at point ``i`` (flat, into ``out`` if given); with ``gparams`` (flat,
        like the parameters) also ``sign * v^T df/dparams`` into it."""
        f = self.field
        g = v.reshape(f.rows, -1)
        ones = f._ones_for(f.rows)
        for j in range(len(f.layers) - 1, -1, -1):
            layer = f.layers[j]
            gw, gb = (
                (gparams[layer.w_part].reshape(layer.w.shape), gparams[layer.b_part])
                if gparams is not None
                else (None, None)
            )
            target = None if j or out is None else out.reshape(f.rows, -1)
            g = dense_vjp(g * self.ds[j][i], self.xs[j][i], layer.w, gw, gb, ones=ones, out=target)  # g_z = g D_l
        return g.reshape(-1)

    def param_vjp_sum(self, vs):
        """``sum_i sign * vs[i]^T df/dparams(point i)``, flat like the parameters (``vs``: ``(m, n)``).

        The VJP is linear in ``v``, so a quadrature's weights go into ``vs``, and
        the sum over points and rows of each layer is one product ``G^T X``."""
        f = self.field
        total = self.m * f.rows
        gp = f.xp.empty(f.params.shape[0], dtype=f.dtype)
        ones = f._ones_for(total)
        g = vs.reshape(total, -1)
        for j in range(len(f.layers) - 1, -1, -1):
            layer = f.layers[j]
            gz = g * self.ds[j].reshape(total, -1)
            gw, gb = gp[layer.w_part].reshape(layer.w.shape), gp[layer.b_part]
            g = dense_vjp(gz, self.xs[j].reshape(total, -1), layer.w, gw, gb, need_gx=j > 0, ones=ones)
        return gp
