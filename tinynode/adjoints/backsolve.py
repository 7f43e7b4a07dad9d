"""BacksolveAdjoint: integrate the state backward together with its adjoints.

Augmented state ``z = [lambda (n), y (n), mu (n_p)]``, from ``[dL/dy(t1), y(t1), 0]``
at t1 back to t0 (Chen et al. 2018, Appendix B; docs/adjoints.md)::

    d lambda/dt = -(df/dy)^T lambda,   dy/dt = f(y),   d mu/dt = -(df/dparams)^T lambda

Nothing but the outputs is kept from the forward pass: O(n + n_p) memory. The
price is that ``y`` is recomputed by running the ODE backward, which is
unstable whenever the forward dynamics are strongly contracting (a
contraction forward is an expansion backward); the gradient then degrades
silently. At every output time the state is reset to the value the forward
pass saved (SciMLSensitivity's default ``checkpointing=true``), which bounds
the drift to one interval. With few steps and loose tolerances, as in the
tutorial, it is fine; prefer InterpolatingAdjoint otherwise.
"""

from dataclasses import dataclass

from ..backend import array_module
from .common import Observations, backward_solve, flat, zeros_params


@dataclass(frozen=True)
class BacksolveAdjoint:
    """Continuous adjoint that re-solves the state backward (O(1) memory in the steps).

    Arguments:
        seminorm: leave mu out of the backward error norm (lambda and y stay in).
        rtol, atol: backward tolerances (default: the forward ones).
    """

    seminorm: bool = False
    rtol: float = None
    atol: float = None

    needs_dense = False
    name = "BacksolveAdjoint"

    def pullback(self, fwd, gy):
        """Map the cotangent of ``sol.y`` to ``(dL/dy0, dL/dparams, stats)`` (see the module docstring)."""
        xp = array_module(fwd.y0)
        obs = Observations(fwd, gy)
        n, dtype, shape, params = fwd.n, fwd.y0.dtype, fwd.shape, fwd.params
        n_p = zeros_params(params, dtype).size
        stats = {"nf": 0, "nvjp": 0}
        field = fwd.field
        fused = getattr(field, "value_and_vjp", None)
        saved = {t: y for t, y in zip(fwd.times, fwd.y_out)}

        def rhs(t, z, p):
            y, lam = z[n:2 * n].reshape(shape), z[:n].reshape(shape)
            if fused is not None:
                f_, gy_, gp_ = fused(t, y, p, lam)
            else:
                f_ = field(t, y, p)
                gy_, gp_ = field.vjp(t, y, p, lam)
            stats["nf"] += 1
            stats["nvjp"] += 1
            out = xp.empty(2 * n + n_p, dtype=dtype)
            xp.negative(flat(gy_), out=out[:n])
            out[n:2 * n] = flat(f_)
            if n_p:
                xp.negative(flat(gp_), out=out[2 * n:])
            return out

        def jump(t, z):
            z[:n] += obs.jumps[t]
            z[n:2 * n] = saved[t]  # checkpoint: forget the backward drift of y
            return True

        z0 = xp.zeros(2 * n + n_p, dtype=dtype)
        z0[:n] = obs.at_t1
        z0[n:2 * n] = saved.get(fwd.t1, fwd.y_out[-1])
        z, bstats = backward_solve(rhs, z0, fwd, self, self.name, on_tstop=jump, tstops=obs.tstops,
                                   error_size=2 * n if self.seminorm else None)
        stats.update(naccept=bstats["naccept"], nreject=bstats["nreject"])
        gparams = None if params is None else z[2 * n:].reshape(params.shape)
        return obs.finish(z[:n]).reshape(shape), gparams, stats
