"""Augment (Dupont et al. 2019): k zero channels appended, its VJP against finite differences, dtypes, errors."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given
from hypothesis import strategies as st

import tinynode as tn
from tinynode import nn
from tinynode.errors import ArgumentError, ShapeError
from tinynode.testing import gradcheck

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)  # (..., d): any leading axes, d >= 1


@given(shape=shapes, k=st.integers(1, 4), seed=st.integers(0, 2**16), scale=st.floats(0.1, 10.0))
def test_augment_appends_zeros_and_its_vjp_matches_finite_differences(xp, shape, k, seed, scale):
    layer = nn.Augment(k)
    params = xp.asarray(layer.init(seed, np.float64))
    x = xp.asarray(scale * np.random.default_rng(seed).standard_normal(shape))
    y = layer(params, x)
    assert y.shape == (*shape[:-1], shape[-1] + k)
    np.testing.assert_array_equal(to_numpy(y[..., : shape[-1]]), to_numpy(x))
    assert not to_numpy(y[..., shape[-1] :]).any()
    report = gradcheck(layer, params, x)
    assert report.errors[1] is not None  # the input gradient was checked (there are no parameters)


@given(
    d=st.integers(1, 3),
    k=st.integers(1, 3),
    hidden=st.integers(1, 5),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 3.0),
)
def test_an_augmented_neural_ode_has_the_exact_gradient_of_its_fixed_steps(d, k, hidden, batch, seed, scale):
    """Chain(Augment, NeuralODE, Dense) on a fixed RK4 grid: DiscreteAdjoint differentiates that
    recurrence exactly, so it must match central differences of the whole chain to 1e-6."""
    field = nn.Chain(nn.Dense(d + k, hidden, "tanh"), nn.Dense(hidden, d + k))
    ode = tn.NeuralODE(field, solver=tn.RK4(), dt0=0.25, sensealg=tn.DiscreteAdjoint())
    model = nn.Chain(nn.Augment(k), ode, nn.Dense(d + k, 2))
    rng = np.random.default_rng(seed)
    params = model.init(seed, np.float64) + 0.3 * rng.standard_normal(model.num_params)
    x = scale * rng.standard_normal((batch, d))
    report = gradcheck(model, params, x)  # raises GradcheckError beyond a relative error of 1e-6
    assert report.errors[0] is not None and report.errors[1] is not None  # params and x both checked


@pytest.mark.parametrize("alg", [tn.DiscreteAdjoint(), tn.InterpolatingAdjoint()], ids=repr)
def test_an_augmented_neural_ode_with_adaptive_steps(alg):
    """The adaptive Tsit5 solve at tight tolerances: finite differences and the adjoint agree to 1e-5."""
    field = nn.Chain(nn.Dense(3, 5, "tanh"), nn.Dense(5, 3))
    model = nn.Chain(nn.Augment(2), tn.NeuralODE(field, rtol=1e-10, atol=1e-10, sensealg=alg), nn.Dense(3, 2))
    params = model.init(1, np.float64) + 0.1
    gradcheck(model, params, np.random.default_rng(0).standard_normal((4, 1)), tol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(xp, dtype):
    model = nn.Chain(nn.Augment(2), tn.NeuralODE(nn.Chain(nn.Dense(5, 4, "tanh"), nn.Dense(4, 5))), nn.Dense(5, 1))
    for layer in (nn.Augment(2), model):
        params = xp.asarray(layer.init(0, dtype=dtype))
        x = xp.asarray(np.random.default_rng(0).standard_normal((6, 3)), dtype=dtype)
        y, ctx = layer.forward(params, x)
        gx, gp = layer.backward(params, ctx, xp.ones_like(y))
        assert (params.dtype, y.dtype, gx.dtype, gp.dtype) == (dtype,) * 4
        assert gx.shape == x.shape and gp.shape == params.shape


def test_the_layer_protocol():
    layer = nn.Augment(3)
    assert tn.Augment is nn.Augment and "Augment" in tn.__all__ and "Augment" in nn.__all__
    assert repr(layer) == "Augment(3)" and layer.k == 3 and nn.Augment(np.int64(2)).k == 2
    assert layer.num_params == 0 and layer.unflatten(layer.init(0)) == {}
    assert layer.init(0).shape == (0,) and layer.init(0, np.float64).dtype == np.float64
    model = nn.Chain(nn.Flatten(), nn.Augment(3), nn.Dense(7, 2))
    assert repr(model) == "Chain(Flatten(), Augment(3), Dense(7 => 2))" and model.num_params == 16
    x = np.ones((2, 2, 2))
    y, ctx = model.forward(model.init(0, np.float64), x)
    gx, _ = model.backward(model.init(0, np.float64), ctx, np.ones_like(y), need_gx=False)
    assert y.shape == (2, 2) and gx is None
    gy = np.arange(10.0).reshape(2, 5)
    gx, _ = layer.backward(layer.init(0), (2, 2), gy)
    gy[...] = -1  # the input gradient is a copy, not a view the caller could overwrite later
    np.testing.assert_array_equal(gx, [[0.0, 1.0], [5.0, 6.0]])


@pytest.mark.parametrize("bad", [0, -1, 2.5, 2.0, "2", True, False, None, [2]])
def test_bad_k_names_the_argument_the_value_and_what_to_do(bad):
    with pytest.raises(ArgumentError, match=r"Augment's k .* must be a positive integer, got .*e\.g\. Augment\(2\)"):
        nn.Augment(bad)
    with pytest.raises(ArgumentError, match=repr(bad).replace("[", r"\[").replace("]", r"\]")):
        nn.Augment(bad)


def test_bad_inputs_raise_shape_errors():
    layer = nn.Augment(2)
    params = layer.init(0)
    with pytest.raises(ShapeError, match=r"Augment\(2\) appends channels to the last axis.*shape \(\)"):
        layer(params, np.float32(1.0))
    with pytest.raises(ShapeError, match=r"Augment\(2\) appends.*got list"):
        layer(params, [1.0, 2.0])
    y, ctx = layer.forward(params, np.ones((3, 4), np.float32))
    with pytest.raises(ShapeError, match=r"output gradient has shape \(3, 4\), the output \(3, 6\)"):
        layer.backward(params, ctx, np.ones((3, 4), np.float32))
