"""Layers: hand-written VJPs against finite differences, dtypes, views, init."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given
from hypothesis import strategies as st

import tinynode
from tinynode import nn
from tinynode.errors import ArgumentError, DTypeError, GradcheckError, ShapeError
from tinynode.testing import gradcheck

ACTS = ["identity", "tanh", "relu", "sigmoid", "softplus"]


def random_params(layer, seed, xp, dtype=np.float64, bias_scale=0.5):
    """Initialised parameters with random (non-zero) biases, so every term is exercised."""
    rng = np.random.default_rng(seed + 1)
    p = layer.init(seed, dtype=dtype)
    p += (bias_scale * rng.standard_normal(p.shape) * (p == 0)).astype(dtype)
    return xp.asarray(p)


def tutorial_model():
    ode_net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    return nn.Chain(nn.Flatten(), nn.Dense(784, 20, "tanh"), ode_net, nn.Dense(20, 10))


@given(
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    batch=st.integers(1, 5),
    act=st.sampled_from(ACTS),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 3.0),
)
def test_dense_vjp_matches_finite_differences(xp, n_in, n_out, batch, act, seed, scale):
    layer = nn.Dense(n_in, n_out, act)
    params = random_params(layer, seed, xp)
    x = xp.asarray(scale * np.random.default_rng(seed).standard_normal((batch, n_in)))
    report = gradcheck(layer, params, x, tol=1e-6)
    assert report.errors[0] is not None and report.errors[1] is not None


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), act=st.sampled_from(ACTS), seed=st.integers(0, 2**16))
def test_dense_accepts_any_leading_shape(xp, lead, act, seed):
    layer = nn.Dense(3, 2, act)
    params = random_params(layer, seed, xp)
    x = xp.asarray(np.random.default_rng(seed).standard_normal((*lead, 3)))
    assert layer(params, x).shape == (*lead, 2)
    gradcheck(layer, params, x)


@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=5),
    batch=st.integers(1, 4),
    acts=st.lists(st.sampled_from(ACTS), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_chain_vjp_matches_finite_differences(xp, widths, batch, acts, seed):
    layers = [nn.Dense(a, b, acts[i % 4]) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    chain = nn.Chain(*layers)
    params = random_params(chain, seed, xp)
    x = xp.asarray(np.random.default_rng(seed).standard_normal((batch, widths[0])))
    gradcheck(chain, params, x)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_flatten_then_dense(xp, shape, batch, seed):
    n = int(np.prod(shape))
    chain = nn.Chain(nn.Flatten(), nn.Dense(n, 3, "tanh"))
    params = random_params(chain, seed, xp)
    x = xp.asarray(np.random.default_rng(seed).standard_normal((batch, *shape)))
    assert chain(params, x).shape == (batch, 3)
    gradcheck(chain, params, x)


def test_tutorial_model_gradient_and_size(xp):
    model = tutorial_model()
    assert model.num_params == 16450
    params = random_params(model, 3, xp)
    x = xp.asarray(np.random.default_rng(0).random((2, 28, 28)))
    gradcheck(model, params, x)


def test_a_wrong_vjp_is_caught():
    class Broken(nn.Dense):
        def backward(self, params, ctx, gy, **kw):
            gx, gp = super().backward(params, ctx, gy, **kw)
            gp[0] *= 1.001  # a 0.1 % mistake in one weight
            return gx, gp

    layer = Broken(3, 2, "tanh")
    with pytest.raises(GradcheckError, match="worst relative error"):
        gradcheck(layer, layer.init(0, np.float64), np.ones((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
def test_dtype_is_preserved(xp, dtype, act):
    for layer in (nn.Dense(4, 3, act), nn.Chain(nn.Flatten(), nn.Dense(4, 3, act)), nn.Flatten()):
        params = xp.asarray(layer.init(0, dtype=dtype))
        assert params.dtype == dtype
        x = xp.asarray(np.random.default_rng(0).standard_normal((5, 4)), dtype=dtype)
        y, ctx = layer.forward(params, x)
        gx, gp = layer.backward(params, ctx, xp.ones_like(y))
        assert y.dtype == dtype and gx.dtype == dtype and gp.dtype == dtype
        assert gp.shape == params.shape


def test_tutorial_model_is_float32_end_to_end(xp):
    model = tutorial_model()
    params = xp.asarray(model.init(0))
    x = xp.asarray(np.random.default_rng(0).random((4, 28, 28), dtype=np.float32))
    y, ctx = model.forward(params, x)
    gx, gp = model.backward(params, ctx, xp.ones_like(y))
    assert (params.dtype, y.dtype, gx.dtype, gp.dtype) == (np.float32,) * 4


def test_need_gx_false_skips_the_input_gradient(xp):
    model = tutorial_model()
    params = xp.asarray(model.init(0))
    x = xp.ones((2, 28, 28), dtype=np.float32)
    y, ctx = model.forward(params, x)
    gx, gp = model.backward(params, ctx, xp.ones_like(y), need_gx=False)
    _, gp_full = model.backward(params, ctx, xp.ones_like(y))
    assert gx is None
    np.testing.assert_array_equal(to_numpy(gp), to_numpy(gp_full))


def test_init_is_deterministic_glorot_with_zero_bias():
    layer = nn.Dense(30, 50, "tanh")
    a, b, c = layer.init(7), layer.init(7), layer.init(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    view = layer.unflatten(a)
    limit = np.sqrt(6 / 80)
    assert np.all(np.abs(view["weight"]) <= limit) and np.abs(view["weight"]).max() > 0.9 * limit
    assert abs(view["weight"].std() - limit / np.sqrt(3)) < 0.02  # uniform(-l, l) has std l/sqrt(3)
    np.testing.assert_array_equal(view["bias"], 0)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(tutorial_model().init(rng), tutorial_model().init(np.random.default_rng(5)))


def test_unflatten_gives_views_not_copies():
    model = tutorial_model()
    params = model.init(0)
    tree = model.unflatten(params)
    w = tree["layers"][2]["layers"][1]["weight"]
    assert w.shape == (10, 10) and np.shares_memory(w, params)
    w[0, 0] = 123.0
    assert 123.0 in params
    assert tree["layers"][0] == {}
    assert tree["layers"][3]["bias"].shape == (10,)


def test_bad_inputs_raise_clear_errors():
    layer = nn.Dense(3, 2)
    params = layer.init(0)
    with pytest.raises(ShapeError, match=r"inputs of shape \(\.\.\., 3\)"):
        layer(params, np.ones((4, 5), np.float32))
    with pytest.raises(ShapeError, match="flat parameter vector of length 8"):
        layer(params[:-1], np.ones((4, 3), np.float32))
    with pytest.raises(DTypeError, match="float64 differs from parameter dtype float32"):
        layer(params, np.ones((4, 3)))
    with pytest.raises(ValueError, match="unknown activation"):
        nn.Dense(3, 2, "gelu")
    with pytest.raises(ArgumentError, match="is not a layer"):
        nn.Chain(nn.Dense(2, 2), "tanh")
    for bad in (2.5, 0, -1, "3", True):
        with pytest.raises(ArgumentError, match="in_features must be a positive integer"):
            nn.Dense(bad, 2)
    with pytest.raises(DTypeError, match="float32 or float64"):
        layer(np.zeros(8, dtype=np.int64), np.ones((4, 3), np.int64))


class Scale(nn.Layer):
    """A user's layer, as docs/layers.md writes it: y = x * s (one parameter per feature).
    Its backward returns a fresh gradient; it knows nothing of any buffer a container keeps."""

    def __init__(self, n):
        self.n = n

    def param_shapes(self):
        return {"s": (self.n,)}

    def initial_value(self, name, shape, rng):
        return rng.uniform(0.5, 1.5, shape)

    def forward(self, params, x):
        return x * params, x

    def backward(self, params, x, gy, need_gx=True):
        return gy * params, (gy * x).reshape(-1, self.n).sum(axis=0)


def test_a_users_layer_inside_a_chain_gets_its_own_gradient():
    """The container uses what each layer's backward returns (the Scale example once got leftover memory)."""
    chain = nn.Chain(nn.Dense(3, 4, "tanh"), Scale(4), nn.Dense(4, 2))
    params = chain.init(0, np.float64)
    assert chain.num_params == 16 + 4 + 10
    assert np.all(chain.unflatten(params)["layers"][1]["s"] >= 0.5)
    gradcheck(chain, params, np.random.default_rng(0).standard_normal((5, 3)))


