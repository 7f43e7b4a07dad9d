"""What every gradient method shares: the forward record, the observations, the base class.

The loss may look at the solution at several output times ``t_k``. Going
backward from ``t1``, the adjoint ``lambda = dL/dy(t)`` starts at the
cotangent of the output at ``t1`` and *jumps* by ``dL/dy(t_k)`` at every other
output time (docs/adjoints.md, "The adjoint equations"); an output at ``t0``
adds to ``dL/dy0`` directly. The backward solve lands exactly on each ``t_k``
(a stop time of the loop) and applies the jump there, keeping its step size.
"""

import math
import numbers
from dataclasses import dataclass

from ..backend import array_module
from ..errors import ArgumentError, ShapeError, SolverError
from ..loop import integrate
from ..norms import ErrorNorm
from ..odeint import check_method, check_tolerance
from ..protocol import BoundField
from .times import Gradients

#: The counters of every pullback's stats, zero where a method does not use one:
#: evaluations of f (nf), VJPs giving both products (nvjp), parameter-only VJPs of a
#: quadrature (nvjp_params), evaluations re-solving checkpointed intervals (nf_resolve),
#: and the backward solve's accepted and rejected steps (naccept, nreject).
STATS_KEYS = ("nf", "nvjp", "nvjp_params", "nf_resolve", "naccept", "nreject")


@dataclass
class Forward:
    """What the forward pass leaves for the backward one (made by :func:`tinynode.solve_with_vjp`)."""

    field: object  # the user's vector field
    bound: BoundField  # the field bound to params (tinynode.protocol)
    params: object
    y0: object  # flat
    shape: tuple
    t0: float
    t1: float
    times: list  # output times
    y_out: object  # (len(times), n), flat rows
    tableau: object
    controller: object
    rtol: object
    atol: object
    dt0: float
    max_steps: int
    dense: object = None  # the DenseOutput (every accepted step), when the method needs it
    steps: object = None  # the method's own record of the accepted steps (DiscreteAdjoint's StepRecord)

    @classmethod
    def record(cls, field, bound, params, y0, tspan, sol, *, solver, controller, rtol, atol, dt0, max_steps,
               steps=None):  # fmt: skip
        """The record of a forward solve ``sol`` of ``field`` (bound as ``bound``) from ``y0`` over ``tspan``."""
        tableau, controller = check_method(solver, controller, dt0)
        return cls(
            field=field,
            bound=bound,
            params=params,
            y0=array_module(y0).ascontiguousarray(y0).reshape(-1),
            shape=y0.shape,
            t0=float(tspan[0]),
            t1=float(tspan[1]),
            times=[float(t) for t in sol.t],
            y_out=sol.y.reshape(len(sol.t), -1),
            tableau=tableau,
            controller=controller,
            rtol=check_tolerance("rtol", rtol),
            atol=check_tolerance("atol", atol),
            dt0=dt0,
            max_steps=max_steps,
            dense=sol.dense,
            steps=steps,
        )

    @property
    def n(self):
        """The number of entries of the state."""
        return self.y0.size

    @property
    def n_params(self):
        """The number of parameters (0 without any)."""
        return 0 if self.params is None else self.params.size


