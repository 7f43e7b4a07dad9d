"""Regularisers (tinynode/regularizers.py): the gradient of every regularised loss against central
finite differences, for every gradient method that supports it, through the public API."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynode as tn
from tinynode import nn
from tinynode.errors import ArgumentError
from tinynode.regularizers import Regularization, parse_regularization

WEIGHTS = dict(kinetic=0.3, jacobian=0.2, error=0.5, error_sampled=0.4, steer=0.2)
# (sensealg, fixed steps?, the terms it supports). DiscreteAdjoint differentiates the computed solution
# exactly, so it is checked on a fixed grid (adaptive steps would move under the finite differences).
METHODS = {
    "discrete": (tn.DiscreteAdjoint(), True, list(WEIGHTS)),
    "interpolating": (tn.InterpolatingAdjoint(), False, ["kinetic", "jacobian", "error_sampled", "steer"]),
    "gauss": (tn.GaussAdjoint(), False, ["kinetic", "jacobian", "error_sampled", "steer"]),
    "backsolve": (tn.BacksolveAdjoint(), False, ["kinetic", "jacobian", "error_sampled", "steer"]),
}


def make(sensealg, fixed, reg, net, tspan=(0.0, 1.0)):
    steps = dict(controller=tn.ConstantStepSize(), dt0=0.2) if fixed else dict(rtol=1e-7, atol=1e-7)
    return tn.NeuralODE(net, tspan, sensealg=sensealg, regularize=reg, **steps)


def loss(sensealg, fixed, reg, net, x, p, gy, tspan):
    """<gy, y(t1)> + sum_j w_j R_j, from a fresh layer: the same noise, end time and sampled time each call."""
    out, run = make(sensealg, fixed, reg, net, tspan).forward(p, x)
    return float(np.sum(gy * out)) + sum(getattr(reg, k) * v for k, v in run.values.items())


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=5, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(1, 4),
    d=st.integers(1, 3),
    hidden=st.integers(2, 6),
    act=st.sampled_from(["tanh", "softplus", "sigmoid"]),
    seed=st.integers(0, 2**16),
    backward=st.booleans(),
)
def test_regularised_gradients_match_finite_differences(method, data, rows, d, hidden, act, seed, backward):
    sensealg, fixed, supported = METHODS[method]
    terms = data.draw(st.lists(st.sampled_from(supported), min_size=1, max_size=len(supported), unique=True))
    reg = Regularization(**{k: WEIGHTS[k] for k in terms}, seed=seed)
    net = nn.Chain(nn.Dense(d, hidden, act), nn.Dense(hidden, d, "tanh"))
    rng = np.random.default_rng(seed)
    p = 1.5 * net.init(seed, np.float64) + 0.1 * rng.standard_normal(net.num_params)
    x, gy = rng.standard_normal((rows, d)), rng.standard_normal((rows, d))
    tspan = (1.2, 0.2) if backward else (0.2, 1.2)
    ode = make(sensealg, fixed, reg, net, tspan)
    out, run = ode.forward(p, x)
    assert set(run.values) == set(terms) - {"steer"} and all(v >= 0 for v in run.values.values())
    gx, gp = ode.backward(p, run, gy)
    eps = 1e-6
    for _ in range(2):
        dx, dp = rng.standard_normal(x.shape), rng.standard_normal(p.shape)
        fd = (loss(sensealg, fixed, reg, net, x + eps * dx, p + eps * dp, gy, tspan)
              - loss(sensealg, fixed, reg, net, x - eps * dx, p - eps * dp, gy, tspan)) / (2 * eps)  # fmt: skip
        assert abs(fd - (np.sum(gx * dx) + np.sum(gp * dp))) <= 2e-5 * (1 + abs(fd)), (terms, fd)


def test_the_integrals_are_what_they_say():
    """R_K and R_J against the same integrals computed by hand on a dense trajectory (exact Jacobians);
    over a backward span they are the integrals over |dt|, the same numbers."""
    net = nn.Chain(nn.Dense(2, 5, "tanh"), nn.Dense(5, 2, "tanh"))
    p, x = net.init(1, np.float64) * 2, np.random.default_rng(1).standard_normal((3, 2))
    ode = tn.NeuralODE(net, rtol=1e-10, atol=1e-10, regularize=Regularization(kinetic=1.0, jacobian=1.0, seed=4))
    _, run = ode.forward(p, x)
    noise = Regularization(seed=4).draw_noise(np.random.default_rng(4), x.shape, x.dtype, np)
    ts = np.linspace(0, 1, 2001)
    traj = tn.solve(tn.VectorField(net), x, (0.0, 1.0), p, saveat=ts, rtol=1e-11, atol=1e-11).y
    kin, jac = [], []
    for z in traj:
        fz, ctx = net.forward(p, z)
        kin.append(np.sum(fz * fz) / 3)
        jac.append(np.sum(net.backward(p, ctx, noise)[0] ** 2) / 3)
    np.testing.assert_allclose(run.values["kinetic"], np.trapezoid(kin, ts), rtol=1e-6)
    np.testing.assert_allclose(run.values["jacobian"], np.trapezoid(jac, ts), rtol=1e-6)
    back = tn.NeuralODE(net, (1.0, 0.0), rtol=1e-10, atol=1e-10, regularize=Regularization(kinetic=1.0, seed=4))
    traj = tn.solve(tn.VectorField(net), x, (1.0, 0.0), p, saveat=ts[::-1], rtol=1e-11, atol=1e-11).y
    kin_back = [np.sum(net(p, z) ** 2) / 3 for z in traj]
    np.testing.assert_allclose(back.forward(p, x)[1].values["kinetic"], np.trapezoid(kin_back, ts), rtol=1e-6)


def test_inference_is_the_plain_solve_and_float32_stays_float32():
    net = nn.Chain(nn.Dense(3, 4, "tanh"), nn.Dense(4, 3))
    p, x = net.init(0), np.ones((2, 3), np.float32)
    reg = Regularization(kinetic=0.1, jacobian=0.1, error_sampled=0.1, steer=0.3)
    ode, plain = tn.NeuralODE(net, regularize=reg), tn.NeuralODE(net)
    np.testing.assert_array_equal(ode(p, x), plain(p, x))
    out, run = ode.forward(p, x)
    gx, gp = ode.backward(p, run, np.ones_like(out))
    assert out.dtype == gx.dtype == gp.dtype == np.float32 and out.shape == x.shape
    assert set(ode.last_stats["regularization"]) == {"kinetic", "jacobian", "error_sampled"}


def test_bad_settings_say_what_to_do():
    net = nn.Dense(2, 2)
    for bad in (dict(kinetic=-1.0), dict(jacobian=float("nan")), dict(error=True), dict(seed=-1), dict(noise="x")):
        with pytest.raises(ArgumentError):
            Regularization(**bad)
    with pytest.raises(ArgumentError, match="DiscreteAdjoint"):
        tn.NeuralODE(net, sensealg=tn.InterpolatingAdjoint(), regularize=Regularization(error=1.0))
    with pytest.raises(ArgumentError, match="shorter than the span"):
        tn.NeuralODE(net, regularize=Regularization(steer=1.0))
    with pytest.raises(ArgumentError, match="adaptive"):
        tn.NeuralODE(net, solver=tn.RK4(), dt0=0.1, regularize=Regularization(error_sampled=1.0))
    with pytest.raises(ArgumentError, match="saveat"):
        tn.NeuralODE(net, saveat=[0.5, 1.0], regularize=Regularization(kinetic=1.0))
    with pytest.raises(ArgumentError, match="backward_vjp"):  # at once, not at the first forward pass
        tn.NeuralODE(tn.NeuralODE(net), regularize=Regularization(jacobian=1.0))
    with pytest.raises(ArgumentError, match="local_error"):
        sol, pullback = tn.solve_with_vjp(tn.VectorField(net), np.ones((1, 2)), (0, 1), np.zeros(6),
                                          sensealg=tn.GaussAdjoint())  # fmt: skip
        pullback(np.ones_like(sol.y), local_error=1.0)


def test_parse_regularization():
    assert parse_regularization("kinetic=0.01, jacobian=0.5") == Regularization(kinetic=0.01, jacobian=0.5)
    assert parse_regularization("steer=0.5,error_sampled=1", seed=3) == Regularization(
        steer=0.5, error_sampled=1.0, seed=3
    )
    for bad in ("kinetic", "speed=1", "kinetic=fast", "kinetic=-1", "kinetic=1,kinetic=2"):
        with pytest.raises(ArgumentError, match="--regularize"):
            parse_regularization(bad)


def test_the_noise_is_fixed_within_a_solve_and_fresh_for_the_next():
    """One draw per solve (torchdiffeq #120): two solves from the same layer see different noise; a
    layer made with the same seed replays the same sequence of draws, and one told it has done a
    solve already (a resumed run) draws what the second solve drew."""
    net = nn.Chain(nn.Dense(3, 5, "tanh"), nn.Dense(5, 3, "tanh"))
    p, x = net.init(2, np.float64), np.random.default_rng(2).standard_normal((4, 3))
    reg = Regularization(jacobian=1.0, seed=9)
    first = tn.NeuralODE(net, regularize=reg)
    a, b = (first.forward(p, x)[1].values["jacobian"] for _ in range(2))
    again = tn.NeuralODE(net, regularize=reg)
    assert a != b and [again.forward(p, x)[1].values["jacobian"] for _ in range(2)] == [a, b]
    resumed = tn.NeuralODE(net, regularize=reg)
    resumed.training_solves = 1
    assert resumed.forward(p, x)[1].values["jacobian"] == b
