"""InterpolatingAdjoint: lambda and mu backward, the state read from the forward solution.

Augmented state ``z = [lambda (n), mu (n_p)]``, integrated from t1 back to t0::

    d lambda/dt = -(df/dy)^T lambda,     d mu/dt = -(df/dparams)^T lambda,

with ``y(t)`` taken from the forward pass's continuous extension (docs/adjoints.md),
so nothing is integrated backward that was stable only forward. One VJP per
backward evaluation gives both products.

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
from ..protocol import BoundField
from .common import SensitivityAlgorithm, StageLinearization


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
        """The flat forward state at ``t``, re-solving its interval first if needed."""
        key = self.direction * t
        k = self.current
        if k is None or not (self.keys[k] <= key <= self.keys[k + 1]):  # stay put on a boundary
            k = min(max(bisect.bisect_left(self.keys, key) - 1, 0), len(self.times) - 2)
        if k != self.current:
            fwd = self.fwd
            self.dense = None  # let the previous interval go before re-solving the next
            sol = solve(
                fwd.bound,
                self.states[k].reshape(fwd.shape),
                (self.times[k], self.times[k + 1]),
                fwd.params,
                solver=fwd.tableau,
                controller=fwd.controller,
                rtol=fwd.rtol,
                atol=fwd.atol,
                dt0=fwd.dt0,
                max_steps=fwd.max_steps,
                saveat=[self.times[k + 1]],
                dense=True,
            )
            self.stats["nf_resolve"] += sol.stats["nf"]
            self.current, self.dense = k, sol.dense
        return self.dense.at(t)

    def at_many(self, times):
        """The flat forward states at several times, ``(len(times), n)``."""
        return array_module(self.states[0]).stack([self.at(t) for t in times])


def forward_state(sensealg, fwd, stats):
    """Where y(t) comes from: the forward dense output, or re-solved checkpoints."""
    return CheckpointedState(fwd, stats) if sensealg.checkpointing else fwd.dense


class InterpolatingRHS(BoundField):
    """``z = [lambda, mu] -> [-(df/dy)^T lambda, -(df/dparams)^T lambda]`` at the interpolated y(t)."""

    def __init__(self, fwd, state, stats):
        self.fwd, self.state, self.stats = fwd, state, stats
        self.n, self.has_params, self.stages = fwd.n, fwd.n_params > 0, StageLinearization(fwd, state)

    def prepare(self, times):
        """Linearize the forward field at the step's stage times (:class:`StageLinearization`)."""
        self.stages.prepare(times)

    def into(self, t, z, out):
        """``out[...] = [-(df/dy)^T lambda, -(df/dparams)^T lambda]`` at ``t``."""
        n, has_params = self.n, self.has_params
        self.stats["nvjp"] += 1
        found = self.stages.at(t)
        if found is not None:  # this stage's linearization, made in prepare
            lin, i = found
            lin.vjp(i, z[:n], out=out[:n], gparams=out[n:] if has_params else None)
            return out
        xp = array_module(z)
        gy, gp = self.fwd.bound.vjp(t, self.state.at(t), z[:n], need_params=has_params)
        xp.negative(gy, out=out[:n])
        if has_params:
            xp.negative(gp, out=out[n:])
        return out


@dataclass(frozen=True)
class InterpolatingAdjoint(SensitivityAlgorithm):
    """The continuous adjoint with the forward state interpolated (the tutorial's default).

    Arguments:
        rtol, atol: backward tolerances (default: the forward ones).
        checkpointing: keep only the output states and re-solve intervals in the
            backward pass (less memory, up to one extra forward solve).
        seminorm: leave mu out of the backward error norm (Kidger, Chen and
            Lyons 2021): mu is a pure quadrature that nothing else depends on.
    """

    checkpointing: bool = False
    seminorm: bool = False

    @property
    def needs_dense(self):
        """True unless checkpointing: the backward pass interpolates every forward step."""
        return not self.checkpointing

    def backward(self, fwd, obs, stats):
        """Integrate ``[lambda, mu]`` from t1 back to t0 (the module docstring)."""
        n = fwd.n
        xp = array_module(fwd.y0)
        rhs = InterpolatingRHS(fwd, forward_state(self, fwd, stats), stats)
        z0 = xp.zeros(n + fwd.n_params, dtype=fwd.y0.dtype)
        z0[:n] = obs.at_t1

        def jump(t, z):
            z[:n] += obs.jumps[t]

        z = self.backward_solve(rhs, z0, fwd, obs, stats, jump=jump, error_size=n if self.seminorm else None)
        return z[:n], z[n:]
