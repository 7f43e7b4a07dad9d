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
from ..protocol import BoundField
from .common import SensitivityAlgorithm


class BacksolveRHS(BoundField):
    """``[lambda, y, mu] -> [-(df/dy)^T lambda, f(y), -(df/dparams)^T lambda]``: one forward pass each."""

    def __init__(self, fwd, stats):
        self.fwd, self.stats, self.n = fwd, stats, fwd.n

    def into(self, t, z, out):
        """``out[...] = [-(df/dy)^T lambda, f(y), -(df/dparams)^T lambda]`` from one forward pass."""
        n, xp = self.n, array_module(z)
        value, gy, gp = self.fwd.bound.value_and_vjp(t, z[n : 2 * n], z[:n])
        self.stats["nf"] += 1
        self.stats["nvjp"] += 1
        xp.negative(gy, out=out[:n])
        out[n : 2 * n] = value
        if self.fwd.n_params:
            xp.negative(gp, out=out[2 * n :])
        return out


@dataclass(frozen=True)
class BacksolveAdjoint(SensitivityAlgorithm):
    """Continuous adjoint that re-solves the state backward (O(1) memory in the steps).

    Arguments:
        rtol, atol: backward tolerances (default: the forward ones).
        seminorm: leave mu out of the backward error norm (lambda and y stay in).
    """

    seminorm: bool = False

    @property
    def needs_dense(self):
        """False: nothing but the outputs is kept."""
        return False

    def backward(self, fwd, obs, stats):
        """Integrate ``[lambda, y, mu]`` from t1 back to t0, resetting y at every output time."""
        n = fwd.n
        saved = dict(zip(fwd.times, fwd.y_out))
        z0 = array_module(fwd.y0).zeros(2 * n + fwd.n_params, dtype=fwd.y0.dtype)
        z0[:n] = obs.at_t1
        z0[n : 2 * n] = saved.get(fwd.t1, fwd.y_out[-1])

        def jump(t, z):
            z[:n] += obs.jumps[t]
            z[n : 2 * n] = saved[t]  # checkpoint: forget the backward drift of y

        z = self.backward_solve(
            BacksolveRHS(fwd, stats), z0, fwd, obs, stats, jump=jump, error_size=2 * n if self.seminorm else None
        )
        return z[:n], z[2 * n :]
