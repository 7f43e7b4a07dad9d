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
from .common import Observations, flat, zeros_params


@dataclass(frozen=True)
class DiscreteAdjoint:
    """Reverse pass through the accepted steps (exact gradient of the discrete solution)."""

    needs_dense = True
    name = "DiscreteAdjoint"
    rtol = None
    atol = None

    def pullback(self, fwd, gy):
        """Map the cotangent of ``sol.y`` to ``(dL/dy0, dL/dparams, stats)`` (see the module docstring)."""
        xp = array_module(fwd.y0)
        obs = Observations(fwd, gy)
        tab, dense = fwd.tableau, fwd.dense
        n, dtype, shape, params = fwd.n, fwd.y0.dtype, fwd.shape, fwd.params
        s = tab.stages
        direction = 1.0 if fwd.t1 > fwd.t0 else -1.0
        gp = zeros_params(params, dtype)
        stats = {"nf": 0, "nvjp": 0, "naccept": 0, "nreject": 0}

        # Outputs per step: step k covers (t_k, t_k+1]; t1 itself belongs to the last step.
        starts = [direction * t for t in dense.ts]
        by_step = {}
        for t, g in obs.jumps.items():
            k = int(np.searchsorted(starts, direction * t, side="left")) - 1
            by_step.setdefault(k, []).append((t, g))

        ybar = obs.at_t1.copy()
        kbar = xp.empty((s, n), dtype=dtype)
        for k in range(len(dense.ts) - 1, -1, -1):
            t_n, h, B = dense.ts[k], dense.hs[k], dense.buffers[k]
            t_end = fwd.t1 if k == len(dense.ts) - 1 else dense.ts[k + 1]
            b = tab.b.copy()
            seeds = []
            for t, g in by_step.get(k, []):
                if t == t_end:
                    ybar += g
                else:
                    seeds.append((tab.interp_weights((t - t_n) / h), g))
            # kbar_i = h b_i ybar (+ h b_i(theta) gbar for outputs inside the step)
            xp.multiply(xp.asarray(h * b, dtype=dtype)[:, None], ybar[None, :], out=kbar)
            ybar_n = ybar.copy()
            for w, g in seeds:
                kbar += xp.asarray(h * w, dtype=dtype)[:, None] * g[None, :]
                ybar_n += g
                b = b + np.abs(w)  # marks stages that now carry a cotangent
            for i in range(s - 1, -1, -1):
                if b[i] == 0:
                    continue  # e.g. Tsit5's k_7 when nothing looks inside the step
                y_i = B[0] if i == 0 else xp.dot(xp.asarray(np.r_[1.0, h * tab.a[i, :i]], dtype=dtype),
                                                 B[: i + 1])
                ybar_i, pbar_i = fwd.field.vjp(t_n + tab.c[i] * h, y_i.reshape(shape), params,
                                               kbar[i].reshape(shape))
                stats["nvjp"] += 1
                ybar_i = flat(ybar_i)
                if gp.size:
                    gp += flat(pbar_i)
                ybar_n += ybar_i
                if i:
                    kbar[:i] += xp.asarray(h * tab.a[i, :i], dtype=dtype)[:, None] * ybar_i[None, :]
            ybar = ybar_n
            stats["naccept"] += 1
        gparams = None if params is None else gp.reshape(params.shape)
        return obs.finish(ybar).reshape(shape), gparams, stats
