"""InterpolatingAdjoint: lambda and mu backward, the state read from the forward solution.

Augmented state ``z = [lambda (n), mu (n_p)]``, integrated from t1 back to t0::

    d lambda/dt = -(df/dy)^T lambda,     d mu/dt = -(df/dparams)^T lambda,

with ``y(t)`` taken from the forward pass's continuous extension (docs/adjoints.md),
so nothing is integrated backward that was stable only forward. One
VJP per backward evaluation gives both products; since every stage's ``y(t)``
is known before a backward step starts, a :class:`~tinynode.VectorField`
linearizes f at all of them in one stacked pass first (docs/adjoints.md,
"Stacked stages").

Where the state comes from:

* by default the forward pass keeps every accepted step (``[y_n, k_1..k_7]``)
  and the backward pass interpolates it: no forward work is repeated;
* with ``checkpointing=True`` the forward pass keeps only the states at its
  output times; the backward pass re-solves each interval between them densely
  when it first needs it (at most one extra forward solve in all). This is
  what SciMLSensitivity does for the tutorial (``save_everystep=false``): one
  dense re-solve of [0, 1] per gradient.
"""

import bisect
from dataclasses import dataclass

from ..backend import array_module
from ..odeint import solve
from .common import Observations, StackedStages, backward_solve, flat, zeros_params


class CheckpointedState:
    """y(t) from re-solving, on demand, the forward interval that contains t."""

    def __init__(self, fwd, stats):
        self.fwd, self.stats = fwd, stats
        self.direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
        points = {fwd.t0: fwd.y0}
        for t, y in zip(fwd.times, fwd.y_out):
            points[t] = y
        self.times = sorted(points, key=lambda t: self.direction * t)
        self.states = [points[t] for t in self.times]
        self.keys = [self.direction * t for t in self.times]
        self.current, self.dense = None, None

    def at(self, t):
        key = self.direction * t
        k = self.current
        if k is None or not (self.keys[k] <= key <= self.keys[k + 1]):  # stay put on a boundary
            k = min(max(bisect.bisect_left(self.keys, key) - 1, 0), len(self.times) - 2)
        if k != self.current:
            fwd = self.fwd
            self.dense = None  # let the previous interval go before re-solving the next
            sol = solve(fwd.field, self.states[k].reshape(fwd.shape), (self.times[k], self.times[k + 1]),
                        fwd.params, solver=fwd.tableau, rtol=fwd.rtol, atol=fwd.atol, saveat=[self.times[k + 1]],
                        dense=True, dt0=fwd.dt0, max_steps=fwd.max_steps, controller=fwd.controller)
            self.stats["nf_resolve"] += sol.stats["nf"]
            self.current, self.dense = k, sol.dense
        return self.dense.at(t)

    def at_many(self, times):
        xp = array_module(self.states[0])
        return xp.stack([self.at(t) for t in times])


@dataclass(frozen=True)
class InterpolatingAdjoint:
    """The continuous adjoint with the forward state interpolated (the tutorial's default).

    Arguments:
        checkpointing: keep only the output states and re-solve intervals in the
            backward pass (less memory, up to one extra forward solve).
        seminorm: leave mu out of the backward error norm (Kidger, Chen and
            Lyons 2021): mu is a pure quadrature that nothing else depends on.
        rtol, atol: backward tolerances (default: the forward ones).
    """

    checkpointing: bool = False
    seminorm: bool = False
    rtol: float = None
    atol: float = None

    needs_dense = property(lambda self: not self.checkpointing)
    name = "InterpolatingAdjoint"

    def pullback(self, fwd, gy):
        """Map the cotangent of ``sol.y`` to ``(dL/dy0, dL/dparams, stats)`` (see the module docstring)."""
        xp = array_module(fwd.y0)
        obs = Observations(fwd, gy)
        n, dtype, shape, params = fwd.n, fwd.y0.dtype, fwd.shape, fwd.params
        n_p = zeros_params(params, dtype).size
        stats = {"nf": 0, "nvjp": 0, "nf_resolve": 0}
        state = CheckpointedState(fwd, stats) if self.checkpointing else fwd.dense
        vjp = fwd.field.vjp
        stages = StackedStages.make(fwd, state)

        def rhs_into(t, z, out):  # a stage: -(df/dy)^T lambda and -(df/dparams)^T lambda, stacked
            if stages.vjp_into(t, z[:n], out[:n], out[n:] if n_p else None):
                stats["nvjp"] += 1
            else:
                out[...] = rhs(t, z, params)

        def rhs(t, z, p):
            stats["nvjp"] += 1
            out = xp.empty(n + n_p, dtype=dtype)
            y = state.at(t).reshape(shape)
            gy_, gp_ = vjp(t, y, p, z[:n].reshape(shape))
            xp.negative(flat(gy_), out=out[:n])
            if n_p:
                xp.negative(flat(gp_), out=out[n:])
            return out

        def jump(t, z):
            z[:n] += obs.jumps[t]
            return True

        z0 = xp.zeros(n + n_p, dtype=dtype)
        z0[:n] = obs.at_t1
        z, bstats = backward_solve(rhs, z0, fwd, self, self.name, on_tstop=jump, tstops=obs.tstops,
                                   on_attempt=None if stages is None else stages.on_attempt,
                                   rhs_into=None if stages is None else rhs_into,
                                   error_size=n if self.seminorm else None)
        stats.update(naccept=bstats["naccept"], nreject=bstats["nreject"])
        gparams = None if params is None else z[n:].reshape(params.shape)
        return obs.finish(z[:n]).reshape(shape), gparams, stats
