"""What every adjoint shares: the forward record, observations, and the backward solve.

The loss may look at the solution at several output times ``t_k``. Going
backward from ``t1``, the adjoint ``lambda = dL/dy(t)`` starts at the
cotangent of the output at ``t1`` and *jumps* by ``dL/dy(t_k)`` at every other
output time (docs/adjoints.md, "The adjoint equations"); an output at ``t0`` adds to ``dL/dy0``
directly. The backward solve lands exactly on each ``t_k`` (a tstop of the
engine) and applies the jump there, keeping its step size.
"""

from dataclasses import dataclass

import numpy as np

from ..backend import array_module
from ..errors import ArgumentError, ShapeError
from ..field import VectorField
from ..odeint import integrate


@dataclass
class Forward:
    """What the forward pass leaves for the backward one."""

    field: object
    params: object
    y0: object            # flat
    shape: tuple
    t0: float
    t1: float
    times: list           # output times
    y_out: object         # (len(times), n), flat rows
    tableau: object
    rtol: float
    atol: float
    max_steps: int
    controller: object
    dt0: float = None     # the forward's first step, if given (fixed-step methods reuse it backward)
    dense: object = None  # the DenseOutput (every accepted step), when the method needs it

    @property
    def n(self):
        return self.y0.size


def backward_tolerances(sensealg, fwd_rtol, fwd_atol):
    """The backward solve uses the forward tolerances unless the sensealg names its own."""
    rtol = fwd_rtol if sensealg.rtol is None else sensealg.rtol
    atol = fwd_atol if sensealg.atol is None else sensealg.atol
    if not isinstance(rtol, float) or not isinstance(atol, float):
        raise ArgumentError("per-component tolerances do not carry over to the adjoint's augmented state; "
                            "give the sensealg scalar rtol= and atol= for the backward solve")
    return rtol, atol


class Observations:
    """The output cotangents, split into the start value, the jumps, and the t0 term."""

    def __init__(self, fwd, gy):
        xp = array_module(fwd.y0)
        gy = xp.asarray(gy)
        expected = (len(fwd.times),) + tuple(fwd.shape)
        if gy.shape != expected:
            raise ShapeError(f"the cotangent must have the shape of sol.y, {expected}; got {gy.shape}")
        if gy.dtype != fwd.y0.dtype:
            gy = gy.astype(fwd.y0.dtype)
        rows = gy.reshape(len(fwd.times), -1)
        self.at_t1 = xp.zeros(fwd.n, dtype=fwd.y0.dtype)
        self.at_t0 = None
        self.jumps = {}
        for k, t in enumerate(fwd.times):
            if t == fwd.t1:
                self.at_t1 += rows[k]
            elif t == fwd.t0:
                self.at_t0 = rows[k] if self.at_t0 is None else self.at_t0 + rows[k]
            elif t in self.jumps:
                self.jumps[t] = self.jumps[t] + rows[k]
            else:
                self.jumps[t] = rows[k]
        direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
        self.tstops = sorted(self.jumps, key=lambda t: -direction * t)  # in backward order

    def finish(self, lam0):
        """dL/dy0 = lambda(t0), plus the cotangent of an output at t0 itself."""
        return lam0 if self.at_t0 is None else lam0 + self.at_t0


def backward_solve(rhs, z0, fwd, sensealg, name, *, on_tstop=None, on_step=None, on_attempt=None,
                   error_size=None, tstops=(), rhs_into=None):
    """Integrate the augmented system from t1 back to t0 with the forward tableau, controller and dt0."""
    rtol, atol = backward_tolerances(sensealg, fwd.rtol, fwd.atol)
    return integrate(rhs, z0, fwd.t1, fwd.t0, fwd.params, tableau=fwd.tableau, controller=fwd.controller,
                     rtol=rtol, atol=atol, dt0=fwd.dt0, max_steps=fwd.max_steps, shape=z0.shape, tstops=tstops,
                     on_tstop=on_tstop, on_step=on_step, on_attempt=on_attempt, error_size=error_size, f_into=rhs_into,
                     what=f"backward pass ({name})")


#: Stack a backward step's stages (linearize f at all of them in one pass) only for states of at
#: most this many entries. Stacking saves array calls, which is what costs for small states (the
#: tutorial's 128 x 20: a pullback 1.13 -> 0.87 ms); for large ones the arithmetic dominates, and
#: keeping every stage's activations in memory instead of recomputing them from cache costs more
#: than the calls it saves (at 1024 x 20: 4.0 -> 5.9 ms). The crossover on the 2-core development
#: CPU is near 256 x 20 = 5120 entries; on a GPU it has not been measured.
STACK_STAGES_MAX_ENTRIES = 4096


class StackedStages:
    """A backward step's stages, linearized together (docs/adjoints.md, "Stacked stages").

    All stage times of a backward step, and the forward states there (from the
    interpolant), are known before the step starts. ``on_attempt(times)`` (the
    solver's hook) linearizes ``-f`` at all of them in one stacked pass
    (:class:`tinynode.field.Linearization`); ``vjp_into`` then makes each
    stage's product ``-v^T df/dy`` (and ``-v^T df/dparams``) from it, a
    product per layer. Times outside the current step (the first evaluation,
    the initial step's probe) are the caller's to handle.
    """

    def __init__(self, frozen, state, shape):
        self.frozen, self.state, self.shape = frozen, state, tuple(shape)
        self.index, self.lin = {}, None

    @classmethod
    def make(cls, fwd, state):
        """StackedStages for this forward record, or None where stacking does not pay or apply."""
        if fwd.n > STACK_STAGES_MAX_ENTRIES or not isinstance(fwd.field, VectorField):
            return None
        frozen = fwd.field.freeze(fwd.params, fwd.shape, fwd.y0.dtype)
        return None if frozen is None else cls(frozen, state, fwd.shape)

    def on_attempt(self, times):
        """The solver's hook: linearize at this attempt's stage times (each distinct time once)."""
        points = list(dict.fromkeys(times))  # Tsit5 has c = 1 twice
        ys = self.state.at_many(points).reshape((len(points),) + self.shape)
        self.lin = self.frozen.linearize(ys, sign=-1.0)
        self.index = {t: i for i, t in enumerate(points)}

    def vjp_into(self, t, v, out, gparams=None):
        """``-v^T df/dy`` at a stage time into ``out`` (and the parameter part into ``gparams``);
        False, doing nothing, if ``t`` is not a stage time of the current attempt."""
        i = self.index.get(t)
        if i is None:
            return False
        self.lin.vjp(i, v, out=out, gparams=gparams)
        return True

    def linearize(self, times):
        """The linearization of ``+f`` at other times (GaussAdjoint's quadrature nodes)."""
        return self.frozen.linearize(self.state.at_many(times).reshape((len(times),) + self.shape))


def vjp_fn(field, need_params=True):
    """field.vjp, asking for the state-only product when the field supports it."""
    if need_params:
        return field.vjp
    try:
        import inspect
        if "need_params" in inspect.signature(field.vjp).parameters:
            return lambda t, y, p, v: field.vjp(t, y, p, v, need_params=False)
    except (TypeError, ValueError):
        pass
    return field.vjp


def flat(x):
    return x.reshape(-1)


def zeros_params(params, dtype):
    xp = array_module(params) if params is not None else np
    size = 0 if params is None else int(np.prod(params.shape))
    return xp.zeros(size, dtype=dtype)
