"""The NeuralODE layer and the tutorial model."""

import numpy as np
import pytest
from conftest import to_numpy

import tinynode as tn
from tinynode import nn
from tinynode.testing import gradcheck


def dynamics():
    return nn.Chain(nn.Dense(4, 6, "tanh"), nn.Dense(6, 4, "tanh"))


def test_tutorial_model_has_16450_parameters_and_its_layout():
    model = tn.models.tutorial_model()
    assert model.num_params == 16450
    view = model.unflatten(model.init(0))
    assert view["layers"][2]["dynamics"]["layers"][1]["weight"].shape == (10, 10)
    assert [layer.num_params for layer in model.layers] == [0, 15700, 540, 210]


@pytest.mark.parametrize(
    "alg", [tn.InterpolatingAdjoint(), tn.GaussAdjoint(), tn.BacksolveAdjoint(), tn.DiscreteAdjoint()], ids=repr
)
def test_neural_ode_layer_gradients(alg):
    layer = nn.Chain(
        nn.Dense(3, 4, "tanh"), tn.NeuralODE(dynamics(), rtol=1e-10, atol=1e-10, sensealg=alg), nn.Dense(4, 2)
    )
    params = layer.init(1, np.float64) + 0.1
    gradcheck(layer, params, np.random.default_rng(0).standard_normal((3, 3)), tol=1e-5)


def test_inference_and_training_paths_agree(xp):
    ode = tn.NeuralODE(dynamics())
    params = xp.asarray(ode.init(0))
    x = xp.asarray(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y_train, _ = ode.forward(params, x)
    y_infer = ode(params, x)
    assert y_train.shape == (5, 4) and y_train.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(y_train), to_numpy(y_infer))


def test_saveat_returns_the_states_at_those_times():
    ode = tn.NeuralODE(dynamics(), saveat=[0.5, 1.0], rtol=1e-8, atol=1e-8)
    params = ode.init(0, np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4))
    y, ctx = ode.forward(params, x)
    assert y.shape == (2, 2, 4)
    sol = tn.solve(tn.VectorField(ode.dynamics), x, (0.0, 1.0), params, rtol=1e-8, atol=1e-8, saveat=[0.5, 1.0])
    np.testing.assert_allclose(y, sol.y)
    gradcheck(ode, params, x, tol=1e-5)


def test_counts_are_reported_after_each_call():
    ode = tn.NeuralODE(dynamics())
    params = ode.init(0)
    x = np.ones((3, 4), np.float32)
    y, ctx = ode.forward(params, x)
    fwd = ode.last_stats["forward"]
    assert fwd["nf"] == 2 + 6 * (fwd["naccept"] + fwd["nreject"])
    ode.backward(params, ctx, np.ones_like(y))
    assert ode.last_stats["backward"]["nvjp"] > 0
    assert ode.counts["forward_nf"] == fwd["nf"] and ode.counts["backward_nvjp"] > 0
    ode.reset_counts()
    assert ode.counts["forward_nf"] == 0


def test_whole_batch_is_one_ode():
    # The step sequence is shared, so a sample's output depends (slightly) on the rest of its batch,
    # exactly as in the tutorial; at tight tolerance the dependence vanishes.
    ode = tn.NeuralODE(dynamics(), rtol=1e-12, atol=1e-12)
    params = ode.init(0, np.float64)
    x = np.random.default_rng(0).standard_normal((4, 4))
    np.testing.assert_allclose(ode(params, x)[:1], ode(params, x[:1]), atol=1e-10)


@pytest.mark.parametrize("solver, dt0", [(tn.RK4(), 0.1), (tn.Euler(), 0.05), (tn.Tsit5(), 0.25)])
@pytest.mark.parametrize(
    "alg", [tn.InterpolatingAdjoint(), tn.GaussAdjoint(), tn.BacksolveAdjoint(), tn.DiscreteAdjoint()], ids=repr
)
def test_fixed_steps_inside_a_neural_ode(solver, dt0, alg):
    """A fixed-step method (or Tsit5 on a fixed grid) in a NeuralODE: the forward pass is that method's
    own recurrence, and DiscreteAdjoint's gradient is exactly its derivative."""
    controller = tn.ConstantStepSize() if solver.adaptive else None
    ode = tn.NeuralODE(dynamics(), solver=solver, controller=controller, dt0=dt0, sensealg=alg)
    params = ode.init(0, np.float64) + 0.05
    x = np.random.default_rng(1).standard_normal((3, 4))
    y, ctx = ode.forward(params, x)
    steps = round(1 / dt0)
    assert ode.last_stats["forward"]["naccept"] == steps and ode.last_stats["forward"]["nreject"] == 0
    expect = x.copy()  # the method's recurrence by hand, for Euler: y <- y + h f(y)
    if solver.stages == 1:
        for _ in range(steps):
            expect = expect + dt0 * ode.dynamics(params, expect)
        np.testing.assert_allclose(y, expect, rtol=1e-12)
    # the discrete adjoint is exact for the computed recurrence; the continuous ones carry the method's error
    gradcheck(ode, params, x, tol=1e-7 if isinstance(alg, tn.DiscreteAdjoint) else dt0**solver.order)


def test_a_neural_ode_solves_per_call_with_its_own_saveat_and_dense_output():
    ode = tn.NeuralODE(dynamics(), rtol=1e-8, atol=1e-8)
    params = ode.init(0, np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4))
    sol = ode.solve(params, x, saveat=np.linspace(0, 1, 5), dense=True)
    assert sol.y.shape == (5, 2, 4) and sol.t[-1] == 1.0
    np.testing.assert_allclose(sol.y[-1], ode(params, x), rtol=1e-12)
    np.testing.assert_allclose(sol(0.5), sol.y[2], rtol=1e-7)
    steps = ode.solve(params, x)  # every step
    assert len(steps.t) == steps.stats["naccept"] + 1


def test_neural_ode_options_are_keyword_only_and_checked():
    with pytest.raises(TypeError):
        tn.NeuralODE(dynamics(), (0.0, 1.0), tn.Tsit5())  # positional options: not accepted
    with pytest.raises(tn.ArgumentError, match="dt0"):
        tn.NeuralODE(dynamics(), solver=tn.RK4())
    with pytest.raises(tn.ArgumentError, match="tspan"):
        tn.NeuralODE(dynamics(), (0.0, 0.0))


def test_the_tutorial_model_can_be_widened_and_stepped_by_hand():
    wide = tn.models.tutorial_model(hidden=32)
    assert wide.num_params == 15700 + (20 * 32 + 32) + (32 * 32 + 32) + (32 * 20 + 20) + 210
    rk4 = tn.models.tutorial_model(solver=tn.RK4(), dt0=0.25)
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    rk4(rk4.init(0), x)
    assert tn.models.find_neural_odes(rk4)[0].last_stats["forward"]["naccept"] == 4
    with pytest.raises(tn.ArgumentError, match="cannot adapt its steps"):
        tn.models.tutorial_model(solver=tn.RK4(), dt0=0.25, controller=tn.IController())
