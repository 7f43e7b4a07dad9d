"""Second derivatives by hand: every layer's ``backward_vjp`` (the VJP of its VJP) against central
finite differences of its first-order ``backward``, in float64, over shapes and values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynode as tn
from tinynode import nn
from tinynode.activations import ACTIVATIONS
from tinynode.errors import ArgumentError, GradcheckError
from tinynode.testing import check_backward_vjp

ACTS = sorted(ACTIVATIONS)


def perturbed(layer, seed, scale=0.5):
    """Initialised float64 parameters plus noise, so biases and every term are non-zero."""
    return layer.init(seed, np.float64) + scale * np.random.default_rng(seed).standard_normal(layer.num_params)


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    act=st.sampled_from(ACTS),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 2.5),
)
def test_dense_second_derivative_for_every_activation(n_in, n_out, lead, act, seed, scale):
    layer = nn.Dense(n_in, n_out, act)
    x = scale * np.random.default_rng(seed + 7).standard_normal((*lead, n_in))
    report = check_backward_vjp(layer, perturbed(layer, seed), x, seed=seed, tol=1e-6)
    assert all(e is not None for e in report.errors)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=5),
    acts=st.lists(st.sampled_from(ACTS), min_size=4, max_size=4),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_chain_second_derivative(widths, acts, batch, seed):
    chain = nn.Chain(*[nn.Dense(a, b, acts[i % 4]) for i, (a, b) in enumerate(zip(widths, widths[1:]))])
    x = np.random.default_rng(seed).standard_normal((batch, widths[0]))
    check_backward_vjp(chain, perturbed(chain, seed), x, seed=seed, tol=1e-6)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 3), rows=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_shape_layers_second_derivative_alone_and_in_a_chain(k, rows, seed):
    rng = np.random.default_rng(seed)
    check_backward_vjp(nn.Flatten(), np.zeros(0), rng.standard_normal((rows, 2, 3)), seed=seed)
    check_backward_vjp(tn.Augment(k), np.zeros(0), rng.standard_normal((rows, 3)), seed=seed)
    chain = nn.Chain(nn.Flatten(), nn.Dense(6, 3, "tanh"), tn.Augment(k), nn.Dense(3 + k, 2, "softplus"))
    check_backward_vjp(chain, perturbed(chain, seed), rng.standard_normal((rows, 2, 3)), seed=seed, tol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_parameter_cotangent_means_zero_and_dtypes_stay(dtype):
    chain = nn.Chain(nn.Dense(3, 4, "tanh"), nn.Dense(4, 3, "sigmoid"))
    params = perturbed(chain, 0).astype(dtype)
    rng = np.random.default_rng(0)
    x, gy, cgx = (rng.standard_normal((5, 3)).astype(dtype) for _ in range(3))
    _, ctx = chain.forward(params, x)
    none = chain.backward_vjp(params, ctx, gy, cgx)
    zero = chain.backward_vjp(params, ctx, gy, cgx, np.zeros_like(params))
    for a, b in zip(none, zero):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_a_wrong_second_derivative_is_caught():
    class Broken(nn.Dense):
        def backward_vjp(self, params, ctx, gy, cgx, cgparams=None):
            cx, cp, cgy = super().backward_vjp(params, ctx, gy, cgx, cgparams)
            return cx, cp, 1.01 * cgy

    layer = Broken(3, 2, "tanh")
    with pytest.raises(GradcheckError, match="gy"):
        check_backward_vjp(layer, perturbed(layer, 0), np.ones((2, 3)))
    with pytest.raises(ArgumentError, match="backward_vjp"):
        check_backward_vjp(tn.NeuralODE(nn.Dense(2, 2)), np.zeros(6), np.ones((1, 2)))
