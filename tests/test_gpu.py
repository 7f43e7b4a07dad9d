"""On a real CUDA device: the fused kernels equal their NumPy sequences, and the
tutorial trains on CuPy as it does on the CPU. Skipped where CuPy sees no GPU
(tests/test_gpu_standin.py covers the device discipline everywhere).

Run on a GPU machine with ``python -m pytest -m gpu``.
"""

import numpy as np
import pytest

import tinynode as tn
from tinynode import backend, fused, nn

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cp():
    cupy = backend.cupy_or_none()
    if cupy is None:
        pytest.skip("CuPy with a CUDA device is not available")
    return cupy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_error_norm_kernel(cp, dtype):
    rng = np.random.default_rng(0)
    e, y, yn = (rng.standard_normal(1000).astype(dtype) for _ in range(3))
    got = float(fused.error_norm_sq(cp, cp.asarray(e), cp.asarray(y), cp.asarray(yn), 1e-3, 1e-6).get())
    scale = 1e-6 + 1e-3 * np.maximum(np.abs(y.astype(np.float64)), np.abs(yn.astype(np.float64)))
    np.testing.assert_allclose(got, np.sum((e / scale) ** 2), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel(cp, dtype, monkeypatch):
    rng = np.random.default_rng(1)
    p0, g = rng.standard_normal(500).astype(dtype), rng.standard_normal(500).astype(dtype)
    results = []
    for fuse in ("1", "0"):
        monkeypatch.setenv("TINYNODE_FUSED", fuse)
        opt = tn.Adam(0.01)
        p = cp.asarray(p0)
        state = opt.init(p)
        for _ in range(3):
            opt.step(p, cp.asarray(g), state)
        results.append(p.get())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_kernels(cp, activation, dtype):
    rng = np.random.default_rng(2)
    z0 = (3 * rng.standard_normal((64, 7))).astype(dtype)
    b = rng.standard_normal(7).astype(dtype)
    g = rng.standard_normal((64, 7)).astype(dtype)
    act = nn.ACTIVATIONS[activation]  # the one definition the kernels must follow
    ref_y = act.forward(np, z0 + b)
    ref_gz = act.vjp(np, ref_y, g)
    y = fused.bias_activation(cp, cp.asarray(z0), cp.asarray(b), activation)
    gz = fused.activation_vjp(cp, y, cp.asarray(g), activation)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.get(), ref_y, rtol=tol, atol=tol)
    np.testing.assert_allclose(gz.get(), ref_gz, rtol=tol, atol=tol)


def test_fused_and_plain_solves_agree(cp, monkeypatch):
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    p = net.init(0)
    y0 = np.tanh(np.random.default_rng(3).standard_normal((256, 20))).astype(np.float32)
    out = []
    for fuse in ("1", "0"):
        monkeypatch.setenv("TINYNODE_FUSED", fuse)
        field = tn.VectorField(net)
        sol, pullback = tn.solve_with_vjp(field, cp.asarray(y0), (0.0, 1.0), cp.asarray(p), rtol=1e-3, atol=1e-3)
        gy0, gp, _ = pullback(cp.ones_like(sol.y))
        out.append((sol.y.get(), gy0.get(), gp.get(), sol.stats["nf"]))
    assert out[0][3] == out[1][3]  # the same steps
    for a, b in zip(out[0][:3], out[1][:3]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_tutorial_trains_on_the_gpu_as_on_the_cpu(cp, monkeypatch, tmp_path):
    import json

    from tinynode import cli

    monkeypatch.setenv("CI", "true")
    accuracy = {}
    for device in ("cpu", "gpu"):
        path = tmp_path / f"{device}.json"
        assert cli.main(["train", "--device", device, "--offline", "--quiet", "--history", str(path)]) == 0
        accuracy[device] = json.loads(path.read_text())["history"][-1]["test_accuracy"]
    assert accuracy["gpu"] >= 0.75
    assert abs(accuracy["gpu"] - accuracy["cpu"]) <= 0.02  # float32 rounding differs, the steps may too