class Observations:
    """The output cotangents, split into the start value, the jumps, and the t0 term; and the
    weight ``local_error`` of the solve's ``sol.stats["local_error"]`` in the loss."""

    def __init__(self, fwd, gy, local_error=0.0):
        self.local_error = _check_weight(local_error)
        xp = array_module(fwd.y0)
        gy = xp.asarray(gy)
        expected = (len(fwd.times),) + tuple(fwd.shape)
        if gy.shape != expected:
            raise ShapeError(f"the cotangent must have the shape of sol.y, {expected}; got {gy.shape}")
        rows = gy.astype(fwd.y0.dtype, copy=False).reshape(len(fwd.times), -1)
        self.rows = rows  # g_k, one per output time (the time gradients read them: times.py)
        self.at_t1 = xp.zeros(fwd.n, dtype=fwd.y0.dtype)
        self.at_t0 = None
        self.jumps = {}
        for k, t in enumerate(fwd.times):
            if t == fwd.t1:
                self.at_t1 += rows[k]
            elif t == fwd.t0:
                self.at_t0 = rows[k] if self.at_t0 is None else self.at_t0 + rows[k]
            else:
                self.jumps[t] = rows[k] if t not in self.jumps else self.jumps[t] + rows[k]
        direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
        self.tstops = sorted(self.jumps, key=lambda t: -direction * t)  # in backward order

    def finish(self, lam0):
        """dL/dy0 = lambda(t0), plus the cotangent of an output at t0 itself."""
        return lam0 if self.at_t0 is None else lam0 + self.at_t0


def _check_weight(value):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise ArgumentError(f"pullback(..., local_error={value!r}): the weight must be a finite number >= 0")
    return float(value)


@dataclass(frozen=True)
class SensitivityAlgorithm:
    """The base of the gradient methods: their shared options and the common start of a pullback.

    Arguments:
        rtol, atol: the backward solve's tolerances (default: the forward ones).

    A method implements ``backward(fwd, obs, stats) -> (lambda(t0), dL/dparams)``
    (flat) and says with ``needs_dense`` whether the forward pass must keep
    every step.
    """

    rtol: float = None
    atol: float = None

    def __post_init__(self):
        for name in ("rtol", "atol"):
            self.check_positive(name, "a backward tolerance must be a finite positive number, or None for the "
                                "forward one")  # fmt: skip

    def check_positive(self, name, what):
        """Option ``name`` must be None or a finite positive number; else an ArgumentError saying ``what``."""
        value = getattr(self, name)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if value is not None and not ok:
            raise ArgumentError(f"{type(self).__name__}({name}={value!r}): {what}")

    @property
    def needs_dense(self):
        """Whether the forward pass must keep every step (its dense output)."""
        return True

    def step_record(self, bound, y0):
        """A field to solve forward with that records the accepted steps its own way, or None
        (the default: the method reads the dense output, or nothing)."""
        return None

    def kept(self, fwd):
        """What the forward pass kept, for the stats' ``choices`` (None: nothing to report)."""
        return None

    @property
    def name(self):
        """The method's name, as the messages and stats give it."""
        return type(self).__name__

    #: Whether the method differentiates the solver's error estimates (``pullback(gy, local_error=w)``).
    differentiates_local_error = False

    def pullback(self, fwd, gy, local_error=0.0):
        """Map the cotangent of ``sol.y`` to ``(dL/dy0, dL/dparams, stats)`` (stats: :data:`STATS_KEYS`),
        a :class:`~tinynode.adjoints.times.Gradients` that also gives the time gradients.
        ``local_error``: the weight of ``sol.stats["local_error"]`` in the loss (DiscreteAdjoint only)."""
        obs = Observations(fwd, gy, local_error)
        if obs.local_error and not self.differentiates_local_error:
            raise ArgumentError(
                f"{self.name} solves a continuous adjoint, which does not see the forward solver's error "
                "estimates: use DiscreteAdjoint() to differentiate local_error, or its sampled-time form "
                "(Regularization(error_sampled=...)), which works with every method"
            )
        stats = dict.fromkeys(STATS_KEYS, 0)
        lam0, gparams = self.backward(fwd, obs, stats)
        gparams = None if fwd.params is None else gparams.reshape(fwd.params.shape)
        return Gradients(obs.finish(lam0).reshape(fwd.shape), gparams, stats, fwd=fwd, rows=obs.rows, lam0=lam0,
                         local_error=obs.local_error)  # fmt: skip

    def backward(self, fwd, obs, stats):
        """``(lambda(t0), dL/dparams)``, flat: the method itself (implemented by each subclass)."""
        raise NotImplementedError

    def backward_solve(self, rhs, z0, fwd, obs, stats, *, jump, error_size=None, on_step=None):
        """Integrate the augmented system ``rhs`` (a BoundField) from t1 back to t0.

        Uses the forward tableau, controller, dt0 and max_steps; the backward
        tolerances; lands on every output time and applies ``jump(t, z)`` there.
        Counts the steps into ``stats``; a failure is re-raised saying it
        happened in the backward pass.
        """
        rtol, atol = self.tolerances(fwd)
        norm = ErrorNorm(rtol, atol, z0.size, z0.dtype, array_module(z0), size=error_size)

        def on_tstop(t, z):
            jump(t, z)
            return True

        try:
            z, steps = integrate(
                rhs,
                z0,
                (fwd.t1, fwd.t0),
                solver=fwd.tableau,
                controller=fwd.controller,
                norm=norm,
                dt0=fwd.dt0,
                max_steps=fwd.max_steps,
                tstops=obs.tstops,
                on_step=on_step,
                on_tstop=on_tstop,
            )
        except SolverError as e:
            raise type(e)(f"backward pass ({self.name}): {e}", t=e.t) from None
        stats["naccept"] += steps["naccept"]
        stats["nreject"] += steps["nreject"]
        return z

    def tolerances(self, fwd):
        """The backward solve uses the forward tolerances unless the method names its own."""
        rtol = fwd.rtol if self.rtol is None else self.rtol
        atol = fwd.atol if self.atol is None else self.atol
        if not isinstance(rtol, float) or not isinstance(atol, float):
            raise ArgumentError(
                "per-component tolerances do not carry over to the adjoint's augmented state; "
                f"give {self.name}(rtol=..., atol=...) scalar tolerances for the backward solve"
            )
        return rtol, atol


