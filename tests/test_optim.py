"""Adam and SGD against the textbook formulas; exact save and restore."""

import numpy as np
import pytest
from conftest import to_numpy

from tinynode import optim
from tinynode.errors import DTypeError, ShapeError


def reference_adam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Optimisers.jl's Adam written out plainly, in float64."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_adam_matches_the_formula(xp):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) for _ in range(20)]
    opt = optim.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    p = xp.asarray(p0.copy())
    state = opt.init(p)
    for g in grads:
        opt.step(p, xp.asarray(g), state)
    np.testing.assert_allclose(to_numpy(p), reference_adam(p0, grads, 0.01, 0.8, 0.99, 1e-6), rtol=1e-13, atol=1e-15)
    assert state["t"] == 20


def test_adam_defaults_are_optimisers_jl():
    opt = optim.Adam()
    assert (opt.lr, opt.betas, opt.eps) == (0.001, (0.9, 0.999), 1e-8)


def test_adam_float32_stays_float32(xp):
    p = xp.ones(10, dtype=np.float32)
    state = optim.Adam().init(p)
    optim.Adam().step(p, xp.full(10, 0.5, dtype=np.float32), state)
    assert p.dtype == np.float32 and state["m"].dtype == np.float32 and state["v"].dtype == np.float32
    np.testing.assert_allclose(to_numpy(p), 1 - 0.001, rtol=1e-6)


def test_state_save_and_restore_is_exact(xp, tmp_path):
    rng = np.random.default_rng(1)
    grads = [xp.asarray(rng.standard_normal(30).astype(np.float32)) for _ in range(10)]
    opt = optim.Adam()
    p = xp.asarray(rng.standard_normal(30).astype(np.float32))
    state = opt.init(p)
    for g in grads[:5]:
        opt.step(p, g, state)
    arrays = {k: to_numpy(v) for k, v in optim.state_to_arrays(state).items()}
    np.savez(tmp_path / "s.npz", params=to_numpy(p), **arrays)
    for g in grads[5:]:
        opt.step(p, g, state)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        p2 = xp.asarray(f["params"])
        state2 = optim.state_from_arrays({k: (xp.asarray(f[k]) if k != "t" else f[k]) for k in ("m", "v", "t")})
    for g in grads[5:]:
        opt.step(p2, g, state2)
    np.testing.assert_array_equal(to_numpy(p), to_numpy(p2))
    assert state2["t"] == 10


def test_sgd(xp):
    p = xp.asarray(np.array([1.0, 2.0]))
    opt = optim.SGD(lr=0.1, momentum=0.5)
    state = opt.init(p)
    opt.step(p, xp.asarray(np.array([1.0, 1.0])), state)
    opt.step(p, xp.asarray(np.array([1.0, 1.0])), state)
    # buf: 1, then 1.5 -> p = x - 0.1 * (1 + 1.5)
    np.testing.assert_allclose(to_numpy(p), [0.75, 1.75])
    p2 = xp.asarray(np.array([1.0]))
    s2 = optim.SGD(lr=0.5).init(p2)
    optim.SGD(lr=0.5).step(p2, xp.asarray(np.array([2.0])), s2)
    assert to_numpy(p2).tolist() == [0.0]


def test_bad_arguments():
    with pytest.raises(ValueError):
        optim.Adam(lr=0)
    with pytest.raises(ValueError):
        optim.Adam(betas=(1.0, 0.9))
    with pytest.raises(ValueError):
        optim.SGD(momentum=1.5)
    p = np.ones(3, np.float32)
    opt = optim.Adam()
    with pytest.raises(ShapeError):
        opt.step(p, np.ones(4, np.float32), opt.init(p))
    with pytest.raises(DTypeError):
        opt.step(p, np.ones(3), opt.init(p))