def test_a_wrong_shaped_parameter_gradient_is_caught_by_the_chain():
    class Broken(Scale):
        def backward(self, params, x, gy, need_gx=True):
            return gy * params, (gy * x)  # not summed over the batch

    chain = nn.Chain(Broken(2), nn.Dense(2, 1))
    params = chain.init(0, np.float64)
    y, ctx = chain.forward(params, np.ones((3, 2)))
    with pytest.raises(ShapeError, match=r"Broken.*parameter gradient of shape \(3, 2\).*length 2"):
        chain.backward(params, ctx, np.ones_like(y))


def test_layer_bookkeeping_from_param_shapes():
    layer = nn.Dense(3, 2, "tanh")
    a, b = layer.init(7), layer.init(np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)  # a seed and a generator seeded alike give the same weights
    assert a.dtype == np.float32 and layer.init(0, np.float64).dtype == np.float64
    views = layer.unflatten(a)
    assert views["weight"].shape == (2, 3) and views["bias"].shape == (2,)
    views["bias"][...] = 5.0  # views, not copies
    assert np.all(a[6:] == 5.0)
    chain = nn.Chain(nn.Flatten(), layer, nn.Dense(2, 1))
    p = chain.init(0)
    np.testing.assert_array_equal(
        chain.params_of(p, 2),
        chain.unflatten(p)["layers"][2]["weight"].reshape(-1).tolist()
        + chain.unflatten(p)["layers"][2]["bias"].tolist(),
    )


