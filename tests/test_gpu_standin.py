"""The GPU path without a GPU: tests/fakecupy.py stands in for CuPy.

The stand-in is NumPy with a GPU's strictness: any implicit device-to-host
conversion (``float(x)``, ``if x:``, ``x.item()``, ``x.tolist()``) raises, and
reductions stay on the "device". So these tests prove, on any machine, that

* the solver, every adjoint, the layers, the loss, Adam, the data loader and
  the training loop never convert a device array implicitly;
* every synchronisation goes through ``tinynode.backend.item``, and there is
  at most one per solver step (plus a fixed few per solve: the finiteness
  check of the start and the three norms of the initial-step heuristic);
* the device path computes exactly what the CPU path computes (bit for bit,
  since the stand-in is NumPy underneath);
* ``--device gpu`` / ``--device auto`` and ``tinynode info`` work when CuPy is there.

What only a real GPU shows (speed, CuPy's own numerics, the fused kernels) is
in the ``gpu``-marked tests, which run wherever CuPy sees a CUDA device.
"""

import fakecupy
import numpy as np
import pytest

import tinynode as tn
from tinynode import backend, nn
from tinynode.data import DataLoader
from tinynode.train import fit

#: Synchronisations a solve may make besides one per step attempt: the finiteness
#: check of y0 and f(t0, y0), and the three norms of Hairer's initial step.
PER_SOLVE = 4


@pytest.fixture
def cp(monkeypatch):
    return fakecupy.install(monkeypatch)


def _field(seed=0):
    net = nn.Chain(nn.Dense(20, 10, "tanh"), nn.Dense(10, 10, "tanh"), nn.Dense(10, 20, "tanh"))
    return tn.VectorField(net), net.init(seed)


def _state(batch=16, seed=0):
    return np.tanh(np.random.default_rng(seed).standard_normal((batch, 20))).astype(np.float32)


def test_the_stand_in_is_strict(cp):
    x = cp.asarray(np.ones(3, np.float32))
    assert backend.is_cupy(x) and backend.array_module(x) is cp
    s = x.sum()
    assert backend.is_cupy(s) and s.ndim == 0  # reductions stay on the device
    for convert in (float, int, bool, lambda a: a.item(), lambda a: a.tolist()):
        with pytest.raises(fakecupy.ImplicitHostTransfer):
            convert(s)
    assert backend.item(s) == 3.0  # the one sanctioned door
    assert isinstance(backend.to_host(x), np.ndarray) and not backend.is_cupy(backend.to_host(x))


@pytest.mark.parametrize("controller", [tn.PIController(), tn.IController()])
def test_forward_solve_syncs_at_most_once_per_step(cp, controller):
    field, p = _field()
    y0 = _state()
    ref = tn.solve(field, y0, (0.0, 1.0), p, rtol=1e-4, atol=1e-4, saveat=[0.5, 1.0], controller=controller)
    backend.reset_counters()
    sol = tn.solve(
        field, cp.asarray(y0), (0.0, 1.0), cp.asarray(p), rtol=1e-4, atol=1e-4, saveat=[0.5, 1.0], controller=controller
    )
    attempts = sol.stats["naccept"] + sol.stats["nreject"]
    assert attempts >= 3
    assert backend.counters["host_syncs"] <= attempts + PER_SOLVE
    assert backend.counters["to_host"] == 0
    assert backend.is_cupy(sol.y) and sol.y.dtype == np.float32
    np.testing.assert_array_equal(backend.to_host(sol.y), ref.y)


@pytest.mark.parametrize(
    "sensealg",
    [
        tn.InterpolatingAdjoint(),
        tn.InterpolatingAdjoint(checkpointing=True),
        tn.GaussAdjoint(),
        tn.BacksolveAdjoint(),
        tn.DiscreteAdjoint(),
        tn.InterpolatingAdjoint(seminorm=True),
    ],
    ids=repr,
)
def test_every_adjoint_stays_on_the_device(cp, sensealg):
    field, p = _field(1)
    y0 = _state(8, 1)
    times = [0.3, 1.0]
    gy = np.random.default_rng(2).standard_normal((2,) + y0.shape).astype(np.float32)
    sol, pullback = tn.solve_with_vjp(field, y0, (0.0, 1.0), p, sensealg=sensealg, saveat=times)
    ref = pullback(gy)

    sol_d, pullback_d = tn.solve_with_vjp(
        field, cp.asarray(y0), (0.0, 1.0), cp.asarray(p), sensealg=sensealg, saveat=times
    )
    backend.reset_counters()
    gy0, gp, stats = pullback_d(cp.asarray(gy))
    steps = stats.get("naccept", 0) + stats.get("nreject", 0)
    # the backward solve, plus (checkpointing) the re-solves of the forward intervals
    resolves = 2 * (steps + PER_SOLVE) if getattr(sensealg, "checkpointing", False) else 0
    assert backend.counters["host_syncs"] <= steps + PER_SOLVE + resolves
    assert backend.counters["to_host"] == 0
    assert backend.is_cupy(gy0) and backend.is_cupy(gp)
    assert gy0.dtype == np.float32 and gp.dtype == np.float32
    np.testing.assert_array_equal(backend.to_host(gy0), ref[0])
    np.testing.assert_array_equal(backend.to_host(gp), ref[1])


