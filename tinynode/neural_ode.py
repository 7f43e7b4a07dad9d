"""The NeuralODE layer: an ODE whose vector field is a network, used like any layer.

``NeuralODE(dynamics)`` maps an input ``x`` (the initial state) to the state
``y(t1)`` of ``dy/dt = dynamics(params, y)``, ``y(t0) = x``. As in the Lux
tutorial, the whole batch is ONE ODE state with one step sequence, and only
the final state is returned (``save_everystep=false, save_start=false``); with
``saveat`` the states at those times are returned, stacked time-first.

The backward pass is the chosen sensealg's pullback (InterpolatingAdjoint by
default). The pullback travels in ``ctx``, never on ``self``; what *is* kept
on the layer is bookkeeping for people, not for the math: ``last_stats`` (the
counts of the most recent forward and backward pass) and ``counts`` (running
totals, which a training loop resets per epoch).
"""

import numpy as np

from .adjoints import InterpolatingAdjoint, solve_with_vjp
from .field import VectorField
from .nn import Layer, _check_params
from .odeint import solve
from .tableaus import TSIT5

__all__ = ["NeuralODE"]


class NeuralODE(Layer):
    """``x -> y(t1)`` for ``dy/dt = dynamics(params, y)``, ``y(t0) = x``.

    Arguments:
        dynamics: a layer mapping states to derivatives (same in and out size).
        tspan: ``(t0, t1)``.
        solver: a tableau (``tinynode.Tsit5()`` by default).
        rtol, atol: tolerances, the tutorial's 1e-3 and 1e-3 by default.
        sensealg: how gradients are computed (``InterpolatingAdjoint()`` by default).
        saveat: None (return ``y(t1)``) or the times to return (``(len, *x.shape)``).
        controller, max_steps: passed to the solver.
    """

    def __init__(self, dynamics, tspan=(0.0, 1.0), solver=None, rtol=1e-3, atol=1e-3, sensealg=None,
                 saveat=None, controller=None, max_steps=100_000):
        self.dynamics = dynamics
        self.field = VectorField(dynamics)
        self.tspan = (float(tspan[0]), float(tspan[1]))
        self.solver = TSIT5 if solver is None else solver
        self.rtol, self.atol = rtol, atol
        self.sensealg = InterpolatingAdjoint() if sensealg is None else sensealg
        self.saveat = None if saveat is None else [float(t) for t in saveat]
        self.controller, self.max_steps = controller, max_steps
        self.num_params = dynamics.num_params
        self.last_stats = {}
        self.reset_counts()

    def __repr__(self):
        # the architecture only: tolerances and the sensealg change how, not what, it computes
        return f"NeuralODE({self.dynamics!r}, tspan={self.tspan}, solver={self.solver!r})"

    def reset_counts(self):
        """Zero the running totals of forward evaluations and backward VJPs."""
        self.counts = {"forward_nf": 0, "backward_nvjp": 0, "backward_nf": 0, "solves": 0}

    def init(self, seed_or_rng=0, dtype=np.float32):
        """The dynamics' parameters (the ODE itself adds none)."""
        return self.dynamics.init(seed_or_rng, dtype)

    def unflatten(self, params):
        """``{"dynamics": named views of the dynamics' parameters}``."""
        return {"dynamics": self.dynamics.unflatten(params)}

    def _options(self):
        saveat = [self.tspan[1]] if self.saveat is None else self.saveat
        return dict(saveat=saveat, rtol=self.rtol, atol=self.atol, solver=self.solver,
                    controller=self.controller, max_steps=self.max_steps)

    def _output(self, sol):
        return sol.y[-1] if self.saveat is None else sol.y

    def _count_forward(self, sol):
        self.last_stats = {"forward": sol.stats}
        self.counts["forward_nf"] += sol.stats["nf"]
        self.counts["solves"] += 1

    def __call__(self, params, x):
        """Inference: the plain solve, keeping nothing for a backward pass."""
        _check_params(self, params)
        sol = solve(self.field, x, self.tspan, params, **self._options())
        self._count_forward(sol)
        return self._output(sol)

    def forward(self, params, x):
        """Solve from ``x`` with the sensealg's forward pass; ``ctx`` is its pullback."""
        _check_params(self, params)
        sol, pullback = solve_with_vjp(self.field, x, self.tspan, params, sensealg=self.sensealg,
                                       **self._options())
        self._count_forward(sol)
        return self._output(sol), pullback

    def backward(self, params, ctx, gy, *, out=None, need_gx=True):
        """The adjoint pass: ``(dL/dx, dL/dparams)`` from ``dL/dy``."""
        gy_all = gy[None] if self.saveat is None else gy
        gx, gp, stats = ctx(gy_all)
        self.last_stats["backward"] = stats
        self.counts["backward_nvjp"] += stats.get("nvjp", 0) + stats.get("nvjp_params", 0)
        self.counts["backward_nf"] += stats.get("nf", 0) + stats.get("nf_resolve", 0)
        if out is None:
            return gx, gp
        out[...] = gp
        return gx, out
