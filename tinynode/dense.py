"""Dense output: the solution between the steps, from each step's own stages.

A Runge-Kutta method with a *continuous extension* gives the solution anywhere
inside an accepted step from ``t_n`` with size ``h``::

    y(t_n + theta h) = y_n + h sum_i b_i(theta) k_i,      0 <= theta <= 1,

where ``b_i(theta)`` are polynomials (the tableau's ``interp``; Tsit5's is of
4th order and free: it uses only the step's own stages). So keeping each
accepted step's table ``[y_n, k_1, ..., k_s]`` is enough to evaluate the
solution anywhere: that is what :class:`DenseOutput` does, for ``sol(t)``, for
``saveat`` times inside a step, and for the adjoints, which need the forward
state at every backward stage.
"""

import bisect

import numpy as np

from .backend import array_module
from .errors import ArgumentError

__all__ = ["DenseOutput", "interpolate", "polynomial"]


class DenseOutput:
    """The continuous extension of an accepted step sequence.

    Keeps, per accepted step, its start ``t_n``, size ``h_n`` and the buffer
    ``[y_n, k_1..k_s]``; evaluating at ``t`` finds the step and applies
    ``y_n + h sum_i b_i(theta) k_i`` with ``theta = (t - t_n) / h``.
    """

    def __init__(self, tableau, shape, t0, t1):
        self.tableau, self.shape = tableau, shape
        self.t0, self.t1 = t0, t1
        self.ts, self.hs, self.buffers = [], [], []
        self._direction = 1.0 if t1 > t0 else -1.0
        self._keys = []  # direction * t_n, increasing: what bisect searches
        self._polys = {}  # step index -> its polynomial's coefficients (at most two steps kept)

    def append(self, t, h, B):
        """Keep one accepted step: its start, size and (a copy of) its table ``[y_n, k_1..k_s]``."""
        self._keys.append(self._direction * t)
        self.ts.append(t)
        self.hs.append(h)
        self.buffers.append(B.copy())

    def at(self, t):
        """The flat state at time ``t`` (no range check: the adjoints' fast path).

        The interpolant is a polynomial in ``theta`` (Tsitouras 2011; docs/solvers.md),
        ``y_n + h sum_i b_i(theta) k_i = C_0 + C_1 theta + ... + C_q theta^q``,
        so the step's coefficients ``C = P(h) @ [y_n, k_1..k_s]`` are computed
        once and each evaluation is the single product ``[1, theta, ..] @ C``.
        An adjoint asks for many times inside one step before moving on to the
        next, so at most two steps' ``C`` are kept (a third clears them).
        """
        n = self._step_of(t)
        C = self._coefficients(n)
        xp = array_module(C)
        return xp.dot(xp.asarray(self._powers(t, n, C.shape[0]), dtype=C.dtype), C)

    def at_many(self, times):
        """The flat states at several times, ``(len(times), N)``: one product per step touched.

        Times in the same step are taken together when they are next to each
        other, as an adjoint's stage times (sorted along the direction) are;
        any order gives the same values.
        """
        steps = [self._step_of(t) for t in times]
        C = self._coefficients(steps[0] if steps else len(self.ts) - 1)
        xp = array_module(C)
        out = xp.empty((len(times), C.shape[1]), dtype=C.dtype)
        start = 0
        for end in range(1, len(times) + 1):
            if end == len(times) or steps[end] != steps[start]:
                n = steps[start]
                C = self._coefficients(n)
                powers = [self._powers(t, n, C.shape[0]) for t in times[start:end]]
                xp.dot(xp.asarray(powers, dtype=C.dtype), C, out=out[start:end])
                start = end
        return out

    def _step_of(self, t):
        n = bisect.bisect_right(self._keys, self._direction * t) - 1
        return min(max(n, 0), len(self.ts) - 1)

    def _coefficients(self, n):
        C = self._polys.get(n)
        if C is None:
            if len(self._polys) >= 2:
                self._polys.clear()
            C = self._polys[n] = polynomial(self.tableau, self.buffers[n], self.hs[n])
        return C

    def _powers(self, t, n, count):
        theta = (t - self.ts[n]) / self.hs[n]
        powers = [1.0, theta]
        for _ in range(count - 2):
            powers.append(powers[-1] * theta)
        return powers

    def _one(self, t):
        if not (min(self.t0, self.t1) <= t <= max(self.t0, self.t1)):
            raise ArgumentError(f"t = {t} lies outside the solved span [{self.t0}, {self.t1}]")
        return self.at(t).reshape(self.shape)

    def __call__(self, t):
        try:
            times = np.asarray(t, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"sol(t) needs a time or a sequence of times, got {t!r}") from None
        if times.ndim == 0:
            return self._one(float(times))
        if times.ndim != 1 or times.size == 0:
            raise ArgumentError(f"sol(t) needs a time or a 1-D sequence of times, got shape {times.shape}")
        return array_module(self.buffers[0]).stack([self._one(float(ti)) for ti in times])


def interpolate(tableau, B, h, theta, out=None):
    """``y_n + h sum_i b_i(theta) k_i`` from a step buffer ``B = [y_n, k_1..k_s]``."""
    xp = array_module(B)
    coef = np.empty(tableau.stages + 1)
    coef[0] = 1.0
    coef[1:] = h * tableau.interp_weights(theta)
    return xp.matmul(xp.asarray(coef, dtype=B.dtype), B, out=out)


def polynomial(tableau, B, h):
    """The interpolant's coefficients ``C`` (``q+1`` rows) with ``y(t_n + theta h) = sum_p C_p theta^p``."""
    xp = array_module(B)
    q = tableau.interp.shape[1]
    P = np.zeros((q + 1, tableau.stages + 1))
    P[0, 0] = 1.0
    P[1:, 1:] = h * tableau.interp.T  # b_i(theta) = sum_p interp[i, p-1] theta^p
    return xp.matmul(xp.asarray(P, dtype=B.dtype), B)
