"""Vector fields: ``f(t, y, params)`` together with its vector-Jacobian product.

The adjoint methods need, besides ``f`` itself, the products of a vector ``v``
with f's Jacobians::

    field(t, y, params)             -> dy/dt
    field.vjp(t, y, params, v)      -> (v^T df/dy, v^T df/dparams)

Any object with these two methods is a vector field. :class:`VectorField` makes
one from any tinynode layer (autonomous: the layer does not see ``t``); check a
hand-written one with ``tinynode.testing.gradcheck(field, y, params, t=...)``.
"""

__all__ = ["VectorField"]


class VectorField:
    """A layer ``y -> layer(params, y)`` seen as an autonomous vector field.

    Beyond the protocol it offers two fused forms that the adjoints use when
    present: ``value_and_vjp`` (one forward pass gives both ``f`` and the VJPs,
    which BacksolveAdjoint needs at the same point) and ``vjp(...,
    need_params=False)`` (GaussAdjoint's state-only product).
    """

    def __init__(self, layer):
        if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
            raise TypeError(f"VectorField needs a layer with forward and backward, got {layer!r}")
        self.layer = layer

    def __repr__(self):
        return f"VectorField({self.layer!r})"

    def __call__(self, t, y, params):
        return self.layer.forward(params, y)[0]

    def vjp(self, t, y, params, v, *, need_params=True):
        """``(v^T df/dy, v^T df/dparams)``; the second is None when ``need_params`` is False."""
        _, ctx = self.layer.forward(params, y)
        gy, gp = self.layer.backward(params, ctx, v)
        return gy, (gp if need_params else None)

    def value_and_vjp(self, t, y, params, v):
        """``(f(t, y), v^T df/dy, v^T df/dparams)`` from one forward pass."""
        out, ctx = self.layer.forward(params, y)
        gy, gp = self.layer.backward(params, ctx, v)
        return out, gy, gp
