"""GaussAdjoint: only lambda backward; the parameter gradient by Gauss-Legendre quadrature.

The parameter adjoint ``mu(t0) = integral from t0 to t1 of (df/dparams)^T lambda dt``
depends on nothing else and feeds nothing else, so it need not be part of the
ODE at all (SciMLSensitivity's GaussAdjoint; docs/adjoints.md). Integrate only
``d lambda/dt = -(df/dy)^T lambda`` (state-only VJPs), and after every
*accepted* backward step from ``t`` to ``t + h`` add the 3-point Gauss-Legendre
rule over that step::

    mu += -h/2 * sum_i w_i (df/dparams)(y(tau_i))^T lambda(tau_i),
    tau_i = t + h (1 + x_i) / 2,   x = (-sqrt(3/5), 0, sqrt(3/5)),  w = (5/9, 8/9, 5/9)

(exact for polynomials of degree 5; the sign because h < 0 when going back).
``lambda(tau_i)`` comes from the backward step's own continuous extension,
``y(tau_i)`` from the forward one. Rejected steps cost no quadrature, and the
error control sees lambda alone.
"""

import math
from dataclasses import dataclass

from ..backend import array_module
from ..dense import interpolate
from ..protocol import BoundField
from .common import SensitivityAlgorithm, StageLinearization
from .interpolating import forward_state

GAUSS_NODES = (-math.sqrt(0.6), 0.0, math.sqrt(0.6))
GAUSS_WEIGHTS = (5 / 9, 8 / 9, 5 / 9)


class GaussRHS(BoundField):
    """``lambda -> -(df/dy)^T lambda`` at the interpolated y(t) (state-only VJPs)."""

    def __init__(self, fwd, state, stats):
        self.fwd, self.state, self.stats = fwd, state, stats
        self.stages = StageLinearization(fwd, state)

    def prepare(self, times):
        """Linearize the forward field at the step's stage times (:class:`StageLinearization`)."""
        self.stages.prepare(times)

    def into(self, t, lam, out):
        """``out[...] = -(df/dy)^T lambda`` at ``t``."""
        self.stats["nvjp"] += 1
        found = self.stages.at(t)
        if found is not None:
            lin, i = found
            lin.vjp(i, lam, out=out)
            return out
        gy, _ = self.fwd.bound.vjp(t, self.state.at(t), lam, need_params=False)
        array_module(lam).negative(gy, out=out)
        return out


@dataclass(frozen=True)
class GaussAdjoint(SensitivityAlgorithm):
    """Continuous adjoint for lambda; parameter gradient by per-step Gauss-Legendre quadrature.

    Arguments:
        rtol, atol: backward tolerances (default: the forward ones).
        checkpointing: as for InterpolatingAdjoint.
    """

    checkpointing: bool = False

    @property
    def needs_dense(self):
        """True unless checkpointing: the backward pass interpolates every forward step."""
        return not self.checkpointing

    def backward(self, fwd, obs, stats):
        """Integrate lambda back to t0, adding each accepted step's quadrature to mu."""
        xp = array_module(fwd.y0)
        state = forward_state(self, fwd, stats)
        mu = xp.zeros(fwd.n_params, dtype=fwd.y0.dtype)
        rhs = GaussRHS(fwd, state, stats)

        def quadrature(t, t_new, h, B, lam_new):  # after each accepted backward step
            if mu.size == 0:
                return
            taus = [t + (1.0 + x) / 2 * h for x in GAUSS_NODES]
            weighted = xp.stack(
                [
                    (h / 2 * w) * interpolate(fwd.tableau, B, h, (1.0 + x) / 2)
                    for x, w in zip(GAUSS_NODES, GAUSS_WEIGHTS)
                ]
            )  # (h/2) w_i lambda(tau_i)
            stats["nvjp_params"] += len(taus)
            lin = fwd.bound.linearize(state.at_many(taus)) if rhs.stages.enabled else None  # the stages' rule
            if lin is not None:  # the three nodes in one stacked pass (fastmlp)
                mu[...] -= lin.param_vjp_sum(weighted)
                return
            for tau, v in zip(taus, weighted):
                _, gp = fwd.bound.vjp(tau, state.at(tau), v)
                mu[...] -= gp

        def jump(t, lam):
            lam += obs.jumps[t]

        lam0 = self.backward_solve(rhs, obs.at_t1.copy(), fwd, obs, stats, jump=jump, on_step=quadrature)
        return lam0, mu
