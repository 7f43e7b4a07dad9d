"""The NeuralODE layer: an ODE whose vector field is a network, used like any layer.

``NeuralODE(dynamics)`` maps an input ``x`` (the initial state) to the state
``y(t1)`` of ``dy/dt = dynamics(params, y)``, ``y(t0) = x``. As in the Lux
tutorial, the whole batch is ONE ODE state with one step sequence, and only
the final state is returned (``save_everystep=false, save_start=false``); with
``saveat`` the states at those times are returned, stacked time-first.

The backward pass is the chosen sensealg's pullback (DiscreteAdjoint by
default, as for :func:`tinynode.solve_with_vjp`; the tutorial's model chooses
InterpolatingAdjoint). The pullback travels in ``ctx``, never on ``self``; what *is* kept
on the layer is bookkeeping for people, not for the math: ``last_stats`` (the
counts of the most recent forward and backward pass) and ``counts`` (running
totals, which a training loop resets per epoch).
"""

import numpy as np

from .adjoints import DiscreteAdjoint, solve_with_vjp
from .errors import ArgumentError
from .field import VectorField
from .nn import Layer, check_params
from .odeint import DEFAULTS, Solution, check_method, check_saveat, check_span, solve
from .regularizers import Regularization, RegularizedField, RegularizedTraining

__all__ = ["NeuralODE"]


