"""Gradients with respect to t0, t1 and the output times (tinynode/adjoints/times.py), for every
gradient method, against central finite differences of tight solves through the public API."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynode as tn

METHODS = {
    "discrete": tn.DiscreteAdjoint(),
    "interpolating": tn.InterpolatingAdjoint(),
    "interpolating-checkpointing": tn.InterpolatingAdjoint(checkpointing=True),
    "gauss": tn.GaussAdjoint(),
    "backsolve": tn.BacksolveAdjoint(),
}
TIGHT = dict(rtol=1e-11, atol=1e-11)


class Forced:
    """dy/dt = tanh(W y + b) (1 + sin(2t) / 2): nonlinear and non-autonomous (the formulas must
    hold when f depends on t explicitly); params = [W.ravel(), b]."""

    def __init__(self, n):
        self.n = n

    def _unpack(self, p):
        n = self.n
        return p[: n * n].reshape(n, n), p[n * n :]

    def __call__(self, t, y, p):
        w, b = self._unpack(p)
        return np.tanh(y @ w.T + b) * (1 + 0.5 * math.sin(2 * t))

    def vjp(self, t, y, p, v):
        w, b = self._unpack(p)
        s = 1 + 0.5 * math.sin(2 * t)
        gz = v * s * (1 - np.tanh(y @ w.T + b) ** 2)
        return gz @ w, np.concatenate([(gz.T @ y).ravel(), gz.sum(axis=0)])


def problem(seed, rows, n):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.standard_normal(n * n) / math.sqrt(n), 0.3 * rng.standard_normal(n)])
    return Forced(n), rng.standard_normal((rows, n)), p, rng


def loss(field, y0, p, t0, t1, saveat, weights):
    sol = tn.solve(field, y0, (t0, t1), p, saveat=saveat, **TIGHT)
    return float(np.sum(weights * sol.y))


def central(fn, x, eps=1e-5):
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


@pytest.mark.parametrize("name", METHODS)
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 3), n=st.integers(1, 3), backward=st.booleans())
def test_time_gradients_match_finite_differences(name, seed, rows, n, backward):
    field, y0, p, rng = problem(seed, rows, n)
    t0, t1 = (0.2, 1.1) if not backward else (1.1, 0.2)
    saveat = [t0, t0 + 0.4 * (t1 - t0), t1]  # an output at t0 (y0 itself), one inside, one at t1
    weights = rng.standard_normal((3, rows, n))
    sol, pullback = tn.solve_with_vjp(field, y0, (t0, t1), p, saveat=saveat, sensealg=METHODS[name], **TIGHT)
    grads = pullback(weights)

    def moved(k):
        return lambda s: loss(field, y0, p, t0, t1, saveat[:k] + [s] + saveat[k + 1 :], weights)

    # moving t0 (t1) moves the output at t0 (t1) with it; the output at t0 is y0 whatever t0 is
    fd_t0 = central(lambda s: loss(field, y0, p, s, t1, [s] + saveat[1:], weights), t0)
    fd_t1 = central(lambda s: loss(field, y0, p, t0, s, saveat[:2] + [s], weights), t1)
    fd_t = [0.0, central(moved(1), saveat[1]), fd_t1]
    scale = 1 + max(abs(v) for v in fd_t + [fd_t0])
    np.testing.assert_allclose(grads.t, fd_t, atol=1e-6 * scale)
    assert abs(grads.t0 - fd_t0) <= 1e-6 * scale
    assert abs(grads.t1 - fd_t1) <= 1e-6 * scale
    assert grads.t[0] == 0.0 and grads.t1 == grads.t[2]


def test_closed_form_exponential():
    """y' = a y, L = y(T) + y(s): dL/dT = a y(T), dL/ds = a y(s), dL/dt0 = -a (y(T) + y(s))."""

    class Exponential:
        def __call__(self, t, y, p):
            return p[0] * y

        def vjp(self, t, y, p, v):
            return p[0] * v, np.array([np.sum(v * y)])

    a, y0, t0, s, T = -0.7, np.array([1.5]), 0.3, 1.0, 2.0
    for alg in METHODS.values():
        _, pullback = tn.solve_with_vjp(Exponential(), y0, (t0, T), np.array([a]), saveat=[s, T], sensealg=alg,
                                        rtol=1e-10, atol=1e-10)  # fmt: skip
        grads = pullback(np.ones((2, 1)))
        ys, yT = y0[0] * math.exp(a * (s - t0)), y0[0] * math.exp(a * (T - t0))
        np.testing.assert_allclose(grads.t, [a * ys, a * yT], rtol=1e-8)
        np.testing.assert_allclose([grads.t0, grads.t1], [-a * (ys + yT), a * yT], rtol=1e-8)


def test_still_a_triple_and_t1_not_an_output():
    """A pullback still unpacks as (gy0, gparams, stats); without an output at t1, dL/dt1 = 0; the
    time gradients of a float32 solve are host floats."""
    field, y0, p, _ = problem(0, 2, 2)
    y0, p = y0.astype(np.float32), p.astype(np.float32)
    sol, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), p, saveat=[0.5])
    gy0, gp, stats = grads = pullback(np.ones_like(sol.y))
    assert grads.y0 is gy0 and grads.params is gp and grads.stats is stats and gy0.dtype == np.float32
    assert grads.t1 == 0.0 and isinstance(grads.t0, float) and grads.t.dtype == np.float64
    assert grads.t[0] != 0.0 and grads.t0 != 0.0


def test_time_gradients_refuse_a_pullback_that_weighed_the_error_estimates():
    field, y0, p, _ = problem(0, 2, 2)
    sol, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), p)
    grads = pullback(np.ones_like(sol.y), local_error=1.0)
    for name in ("t0", "t1", "t"):
        with pytest.raises(tn.ArgumentError, match="without local_error"):
            getattr(grads, name)
