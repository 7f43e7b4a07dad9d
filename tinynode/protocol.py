"""The vector-field protocol: what the solver and the adjoints ask of ``f``.

A *vector field* is any object ``f`` with::

    f(t, y, params)          -> dy/dt, with y's shape and dtype          (required)
    f.vjp(t, y, params, v)   -> (v^T df/dy, v^T df/dparams)              (for gradients)
    f.value_and_vjp(t, y, params, v) -> (f, v^T df/dy, v^T df/dparams)  (optional: one forward pass)
    f.bind(params, shape, dtype) -> a BoundField, or None               (optional, for speed)

A plain function ``f(t, y, params)`` is a vector field for :func:`tinynode.solve`.
:class:`tinynode.VectorField` makes one, with its VJP, from any layer.

During one solve the parameters and the state's shape never change, so the
solver and the adjoints work with the field *bound* to them: a
:class:`BoundField`, made once per solve by :func:`bind`. Its methods take and
give FLAT states (the solver's rows)::

    bound.into(t, y, out)                 out[...] = f(t, y)
    bound.vjp(t, y, v, need_params=True)  (v^T df/dy, v^T df/dparams or None), flat
    bound.value_and_vjp(t, y, v)          (f(t, y), v^T df/dy, v^T df/dparams), flat
    bound.linearize(ys, sign)             the Jacobians at several points at once, or None
    bound.prepare(times)                  called by the step with all its stage times first
    bound.into_keeping(t, y, out)         into, returning what a later VJP here can reuse (or None)
    bound.vjp_kept(t, y, value, kept, v)  vjp at a point evaluated by into_keeping (value: f there)
    bound.largest_product                 multiply-adds of its largest matrix product, or None

The base class implements them from ``f`` and ``f.vjp`` alone. A field that
can do better returns its own BoundField from ``f.bind``: the layers' fast
path does (:mod:`tinynode.fastmlp`), and so do the adjoints' augmented
right-hand sides, which use ``prepare`` to linearize the forward field at every
stage of a backward step in one pass. None of this changes the mathematics;
a reader can skip it.
"""

from .errors import DTypeError, ShapeError

__all__ = ["BoundField", "bind"]


def bind(f, params, shape: tuple, dtype) -> "BoundField":
    """The field ``f`` bound to ``params`` for one solve of states of ``shape`` and ``dtype``."""
    if isinstance(f, BoundField):
        return f  # already bound (solve_with_vjp binds once for both passes)
    binder = getattr(f, "bind", None)
    bound = None if binder is None else binder(params, tuple(shape), dtype)
    return BoundField(f, params, shape, dtype) if bound is None else bound


class BoundField:
    """A vector field with its parameters fixed for one solve (the protocol's reference form)."""

    #: Multiply-adds of the field's largest matrix product per evaluation, when known: it
    #: chooses the BLAS threads of a solve (:mod:`tinynode.threads`). Unknown here.
    largest_product = None

    def __init__(self, f, params, shape, dtype):
        self.f, self.params, self.shape, self.dtype = f, params, tuple(shape), dtype

    def into(self, t, y, out):
        """``out[...] = f(t, y)`` for a flat ``y``, after checking f's shape and dtype."""
        k = self.f(t, y.reshape(self.shape), self.params)
        if getattr(k, "shape", None) != self.shape:
            raise ShapeError(
                f"the vector field returned shape {getattr(k, 'shape', type(k).__name__)} near "
                f"t = {t}, but the state has shape {self.shape}; f must return dy/dt with y's shape."
            )
        if k.dtype != self.dtype:
            raise DTypeError(
                f"the vector field returned dtype {k.dtype} near t = {t} for a {self.dtype} state; "
                "return the state's dtype (tinynode never promotes silently)."
            )
        out.reshape(self.shape)[...] = k
        return out

    def vjp(self, t, y, v, need_params=True):
        """``(v^T df/dy, v^T df/dparams)`` at a flat ``y``, both flat; ``need_params=False``
        allows skipping the second (None then)."""
        gy, gp = self.f.vjp(t, y.reshape(self.shape), self.params, v.reshape(self.shape))
        return gy.reshape(-1), (None if gp is None or not need_params else gp.reshape(-1))

    def value_and_vjp(self, t, y, v):
        """``(f(t, y), v^T df/dy, v^T df/dparams)``, flat (one forward pass where the field can)."""
        both = getattr(self.f, "value_and_vjp", None)
        if both is None:
            value = self.f(t, y.reshape(self.shape), self.params).reshape(-1)
            return (value, *self.vjp(t, y, v))
        value, gy, gp = both(t, y.reshape(self.shape), self.params, v.reshape(self.shape))
        return value.reshape(-1), gy.reshape(-1), (None if gp is None else gp.reshape(-1))

    def linearize(self, ys, sign=1.0):
        """The Jacobians of ``sign * f`` at the rows of ``ys`` in one pass, or None (not offered here)."""
        return None

    def prepare(self, times):
        """Called by the step with the times of all its stages before it evaluates any (no-op here)."""

    def into_keeping(self, t, y, out):
        """``into``, returning what a VJP at this point could reuse later (None: nothing, here).

        The discrete adjoint keeps it per stage (:mod:`tinynode.adjoints.steprecord`),
        so that its VJP does not repeat the forward pass."""
        self.into(t, y, out)
        return None

    def vjp_kept(self, t, y, value, kept, v, need_params=True):
        """``vjp`` at a point that ``into_keeping`` evaluated to ``value``, reusing what it ``kept``."""
        return self.vjp(t, y, v, need_params)
