"""VectorField: any layer seen as a vector field ``f(t, y, params) = layer(params, y)``.

The solver needs ``f``; the adjoints also need products of a vector ``v`` with
f's Jacobians (:mod:`tinynode.protocol`)::

    field(t, y, params)             -> dy/dt
    field.vjp(t, y, params, v)      -> (v^T df/dy, v^T df/dparams)

:class:`VectorField` makes both from a layer's ``forward`` and ``backward``
(the field is autonomous: the layer does not see ``t``). Check a hand-written
field with ``tinynode.testing.gradcheck(field, y, params, t=...)``.
"""

from .errors import ArgumentError
from .fastmlp import bind_mlp, dense_layers

__all__ = ["VectorField"]


class VectorField:
    """A layer ``y -> layer(params, y)`` as an autonomous vector field.

    ``bind`` offers the solver a faster form for one solve when the layer is a
    stack of Dense layers (:mod:`tinynode.fastmlp`); the values and derivatives
    are the same. A subclass that changes ``__call__`` or ``vjp`` is always
    evaluated through them.
    """

    def __init__(self, layer):
        if not all(hasattr(layer, m) for m in ("forward", "backward", "num_params")):
            raise ArgumentError(f"VectorField needs a layer with forward, backward and num_params, got {layer!r}")
        self.layer = layer
        self.mlp = dense_layers(layer)  # its structure, if it is a stack of Dense layers (tinynode.fastmlp)

    def __repr__(self):
        return f"VectorField({self.layer!r})"

    def __call__(self, t, y, params):
        return self.layer(params, y)

    def vjp(self, t, y, params, v, *, need_params=True):
        """``(v^T df/dy, v^T df/dparams)``; the second is None when ``need_params`` is False."""
        out, ctx = self.layer.forward(params, y)
        gy, gp = self.layer.backward(params, ctx, v)
        return gy, (gp if need_params else None)

    def value_and_vjp(self, t, y, params, v):
        """``(f(t, y), v^T df/dy, v^T df/dparams)`` from one forward pass."""
        out, ctx = self.layer.forward(params, y)
        gy, gp = self.layer.backward(params, ctx, v)
        return out, gy, gp

    def bind(self, params, shape, dtype):
        """The fast form for one solve (:func:`tinynode.fastmlp.bind_mlp`), or None (use the protocol's)."""
        if type(self).__call__ is not VectorField.__call__ or type(self).vjp is not VectorField.vjp:
            return None  # a subclass that changes f or its VJP: the fast form would not follow it
        return bind_mlp(self.layer, self.mlp, params, shape, dtype)