#: Linearize a backward step's stages in one stacked pass (StageLinearization) only for states of
#: at most this many entries. Stacking saves array calls, which is what costs for small states (the
#: tutorial's 128 x 20: a pullback 1.13 -> 0.87 ms); for large ones the arithmetic dominates, and
#: keeping every stage's activations in memory instead of recomputing them from cache costs more
#: than the calls it saves (at 1024 x 20: 4.0 -> 5.9 ms). The crossover on the 2-core development
#: CPU is near 256 x 20 = 5120 entries; on a GPU it has not been measured.
STACK_STAGES_MAX_ENTRIES = 4096


class StageLinearization:
    """The forward field linearized at the stage points of the current backward step.

    A backward step knows all its stage times before it evaluates any, and the
    forward states there come from the interpolant, so ``prepare(times)`` (the
    protocol's hook, called by the step) linearizes ``-f`` at all of them in one
    pass where the bound field offers ``linearize``; ``at(t)`` then gives the
    :class:`~tinynode.fastmlp.Linearization` and the point's index, or None for
    a time outside the step (the first evaluation, the initial step's probe).
    """

    def __init__(self, fwd, state):
        self.bound, self.state, self.lin, self.index = fwd.bound, state, None, {}
        self.enabled = fwd.n <= STACK_STAGES_MAX_ENTRIES

    def prepare(self, times):
        """Linearize ``-f`` at this backward step's stage times (each distinct time once)."""
        self.lin, self.index = None, {}
        if not self.enabled or not times:  # (Euler's step evaluates no stage after k_1)
            return
        points = list(dict.fromkeys(times))  # Tsit5 has c = 1 twice
        self.lin = self.bound.linearize(self.state.at_many(points), sign=-1.0)
        if self.lin is None:  # the field does not offer it: evaluate stage by stage from now on
            self.enabled = False
            return
        self.index = {t: i for i, t in enumerate(points)}

    def at(self, t):
        """``(linearization, index)`` for a stage time of the current step, or None."""
        i = self.index.get(t)
        return None if i is None else (self.lin, i)
