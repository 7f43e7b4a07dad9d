"""Cross-entropy: value, stability, gradient (finite differences), accuracy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinynode import losses
from tinynode.errors import ShapeError
from tinynode.testing import gradcheck


def naive_loss(z, y):
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return -(y * np.log(p)).sum() / z.shape[0]


@given(
    batch=st.integers(1, 6),
    classes=st.integers(2, 7),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 5.0),
    one_hot=st.booleans(),
)
def test_loss_gradient_matches_finite_differences(xp, batch, classes, seed, scale, one_hot):
    rng = np.random.default_rng(seed)
    z = xp.asarray(scale * rng.standard_normal((batch, classes)))
    labels = rng.integers(0, classes, batch)
    y = xp.asarray(np.eye(classes)[labels] if one_hot else labels)

    def vjp(z, y, g):
        _, dz = losses.logit_cross_entropy_grad(z, y)
        return g * dz, None

    gradcheck(losses.logit_cross_entropy, z, y, vjp=vjp)


@given(batch=st.integers(1, 6), classes=st.integers(2, 7), seed=st.integers(0, 2**16))
def test_soft_targets_gradient(batch, classes, seed):
    rng = np.random.default_rng(seed)
    z, y = rng.standard_normal((batch, classes)), rng.random((batch, classes))

    def vjp(z, y, g):
        return g * losses.logit_cross_entropy_grad(z, y)[1], None

    gradcheck(losses.logit_cross_entropy, z, y, vjp=vjp)


def test_value_matches_the_definition_and_labels_agree(xp):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((8, 10))
    labels = rng.integers(0, 10, 8)
    expected = naive_loss(z, np.eye(10)[labels])
    for y in (labels, np.eye(10)[labels]):
        got = float(losses.logit_cross_entropy(xp.asarray(z), xp.asarray(y)))
        assert got == pytest.approx(expected, rel=1e-12)


def test_huge_logits_stay_finite(xp):
    z = xp.asarray(np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 1.0]], np.float32))
    y = xp.asarray(np.array([0, 0]))
    loss, g = losses.logit_cross_entropy_grad(z, y)
    assert float(loss) == pytest.approx(3e4, rel=1e-6)
    assert np.all(np.isfinite(np.asarray(g.tolist())))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(xp, dtype):
    z = xp.asarray(np.random.default_rng(0).standard_normal((4, 3)), dtype=dtype)
    loss, g = losses.logit_cross_entropy_grad(z, xp.asarray(np.array([0, 1, 2, 0])))
    assert loss.dtype == dtype and g.dtype == dtype
    assert losses.logit_cross_entropy(z, xp.asarray(np.eye(3, dtype=dtype)[[0, 1, 2, 0]])).dtype == dtype


def test_accuracy(xp):
    z = xp.asarray(np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [1.0, 0.0]]))
    assert losses.accuracy(z, xp.asarray(np.array([0, 1, 1, 0]))) == 0.75
    assert losses.accuracy(z, xp.asarray(np.eye(2)[[0, 1, 1, 1]])) == 0.5


def test_one_hot(xp):
    oh = losses.one_hot(xp.asarray(np.array([2, 0])), 3)
    assert oh.dtype == np.float32 and oh.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_label_shape_errors():
    z = np.zeros((4, 3))
    with pytest.raises(ShapeError, match="integer classes of shape"):
        losses.logit_cross_entropy(z, np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="do not match logits"):
        losses.logit_cross_entropy(z, np.zeros(5, dtype=int))
    with pytest.raises(ShapeError, match=r"\(batch, classes\)"):
        losses.logit_cross_entropy(np.zeros(3), np.zeros(3))
