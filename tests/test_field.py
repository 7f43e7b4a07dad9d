"""VectorField and its fast path (tinynode.fastmlp): the same values and derivatives as the layers."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import given
from hypothesis import strategies as st
from test_layers import ACTS, random_params

import tinynode as tn
from tinynode import nn
from tinynode.errors import DTypeError, ShapeError
from tinynode.fastmlp import MLPField, dense_layers
from tinynode.testing import gradcheck


def _mlp(widths, acts):
    return nn.Chain(*[nn.Dense(a, b, act) for a, b, act in zip(widths[:-1], widths[1:], acts)])


@given(
    widths=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    lead=st.lists(st.integers(1, 4), max_size=2),
    points=st.integers(1, 4),
    acts=st.lists(st.sampled_from(ACTS), min_size=4, max_size=4),
    sign=st.sampled_from([1.0, -1.0]),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_the_bound_mlp_computes_what_the_layers_compute(xp, widths, lead, points, acts, sign, seed, dtype):
    """Every method of the fast path (tinynode.fastmlp) against the one reference: the layers'
    own forward and backward (checked against finite differences in test_layers.py)."""
    widths[-1] = widths[0]  # a vector field maps the state to its own space
    net = _mlp(widths, acts)
    field = tn.VectorField(net)
    params = random_params(net, seed, xp, dtype)
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (widths[0],)
    bound = field.bind(params, shape, dtype)
    assert isinstance(bound, MLPField)  # the fast path is the one under test
    ys = xp.asarray(rng.standard_normal((points, *shape)).astype(dtype))
    vs = xp.asarray(rng.standard_normal(ys.shape).astype(dtype))
    before = to_numpy(ys).copy()
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    def close(a, b, scale=1.0):
        assert a.dtype == dtype
        np.testing.assert_allclose(to_numpy(a).reshape(-1), scale * to_numpy(b).reshape(-1), rtol=rtol, atol=rtol)

    lin = bound.linearize(ys.reshape(points, -1), sign=sign)
    weights = rng.standard_normal(points)
    expect_sum = 0
    for i in range(points):
        value, ctx = net.forward(params, ys[i])
        gy, gp = net.backward(params, ctx, vs[i])
        y, v = ys[i].reshape(-1), vs[i].reshape(-1)
        row = xp.empty_like(y)
        assert bound.into(0.0, y, row) is row
        close(row, value)
        got_gy, got_gp = bound.vjp(0.0, y, v)
        close(got_gy, gy)
        close(got_gp, gp)
        got_gy, none = bound.vjp(0.0, y, v, need_params=False)
        close(got_gy, gy)
        assert none is None
        for a, b in zip(bound.value_and_vjp(0.0, y, v), (value, gy, gp)):
            close(a, b)
        out, gparams = xp.empty_like(y), xp.empty_like(params)
        close(lin.vjp(i, v, out=out, gparams=gparams), gy, sign)
        close(out, gy, sign)
        close(gparams, gp, sign)
        close(lin.vjp(i, v), gy, sign)
        expect_sum = expect_sum + weights[i] * to_numpy(gp)
    weighted = vs.reshape(points, -1) * xp.asarray(weights.astype(dtype)[:, None])
    np.testing.assert_allclose(to_numpy(lin.param_vjp_sum(weighted)), sign * expect_sum, rtol=10 * rtol, atol=10 * rtol)
    np.testing.assert_array_equal(to_numpy(ys), before)  # the states are never written to


@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    batch=st.integers(1, 4),
    acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_fast_path_vjp_matches_finite_differences(xp, widths, batch, acts, seed):
    widths[-1] = widths[0]
    net = _mlp(widths, acts)
    params = random_params(net, seed, xp)
    y = xp.asarray(np.random.default_rng(seed).standard_normal((batch, widths[0])))
    assert gradcheck(tn.VectorField(net), y, params, t=0.3).ok  # (gradcheck raises on failure too)


def test_inputs_the_fast_path_cannot_take_get_the_layers_errors():
    net = _mlp([3, 4, 3], ["tanh", "tanh"])
    field = tn.VectorField(net)
    params = net.init(0)  # float32
    with pytest.raises(DTypeError, match="does not promote"):
        field(0.0, np.ones((2, 3)), params)  # float64 state, float32 parameters
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        field(0.0, np.ones((2, 4), np.float32), params)
    with pytest.raises(ShapeError, match="flat parameter vector of length"):
        field(0.0, np.ones((2, 3), np.float32), params[:-1])
    with pytest.raises(ShapeError, match="flat parameter vector of length"):
        field.vjp(0.0, np.ones((2, 3), np.float32), params[:-1], np.ones((2, 3), np.float32))


def test_chain_call_is_inference_and_equals_forward():
    net = nn.Chain(nn.Flatten(), nn.Dense(6, 4, "relu"), nn.Dense(4, 2))
    params = net.init(1)
    x = np.random.default_rng(0).random((3, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(net(params, x), net.forward(params, x)[0])
    with pytest.raises(ShapeError):
        net(params[:-1], x)


@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    batch=st.integers(1, 3),
    points=st.integers(1, 3),
    acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_linearization_matches_finite_differences(widths, batch, points, acts, seed):
    """The stacked VJPs against central differences of f itself, in float64 (not only against field.vjp)."""
    widths[-1] = widths[0]
    net = _mlp(widths, acts)
    field = tn.VectorField(net)
    rng = np.random.default_rng(seed)
    params = random_params(net, seed, np, np.float64)
    ys = rng.standard_normal((points, batch, widths[0]))
    vs = rng.standard_normal(ys.shape)
    lin = field.bind(params, ys.shape[1:], ys.dtype).linearize(ys.reshape(points, -1), sign=-1.0)
    eps = 1e-6
    dp = rng.standard_normal(params.shape)
    for i in range(points):
        dy = rng.standard_normal(ys.shape[1:])
        gparams = np.empty_like(params)
        gy = lin.vjp(i, vs[i].reshape(-1), gparams=gparams).reshape(dy.shape)
        fd_y = np.sum(vs[i] * (field(0.0, ys[i] + eps * dy, params) - field(0.0, ys[i] - eps * dy, params))) / (2 * eps)
        fd_p = np.sum(vs[i] * (field(0.0, ys[i], params + eps * dp) - field(0.0, ys[i], params - eps * dp))) / (2 * eps)
        assert abs(np.sum(gy * dy) + fd_y) <= 1e-6 * (1 + abs(fd_y))  # sign = -1
        assert abs(np.sum(gparams * dp) + fd_p) <= 1e-6 * (1 + abs(fd_p))
    total = lin.param_vjp_sum(vs.reshape(points, -1))
    fd_sum = sum(
        np.sum(vs[i] * (field(0.0, ys[i], params + eps * dp) - field(0.0, ys[i], params - eps * dp)))
        for i in range(points)
    ) / (2 * eps)
    assert abs(np.sum(total * dp) + fd_sum) <= 1e-6 * (1 + abs(fd_sum))


def test_only_the_librarys_dense_stacks_take_the_fast_path():
    d = nn.Dense(2, 3)
    assert dense_layers(d) == [(d, slice(0, 9))]
    assert [(repr(x), s) for x, s in dense_layers(nn.Chain(nn.Dense(3, 4, "tanh"), nn.Dense(4, 3)))] == [
        ("Dense(3 => 4, tanh)", slice(0, 16)),
        ("Dense(4 => 3)", slice(16, 31)),
    ]
    assert dense_layers(nn.Chain(nn.Flatten(), d)) is None

    class Scaled(nn.Dense):  # a subclass may compute something else
        pass

    assert dense_layers(Scaled(2, 2)) is None and dense_layers(nn.Chain(Scaled(2, 2))) is None
    mlp = _mlp([3, 4, 3], ["tanh", "tanh"])
    field, params = tn.VectorField(mlp), mlp.init(0, dtype=np.float64)
    assert field.bind(params, (2, 3), np.float32) is None  # another dtype: the layer's error path
    assert field.bind(params, (2, 4), np.float64) is None  # another width
    assert field.bind(None, (2, 3), np.float64) is None

    class Doubled(tn.VectorField):  # changes f: its own __call__ must be used
        def __call__(self, t, y, params):
            return 2 * super().__call__(t, y, params)

    assert Doubled(mlp).bind(params, (2, 3), np.float64) is None
    y0 = np.ones((2, 3))
    ref = tn.solve(lambda t, y, p: 2 * mlp(p, y), y0, (0, 1), params, rtol=1e-8, atol=1e-8, saveat=[1.0])
    got = tn.solve(Doubled(mlp), y0, (0, 1), params, rtol=1e-8, atol=1e-8, saveat=[1.0])
    np.testing.assert_array_equal(got.y, ref.y)


def test_a_binding_sees_the_parameters_of_its_solve():
    """Bound fields belong to one solve: a new solve after an in-place optimiser step uses the new values."""
    mlp = _mlp([3, 4, 3], ["tanh", "tanh"])
    field, params = tn.VectorField(mlp), mlp.init(0, dtype=np.float64)
    y = np.random.default_rng(0).standard_normal((2, 3))
    for _ in range(2):
        got = tn.solve(field, y, (0, 1), params, rtol=1e-6, saveat=[1.0]).y
        ref = tn.solve(lambda t, y, p: mlp(p, y), y, (0, 1), params, rtol=1e-6, saveat=[1.0]).y
        np.testing.assert_allclose(got, ref, rtol=1e-14)
        params += 0.5  # what Adam does between solves: in place