class NeuralODE(Layer):
    """``x -> y(t1)`` for ``dy/dt = dynamics(params, y)``, ``y(t0) = x``.

    Arguments (all but the first two keyword-only, named and defaulted as in
    :func:`tinynode.solve` and :func:`tinynode.solve_with_vjp`):
        dynamics: a layer mapping states to derivatives (same in and out size).
        tspan: ``(t0, t1)``, ``(0, 1)`` by default.
        solver, controller: a tableau (Tsit5 by default) and a step-size controller
            (the I controller by default, as for :func:`tinynode.solve`).
        rtol, atol: tolerances, ``1e-3`` and ``1e-6`` by default as for ``solve``
            (the Lux tutorial's model sets ``atol=1e-3``: :func:`tinynode.models.tutorial_model`).
        dt0: the first step size; required by the fixed-step ``RK4()`` and ``Euler()``.
        max_steps: the most step attempts per solve.
        sensealg: how gradients are computed (``DiscreteAdjoint()`` by default: see
            :func:`tinynode.solve_with_vjp`).
        saveat: None (the layer returns ``y(t1)``) or the times it returns
            (stacked time-first, ``(len, *x.shape)``). For one-off trajectories
            (plots) use :meth:`solve`, which takes them per call.
        regularize: a :class:`~tinynode.regularizers.Regularization` (its terms are
            added to the loss while training: ``forward``/``backward``; inference
            is the plain solve), or None.

    After each call, ``last_stats`` holds the counts of the last pass:
    ``{"forward": {"nf", "naccept", "nreject"}, "backward": {STATS_KEYS}}``
    (:data:`tinynode.adjoints.STATS_KEYS`); ``counts`` keeps running totals
    (``forward_nf``, ``backward_nvjp``, ``backward_nf``, ``solves``), which
    :func:`tinynode.train.fit` resets every epoch.
    """

    def __init__(
        self,
        dynamics,
        tspan=(0.0, 1.0),
        *,
        solver=None,
        controller=None,
        rtol=DEFAULTS["rtol"],
        atol=DEFAULTS["atol"],
        dt0=None,
        max_steps=DEFAULTS["max_steps"],
        sensealg=None,
        saveat=None,
        regularize=None,
    ):
        self.dynamics = dynamics
        self.field = VectorField(dynamics)
        self.tspan = check_span(tspan)
        self.solver, self.controller = check_method(solver, controller, dt0)
        self.rtol, self.atol, self.dt0, self.max_steps = rtol, atol, dt0, max_steps
        self.sensealg = DiscreteAdjoint() if sensealg is None else sensealg
        direction = 1.0 if self.tspan[1] > self.tspan[0] else -1.0
        self.saveat = None if saveat is None else check_saveat(saveat, *self.tspan, direction)
        self.regularize = self._check_regularize(regularize)
        self._training = None if self.regularize is None else RegularizedTraining(self.regularize, dynamics, self.field)
        self.training_solves = 0  # regularised training solves so far: their index seeds each one's draws
        self.last_stats = {}
        self.reset_counts()

    def _check_regularize(self, reg):
        """``reg`` if it can train this layer, None when it does nothing; else an ArgumentError saying why."""
        if reg is None:
            return None
        if not isinstance(reg, Regularization):
            raise ArgumentError(f"regularize must be a tinynode.regularizers.Regularization or None, got {reg!r}")
        if not reg.active:
            return None
        if self.saveat is not None:
            raise ArgumentError("regularize works on the final state only: leave saveat=None")
        if reg.jacobian and not hasattr(self.dynamics, "backward_vjp"):
            RegularizedField(self.dynamics, 0, ("jacobian",))  # raises, saying what is missing
        if reg.steer >= abs(self.tspan[1] - self.tspan[0]):
            raise ArgumentError(
                f"Regularization(steer={reg.steer}) must be shorter than the span {self.tspan}: "
                "the end time is drawn from [t1 - steer, t1 + steer]"
            )
        if (reg.error or reg.error_sampled) and not self.solver.adaptive:
            raise ArgumentError(
                f"the error regularisers need an adaptive solver's error estimate; {self.solver!r} has none"
            )
        if reg.error and not self.sensealg.differentiates_local_error:
            raise ArgumentError(
                f"Regularization(error=...) differentiates every step's error estimate, which only "
                f"DiscreteAdjoint() (--sensealg discrete) can; {self.sensealg.name} can use error_sampled instead"
            )
        return reg

    def __repr__(self):
        # the architecture only: tolerances and the sensealg change how, not what, it computes
        return f"NeuralODE({self.dynamics!r}, tspan={self.tspan}, solver={self.solver!r})"

    @property
    def num_params(self):
        """The dynamics' parameter count (the ODE itself adds none)."""
        return self.dynamics.num_params

    def reset_counts(self):
        """Zero the running totals of forward evaluations and backward VJPs (and regularisers' values)."""
        self.counts = {"forward_nf": 0, "backward_nvjp": 0, "backward_nf": 0, "solves": 0, "regularization": {}}

    def init(self, seed_or_rng=0, dtype=np.float32):
        """The dynamics' parameters (the ODE itself adds none)."""
        return self.dynamics.init(seed_or_rng, dtype)

    def unflatten(self, params):
        """``{"dynamics": named views of the dynamics' parameters}``."""
        return {"dynamics": self.dynamics.unflatten(params)}

    def solve(self, params, x, *, saveat=None, dense=False) -> Solution:
        """The whole :class:`~tinynode.Solution` from ``x`` (inference), with this call's ``saveat``
        (``None``: every step) and ``dense`` (``sol(t)`` anywhere): for plotting a hidden trajectory."""
        check_params(self, params)
        return solve(self.field, x, self.tspan, params, **self._options(), saveat=saveat, dense=dense)

    def _options(self):
        return dict(
            solver=self.solver,
            controller=self.controller,
            rtol=self.rtol,
            atol=self.atol,
            dt0=self.dt0,
            max_steps=self.max_steps,
        )

    def _saveat(self):
        return [self.tspan[1]] if self.saveat is None else self.saveat

    def _output(self, sol):
        return sol.y[-1] if self.saveat is None else sol.y

    def _count_forward(self, sol, extra_nf=0):
        self.last_stats = {"forward": sol.stats}
        self.counts["forward_nf"] += sol.stats["nf"] + extra_nf
        self.counts["solves"] += 1

    def __call__(self, params, x):
        """Inference: the plain solve, keeping nothing for a backward pass."""
        check_params(self, params)
        sol = solve(self.field, x, self.tspan, params, **self._options(), saveat=self._saveat())
        self._count_forward(sol)
        return self._output(sol)

    def forward(self, params, x):
        """Solve from ``x`` with the sensealg's forward pass; ``ctx`` is its pullback."""
        check_params(self, params)
        if self.regularize is not None:
            return self._forward_regularized(params, x)
        sol, pullback = solve_with_vjp(
            self.field, x, self.tspan, params, **self._options(), saveat=self._saveat(), sensealg=self.sensealg
        )
        self._count_forward(sol)
        return self._output(sol), pullback

    def _forward_regularized(self, params, x):
        """The forward pass of a regularised solve (:class:`~tinynode.regularizers.RegularizedTraining`)."""
        options = dict(self._options(), sensealg=self.sensealg)
        run = self._training.forward(params, x, self.tspan, options, index=self.training_solves)
        self.training_solves += 1
        self._count_forward(run.sol, extra_nf=run.extra_nf)
        self.last_stats["regularization"] = run.values
        for name, value in run.values.items():
            self.counts["regularization"][name] = self.counts["regularization"].get(name, 0.0) + value
        return run.output, run

    def backward(self, params, ctx, gy, need_gx=True):
        """The adjoint pass: ``(dL/dx, dL/dparams)`` from ``dL/dy`` (stats in ``last_stats["backward"]``)."""
        if isinstance(ctx, RegularizedTraining.Run):
            gx, gp, stats = ctx.backward(gy)
        else:
            gx, gp, stats = ctx(gy[None] if self.saveat is None else gy)
        self.last_stats["backward"] = stats
        self.counts["backward_nvjp"] += stats["nvjp"] + stats["nvjp_params"]
        self.counts["backward_nf"] += stats["nf"] + stats["nf_resolve"]
        return gx, gp
