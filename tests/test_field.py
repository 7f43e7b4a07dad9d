"""VectorField: the MLP fast path computes exactly what the layer protocol computes."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinynode as tn
from tinynode import nn
from tinynode.errors import DTypeError, ShapeError
from tinynode.testing import gradcheck

from conftest import to_numpy
from test_layers import ACTS, random_params


def _mlp(widths, acts):
    return nn.Chain(*[nn.Dense(a, b, act) for a, b, act in zip(widths[:-1], widths[1:], acts)])


def _slow_path(layer, params, y, v):
    out, ctx = layer.forward(params, y)
    gy, gp = layer.backward(params, ctx, v)
    return out, gy, gp


@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=5), lead=st.lists(st.integers(1, 4), max_size=2),
       acts=st.lists(st.sampled_from(ACTS), min_size=4, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_fast_path_equals_the_layer_protocol(xp, widths, lead, acts, seed, dtype):
    widths[-1] = widths[0]  # a vector field maps the state to its own space
    net = _mlp(widths, acts)
    field = tn.VectorField(net)
    assert field._stack is not None  # the fast path is the one under test
    params = random_params(net, seed, xp, dtype)
    rng = np.random.default_rng(seed)
    y = xp.asarray(rng.standard_normal(tuple(lead) + (widths[0],)).astype(dtype))
    v = xp.asarray(rng.standard_normal(y.shape).astype(dtype))
    out, gy, gp = _slow_path(net, params, y, v)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    f = field(0.0, y, params)
    assert f.dtype == dtype and f.shape == y.shape
    np.testing.assert_allclose(to_numpy(f), to_numpy(out), rtol=rtol, atol=rtol)
    fgy, fgp = field.vjp(0.0, y, params, v)
    assert fgy.dtype == dtype and fgp.dtype == dtype and fgy.shape == y.shape and fgp.shape == params.shape
    np.testing.assert_allclose(to_numpy(fgy), to_numpy(gy), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(to_numpy(fgp), to_numpy(gp), rtol=rtol, atol=rtol)
    gy_only, none = field.vjp(0.0, y, params, v, need_params=False)
    assert none is None
    np.testing.assert_allclose(to_numpy(gy_only), to_numpy(gy), rtol=rtol, atol=rtol)
    val, vgy, vgp = field.value_and_vjp(0.0, y, params, v)
    np.testing.assert_allclose(to_numpy(val), to_numpy(out), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(to_numpy(vgp), to_numpy(gp), rtol=rtol, atol=rtol)
    assert to_numpy(y).shape == y.shape  # y untouched (the in-place steps work on fresh arrays)


@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=4), batch=st.integers(1, 4),
       acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3), seed=st.integers(0, 2**16))
def test_fast_path_vjp_matches_finite_differences(xp, widths, batch, acts, seed):
    widths[-1] = widths[0]
    net = _mlp(widths, acts)
    params = random_params(net, seed, xp)
    y = xp.asarray(np.random.default_rng(seed).standard_normal((batch, widths[0])))
    assert gradcheck(tn.VectorField(net), y, params, t=0.3).ok  # (gradcheck raises on failure too)


def test_the_binding_follows_in_place_updates_and_new_arrays():
    net = _mlp([3, 4, 3], ["tanh", "identity"])
    field = tn.VectorField(net)
    params = net.init(0, dtype=np.float64)
    y = np.random.default_rng(0).standard_normal((5, 3))
    field(0.0, y, params)
    params *= 2.0  # what Adam does: in place
    np.testing.assert_allclose(field(0.0, y, params), net(params, y), rtol=1e-14)
    other = params + 1.0
    np.testing.assert_allclose(field(0.0, y, other), net(other, y), rtol=1e-14)
    np.testing.assert_allclose(field(0.0, y, params), net(params, y), rtol=1e-14)


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


def test_dense_stack_recognises_only_dense_stacks():
    d = nn.Dense(2, 3)
    assert nn.dense_stack(d) == [(0, d)]
    inner = nn.Chain(nn.Dense(3, 4, "tanh"), nn.Dense(4, 3))
    chain = nn.Chain(d, inner)
    assert [(o, repr(x)) for o, x in nn.dense_stack(chain)] == [
        (0, "Dense(2 => 3)"), (9, "Dense(3 => 4, tanh)"), (25, "Dense(4 => 3)")]
    assert nn.dense_stack(nn.Chain(nn.Flatten(), d)) is None
    assert tn.VectorField(nn.Chain(nn.Flatten(), nn.Dense(4, 4)))._stack is None  # the layer path


def test_chain_call_is_inference_and_equals_forward():
    net = nn.Chain(nn.Flatten(), nn.Dense(6, 4, "relu"), nn.Dense(4, 2))
    params = net.init(1)
    x = np.random.default_rng(0).random((3, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(net(params, x), net.forward(params, x)[0])
    with pytest.raises(ShapeError):
        net(params[:-1], x)


@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=4), batch=st.integers(1, 5),
       points=st.integers(1, 4), acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
       sign=st.sampled_from([1.0, -1.0]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_linearization_equals_the_vjp_at_every_point(xp, widths, batch, points, acts, sign, seed, dtype):
    widths[-1] = widths[0]
    net = _mlp(widths, acts)
    field = tn.VectorField(net)
    params = random_params(net, seed, xp, dtype)
    rng = np.random.default_rng(seed)
    ys = xp.asarray(rng.standard_normal((points, batch, widths[0])).astype(dtype))
    vs = xp.asarray(rng.standard_normal(ys.shape).astype(dtype))
    weights = rng.standard_normal(points).tolist()
    frozen = field.freeze(params, ys.shape[1:], ys.dtype)
    lin = frozen.linearize(ys, sign=sign)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    expect_gp = 0
    for i in range(points):
        gy, gp = field.vjp(0.0, ys[i], params, vs[i])
        out, gparams = xp.empty_like(vs[i]), xp.empty_like(params)
        got = lin.vjp(i, vs[i], out=out, gparams=gparams)
        assert got.dtype == dtype and got.shape == gy.shape
        for a, b in ((got, gy), (out, gy), (gparams, gp), (lin.vjp(i, vs[i]), gy)):
            np.testing.assert_allclose(to_numpy(a), sign * to_numpy(b), rtol=rtol, atol=rtol)
        expect_gp = expect_gp + weights[i] * to_numpy(gp)
    weighted = lin.param_vjp_sum(vs * xp.asarray(np.asarray(weights, dtype)[:, None, None]))
    assert weighted.dtype == dtype and weighted.shape == params.shape
    np.testing.assert_allclose(to_numpy(weighted), sign * expect_gp, rtol=10 * rtol, atol=10 * rtol)
    # into() writes f into the caller's row, as f would return it
    row = xp.empty_like(ys[0])
    assert frozen.into(0.0, ys[0], row) is row
    np.testing.assert_allclose(to_numpy(row), to_numpy(field(0.0, ys[0], params)), rtol=rtol, atol=rtol)


def test_freeze_only_on_the_fast_path_and_its_tiles_belong_to_one_solve():
    net = nn.Chain(nn.Flatten(), nn.Dense(4, 4, "tanh"))  # not a dense stack: the layer path
    params = net.init(0, dtype=np.float64)
    assert tn.VectorField(net).freeze(params, (3, 4), np.float64) is None  # then one field.vjp per stage
    mlp = _mlp([3, 4, 3], ["tanh", "tanh"])
    field = tn.VectorField(mlp)
    params = mlp.init(0, dtype=np.float64)
    assert field.freeze(params, (2, 3), np.float32) is None  # another dtype: the layer's error path
    assert field.freeze(params, (2, 4), np.float64) is None  # another width
    assert field.freeze(None, (2, 3), np.float64) is None
    y = np.random.default_rng(0).standard_normal((2, 3))
    frozen = field.freeze(params, y.shape, y.dtype)
    out = np.empty_like(y)
    np.testing.assert_allclose(frozen.into(0.0, y, out), mlp(params, y), rtol=1e-14)
    params += 0.5  # an optimiser step between solves: a new freeze sees it, the field always does
    np.testing.assert_allclose(field.freeze(params, y.shape, y.dtype).into(0.0, y, out), mlp(params, y),
                               rtol=1e-14)
    np.testing.assert_allclose(field(0.0, y, params), mlp(params, y), rtol=1e-14)
    # a solve frozen on other parameters, nested inside this one, leaves this one's tiles alone
    outer = field.freeze(params, y.shape, y.dtype)
    outer.into(0.0, y, out)
    other = params * 3.0
    np.testing.assert_allclose(field.freeze(other, y.shape, y.dtype).into(0.0, y, out), mlp(other, y), rtol=1e-14)
    np.testing.assert_allclose(outer.into(0.0, y, out), mlp(params, y), rtol=1e-14)


def test_a_new_view_of_the_same_parameters_keeps_the_binding_and_its_tiles():
    """A Chain hands its layers a new view of the flat parameters on every call (as in
    training): the field keeps what it bound, and an in-place update still shows."""
    mlp = _mlp([3, 4, 3], ["tanh", "tanh"])
    field = tn.VectorField(mlp)
    flat = np.concatenate([np.zeros(5), mlp.init(0, dtype=np.float64)])
    y = np.random.default_rng(0).standard_normal((2, 3))
    out = np.empty_like(y)
    first = field.freeze(flat[5:], y.shape, y.dtype)
    first.into(0.0, y, out)
    bound, tiles = field._bound, field._tile_buffers[2]
    flat[5:] *= 1.5  # Adam, between two batches
    view = flat[5:]  # the next batch's view: a new object, the same memory
    np.testing.assert_allclose(field.freeze(view, y.shape, y.dtype).into(0.0, y, out), mlp(view, y), rtol=1e-14)
    assert field._bound is bound and field._tile_buffers[2] is tiles
    copy = view.copy()  # other memory: bound anew
    np.testing.assert_allclose(field(0.0, y, copy), mlp(copy, y), rtol=1e-14)
    assert field._bound is not bound


@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=4), batch=st.integers(1, 3),
       points=st.integers(1, 3), acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
       seed=st.integers(0, 2**16))
def test_linearization_matches_finite_differences(widths, batch, points, acts, seed):
    """The stacked VJPs against central differences of f itself, in float64 (not only against field.vjp)."""
    widths[-1] = widths[0]
    net = _mlp(widths, acts)
    field = tn.VectorField(net)
    rng = np.random.default_rng(seed)
    params = random_params(net, seed, np, np.float64)
    ys = rng.standard_normal((points, batch, widths[0]))
    vs = rng.standard_normal(ys.shape)
    lin = field.freeze(params, ys.shape[1:], ys.dtype).linearize(ys, sign=-1.0)
    eps = 1e-6
    dp = rng.standard_normal(params.shape)
    for i in range(points):
        dy = rng.standard_normal(ys.shape[1:])
        gparams = np.empty_like(params)
        gy = lin.vjp(i, vs[i], gparams=gparams)
        fd_y = np.sum(vs[i] * (field(0.0, ys[i] + eps * dy, params) - field(0.0, ys[i] - eps * dy, params))) / (2 * eps)
        fd_p = np.sum(vs[i] * (field(0.0, ys[i], params + eps * dp) - field(0.0, ys[i], params - eps * dp))) / (2 * eps)
        assert abs(np.sum(gy * dy) + fd_y) <= 1e-6 * (1 + abs(fd_y))     # sign = -1
        assert abs(np.sum(gparams * dp) + fd_p) <= 1e-6 * (1 + abs(fd_p))
    total = lin.param_vjp_sum(vs)
    fd_sum = sum(np.sum(vs[i] * (field(0.0, ys[i], params + eps * dp) - field(0.0, ys[i], params - eps * dp)))
                 for i in range(points)) / (2 * eps)
    assert abs(np.sum(total * dp) + fd_sum) <= 1e-6 * (1 + abs(fd_sum))