def test_activations_are_stable_at_extremes(xp):
    for act in ACTS:
        layer = nn.Dense(1, 1, act)
        params = xp.asarray(np.array([1.0, 0.0], np.float32))
        x = xp.asarray(np.array([[-1e4], [0.0], [1e4]], np.float32))
        y, ctx = layer.forward(params, x)
        gx, gp = layer.backward(params, ctx, xp.ones_like(y))
        assert np.all(np.isfinite(to_numpy(y))) and np.all(np.isfinite(to_numpy(gx))), act


def test_public_names():
    assert tinynode.nn.Dense and tinynode.nn.Flatten and tinynode.nn.Chain


def test_gradcheck_names_the_arguments_it_checks():
    class Doubled(Scale):  # a wrong parameter gradient (twice the right one), a right input gradient
        def backward(self, params, x, gy, need_gx=True):
            gx, gp = super().backward(params, x, gy)
            return gx, 2 * gp

    layer = Doubled(3)
    with pytest.raises(GradcheckError) as e:
        gradcheck(layer, layer.init(0, np.float64), np.ones((2, 3)))
    lines = str(e.value).splitlines()
    errors = {line.split(":")[0].strip(): float(line.split()[1]) for line in lines[1:]}
    assert errors["params"] == pytest.approx(0.5, rel=1e-6) and errors["x"] < 1e-8  # |2g - g| / |2g|
    field = tinynode.VectorField(nn.Dense(2, 2, "tanh"))
    report = gradcheck(field, np.ones((3, 2)), nn.Dense(2, 2).init(0, np.float64))
    assert report.names == ["y", "params"] and report.ok