def test_training_on_the_device_equals_training_on_the_host(cp):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 96)

    def train(xp):
        model = tn.models.tutorial_model()
        params = xp.asarray(model.init(0))
        opt = tn.Adam(0.01)
        state = opt.init(params)
        loaders = (
            DataLoader(images, labels, 32, shuffle=True, seed=0, xp=xp),
            DataLoader(images, labels, 32, xp=xp),
            DataLoader(images[:40], labels[:40], 32, xp=xp),
        )
        history = fit(model, params, opt, state, *loaders, epochs=2, out=None, progress=False)
        return model, params, history

    _, p_host, h_host = train(np)
    backend.reset_counters()
    model, p_dev, h_dev = train(cp)
    assert backend.is_cupy(p_dev)
    np.testing.assert_array_equal(backend.to_host(p_dev), p_host)
    assert [r.test_accuracy for r in h_dev] == [r.test_accuracy for r in h_host]
    assert [r.loss for r in h_dev] == [r.loss for r in h_host]


def test_one_training_step_syncs_once_per_solver_step_plus_the_loss(cp):
    model = tn.models.tutorial_model()
    params = cp.asarray(model.init(0))
    opt = tn.Adam(0.001)
    state = opt.init(params)
    x = cp.asarray(np.random.default_rng(0).random((32, 28, 28)).astype(np.float32))
    y = cp.asarray(np.arange(32) % 10)
    backend.reset_counters()
    logits, ctx = model.forward(params, x)
    loss, glogits = tn.logit_cross_entropy_grad(logits, y)
    backend.item(loss)  # what fit prints and checks for NaN
    _, grads = model.backward(params, ctx, glogits, need_gx=False)
    opt.step(params, grads, state)
    ode = tn.models.find_neural_odes(model)[0]
    fwd, bwd = ode.last_stats["forward"], ode.last_stats["backward"]
    steps = fwd["naccept"] + fwd["nreject"] + bwd["naccept"] + bwd["nreject"]
    assert backend.counters["host_syncs"] <= steps + 2 * PER_SOLVE + 1
    assert backend.counters["to_host"] == 0


def test_adam_and_the_loss_stay_on_the_device(cp):
    params = cp.asarray(np.linspace(-1, 1, 7, dtype=np.float32))
    grads = cp.asarray(np.linspace(1, 2, 7, dtype=np.float32))
    opt = tn.Adam(0.1)
    state = opt.init(params)
    backend.reset_counters()
    opt.step(params, grads, state)
    logits = cp.asarray(np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32))
    loss, g = tn.logit_cross_entropy_grad(logits, cp.asarray(np.array([1, 2, 3, 4])))
    assert backend.is_cupy(loss) and backend.is_cupy(g) and backend.is_cupy(params)
    assert backend.counters["host_syncs"] == 0


def test_cli_device_gpu_and_auto_and_info(cp, capsys, monkeypatch, tmp_path):
    from tinynode import cli

    monkeypatch.setenv("CI", "true")
    ckpt = str(tmp_path / "gpu.npz")
    assert cli.main(["train", "--device", "gpu", "--epochs", "1", "--offline", "--save", ckpt]) == 0
    out = capsys.readouterr().out
    assert "GPU" in out and "[1/1]" in out
    assert cli.main(["eval", ckpt, "--device", "gpu", "--offline"]) == 0  # a GPU checkpoint is host data
    assert cli.main(["train", "--device", "auto", "--epochs", "1", "--offline", "--quiet"]) == 0
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cupy     0.0-fake" in out and "fakecupy CPU stand-in" in out
