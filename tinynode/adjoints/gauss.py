"""GaussAdjoint: only lambda backward; the parameter gradient by Gauss-Legendre quadrature.

The parameter adjoint ``mu(t0) = integral from t0 to t1 of (df/dparams)^T lambda dt``
depends on nothing else and feeds nothing else, so it need not be part of the
ODE at all (SciMLSensitivity's GaussAdjoint; docs/adjoints.md). Integrate only ``d lambda/dt = -(df/dy)^T lambda``
(state-only VJPs), and after every *accepted* backward step from ``t`` to
``t + h`` add the 3-point Gauss-Legendre rule over that step::

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
from ..odeint import _combine
from .common import Observations, StackedStages, backward_solve, flat, vjp_fn, zeros_params
from .interpolating import CheckpointedState

GAUSS_NODES = (-math.sqrt(0.6), 0.0, math.sqrt(0.6))
GAUSS_WEIGHTS = (5 / 9, 8 / 9, 5 / 9)


@dataclass(frozen=True)
class GaussAdjoint:
    """Continuous adjoint for lambda; parameter gradient by per-step Gauss-Legendre quadrature.

    Arguments:
        checkpointing: as for InterpolatingAdjoint.
        rtol, atol: backward tolerances (default: the forward ones).
    """

    checkpointing: bool = False
    rtol: float = None
    atol: float = None

    needs_dense = property(lambda self: not self.checkpointing)
    name = "GaussAdjoint"

    def pullback(self, fwd, gy):
        """Map the cotangent of ``sol.y`` to ``(dL/dy0, dL/dparams, stats)`` (see the module docstring)."""
        xp = array_module(fwd.y0)
        obs = Observations(fwd, gy)
        n, dtype, shape, params = fwd.n, fwd.y0.dtype, fwd.shape, fwd.params
        mu = zeros_params(params, dtype)
        stats = {"nf": 0, "nvjp": 0, "nvjp_params": 0, "nf_resolve": 0}
        state = CheckpointedState(fwd, stats) if self.checkpointing else fwd.dense
        state_vjp, full_vjp = vjp_fn(fwd.field, need_params=False), fwd.field.vjp
        stages = StackedStages.make(fwd, state)  # as in InterpolatingAdjoint

        def rhs_into(t, lam, out):
            if stages.vjp_into(t, lam, out):
                stats["nvjp"] += 1
            else:
                out[...] = rhs(t, lam, params)

        def rhs(t, lam, p):
            stats["nvjp"] += 1
            gy_, _ = state_vjp(t, state.at(t).reshape(shape), p, lam.reshape(shape))
            out = flat(gy_)
            xp.negative(out, out=out)
            return out

        def quadrature(t, t_new, h, B, lam_new):
            if mu.size == 0:
                return
            taus = [t + (1.0 + x) / 2 * h for x in GAUSS_NODES]
            lams = [_combine(fwd.tableau, B, h, (1.0 + x) / 2) for x in GAUSS_NODES]
            stats["nvjp_params"] += len(taus)
            if stages is not None:  # the three nodes in one stacked pass, weighted in one product per layer
                lin = stages.linearize(taus)
                weighted = xp.stack([(h / 2 * w) * lam for lam, w in zip(lams, GAUSS_WEIGHTS)])
                mu[...] -= lin.param_vjp_sum(weighted)
                return
            for tau, lam, w in zip(taus, lams, GAUSS_WEIGHTS):
                _, gp_ = full_vjp(tau, state.at(tau).reshape(shape), params, lam.reshape(shape))
                mu[...] -= (h / 2 * w) * flat(gp_)

        def jump(t, lam):
            lam += obs.jumps[t]
            return True

        lam0, bstats = backward_solve(rhs, obs.at_t1.copy(), fwd, self, self.name, on_tstop=jump,
                                      on_step=quadrature, tstops=obs.tstops,
                                      on_attempt=None if stages is None else stages.on_attempt,
                                      rhs_into=None if stages is None else rhs_into)
        stats.update(naccept=bstats["naccept"], nreject=bstats["nreject"])
        gparams = None if params is None else mu.reshape(params.shape)
        return obs.finish(lam0).reshape(shape), gparams, stats

