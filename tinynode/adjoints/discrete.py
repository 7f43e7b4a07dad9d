"""DiscreteAdjoint: the exact gradient of what the solver computed.

With the accepted step sizes frozen (as every peer does: diffrax stops
gradients through the controller, SciML strips them from the error norm), the
forward solve is a fixed composition of Runge-Kutta steps, and its reverse
sweep is mechanical (docs/adjoints.md, DiscreteAdjoint). For one step from y_n with size h::

    Y_i = y_n + h sum_{j<i} a_ij k_j,   k_i = f(t_n + c_i h, Y_i),   y_n+1 = y_n + h sum_i b_i k_i

given ybar = dL/dy_n+1:

    kbar_i = h b_i ybar                       (all stages)
    for i = s..1:   Ybar_i, pbar_i = vjp(Y_i, kbar_i);  params_bar += pbar_i
                    kbar_j += h a_ij Ybar_i  (j < i)
    dL/dy_n = ybar + sum_i Ybar_i             (every Y_i contains y_n with identity Jacobian)

An output inside a step (saveat, from the continuous extension
``y_n + h sum_i b_i(theta) k_i``) seeds ``kbar_i += h b_i(theta) gbar`` and
``dL/dy_n += gbar``. The forward pass keeps ``B = [y_n, k_1..k_s]`` of every
accepted step (its dense output), so each ``Y_i`` is rebuilt with one product
and the sweep costs one VJP per stage and no evaluation of f. Rejected steps
play no part. This is ReverseDiffAdjoint's counterpart: it matches finite
differences of the same discrete computation to rounding.
"""

from dataclasses import dataclass

import numpy as np

from ..backend import array_module
from .common import SensitivityAlgorithm


@dataclass(frozen=True)
class DiscreteAdjoint(SensitivityAlgorithm):
    """Reverse pass through the accepted steps (exact gradient of the discrete solution).

    It solves nothing backward, so ``rtol`` and ``atol`` (the base's options) are not used.
    """

    def backward(self, fwd, obs, stats):
        """The reverse sweep of the accepted steps, last to first (the module docstring)."""
        xp = array_module(fwd.y0)
        dense = fwd.dense
        gp = xp.zeros(fwd.n_params, dtype=fwd.y0.dtype)
        outputs = _outputs_by_step(fwd, obs)
        ybar = obs.at_t1.copy()
        for k in range(len(dense.ts) - 1, -1, -1):
            t_end = fwd.t1 if k == len(dense.ts) - 1 else dense.ts[k + 1]
            ybar = _reverse_step(
                fwd, dense.ts[k], dense.hs[k], dense.buffers[k], t_end, ybar, outputs.get(k, []), gp, stats
            )
            stats["naccept"] += 1
        return ybar, gp


def _outputs_by_step(fwd, obs):
    """``{step k: [(t, dL/dy(t)), ...]}`` for the outputs inside (t_k, t_k+1]; t1 belongs to the last step."""
    direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
    starts = [direction * t for t in fwd.dense.ts]
    by_step = {}
    for t, g in obs.jumps.items():
        k = int(np.searchsorted(starts, direction * t, side="left")) - 1
        by_step.setdefault(k, []).append((t, g))
    return by_step


def _reverse_step(fwd, t_n, h, B, t_end, ybar, outputs, gp, stats):
    """dL/dy_n from dL/dy_n+1 for one step ``B = [y_n, k_1..k_s]`` (the module docstring's sweep)."""
    xp, tab, dtype = array_module(B), fwd.tableau, B.dtype
    s = tab.stages
    b = tab.b.copy()
    seeds = []
    for t, g in outputs:
        if t == t_end:
            ybar = ybar + g
        else:
            seeds.append((tab.interp_weights((t - t_n) / h), g))
    kbar = xp.asarray(h * b, dtype=dtype)[:, None] * ybar[None, :]  # kbar_i = h b_i ybar
    ybar_n = ybar.copy()
    for w, g in seeds:  # an output inside the step: kbar_i += h b_i(theta) gbar
        kbar += xp.asarray(h * w, dtype=dtype)[:, None] * g[None, :]
        ybar_n += g
        b = b + np.abs(w)  # marks stages that now carry a cotangent
    W = tab.step_weights(h, xp, dtype)
    for i in range(s - 1, -1, -1):
        if b[i] == 0:
            continue  # e.g. Tsit5's k_7 when nothing looks inside the step
        y_i = xp.dot(W[i, : i + 1], B[: i + 1])  # Y_i = y_n + h sum_j a_ij k_j
        ybar_i, pbar_i = fwd.bound.vjp(t_n + tab.c[i] * h, y_i, kbar[i], need_params=gp.size > 0)
        stats["nvjp"] += 1
        if gp.size:
            gp += pbar_i
        ybar_n += ybar_i
        if i:
            kbar[:i] += W[i, 1 : i + 1, None] * ybar_i[None, :]  # kbar_j += h a_ij Ybar_i
    return ybar_n
