"""The workload every system in ``benchmarks.compare`` trains: the Lux tutorial, identically.

    Flatten -> Dense(784 => 20, tanh)
            -> NeuralODE(Dense(20 => 10, tanh) -> Dense(10 => 10, tanh) -> Dense(10 => 20, tanh),
                         t in [0, 1], rtol = atol = 1e-3, final state only,
                         the whole batch as ONE ODE state with shared steps)
            -> Dense(20 => 10)
    logit cross-entropy (mean), Adam(0.001), batch 128, 9 epochs, float32

The runner (:func:`prepare`, the only function here that imports tinynode)
writes one ``.npz`` per data set: the first N images of tinynode's bundled
MNIST sample (or of Fashion-MNIST), split in order 90/10 by
``tinynode.data.train_test_split``, and the initial weights of
``tinynode.models.tutorial_model().init(0)`` (Glorot-uniform, zero biases) as
five ``W`` (out, in) / ``b`` (out,) pairs. Every worker, tinynode's and the
peers', reads that file, starts from those weights and visits the training
batches in the same order (:func:`epoch_batches`: the permutation tinynode's
``DataLoader(shuffle=True, seed=0)`` draws in each epoch). So the systems
differ only in their solver, their autodiff and their overhead.

A worker prints nothing but writes one JSON result (:class:`Recorder`):
per-epoch training time (the training batches only, as in the tutorial),
loss, accuracies measured after the epoch (not timed), and forward/backward
evaluation counts of the vector field; the runner adds the whole-process wall
time and peak memory, measured from outside.
"""

import json
import os
import platform
import sys
import time

import numpy as np

EPOCHS = 9
BATCH = 128
LR = 1e-3
RTOL = ATOL = 1e-3
SEED = 0
#: The five dense layers, in order: (in, out, activation). The ODE block is layers 1-3.
LAYERS = [(784, 20, "tanh"), (20, 10, "tanh"), (10, 10, "tanh"), (10, 20, "tanh"), (20, 10, "identity")]


# ----------------------------------------------------------------------------- runner side


def prepare(path, n=None, dataset="mnist"):
    """Write the workload's data and initial weights to ``path`` (an ``.npz``); return its sizes."""
    from tinynode.data import load_mnist, load_sample, train_test_split
    from tinynode.models import tutorial_model

    if dataset == "mnist":
        images, labels = load_sample()
    else:
        images, labels = load_mnist(dataset, download=False, quiet=True)
    if n is not None:
        images, labels = images[:n], labels[:n]
    (x_train, y_train), (x_test, y_test) = train_test_split(images, labels, at=0.9)
    model = tutorial_model()
    params = model.init(SEED)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "flat_params": params}
    offset = 0
    for i, (fan_in, fan_out, _) in enumerate(LAYERS):
        w = params[offset : offset + fan_in * fan_out].reshape(fan_out, fan_in)
        offset += fan_in * fan_out
        b = params[offset : offset + fan_out]
        offset += fan_out
        arrays[f"W{i}"], arrays[f"b{i}"] = w.copy(), b.copy()
    assert offset == params.size
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, **arrays)
    return {"dataset": dataset, "n": len(labels), "n_train": len(y_train), "n_test": len(y_test)}


# ----------------------------------------------------------------------------- worker side


def load(path):
    """The arrays :func:`prepare` wrote (uint8 images, integer labels, float32 weights)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def images_to_float(images):
    """uint8 pixels -> float32 in [0, 1], flattened to (B, 784), as tinynode's DataLoader scales them."""
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= 255
    return x


def epoch_batches(n, epoch, batch=BATCH, seed=SEED):
    """Index arrays of the training batches of ``epoch`` (0-based), shuffled as tinynode's DataLoader does."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i : i + batch] for i in range(0, n, batch)]


def eval_batches(n, batch=BATCH):
    """Index ranges of the evaluation batches (in order)."""
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


def worker_args(argv=None, configs=()):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="the .npz written by benchmarks.workload.prepare")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    p.add_argument("--config", required=True, choices=list(configs))
    p.add_argument("--epochs", type=int, default=EPOCHS)
    return p.parse_args(argv)


class Recorder:
    """Collects one run's per-epoch records and writes them as JSON."""

    def __init__(self, system, config, t_start, versions, notes=""):
        self.doc = {
            "system": system,
            "config": config,
            "versions": versions,
            "notes": notes,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "imports_s": time.perf_counter() - t_start,
            "epochs": [],
        }
        self.t_start = t_start

    def epoch(self, epoch, time_s, loss, train_acc, test_acc, nfe_fwd, nfe_bwd, **extra):
        rec = {
            "epoch": epoch,
            "time": float(time_s),
            "loss": float(loss),
            "train_acc": float(train_acc),
            "test_acc": float(test_acc),
            "nfe_fwd": None if nfe_fwd is None else int(nfe_fwd),
            "nfe_bwd": None if nfe_bwd is None else int(nfe_bwd),
        }
        rec.update(extra)
        self.doc["epochs"].append(rec)

    def write(self, path, **extra):
        self.doc.update(extra)
        self.doc["in_process_s"] = time.perf_counter() - self.t_start
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
        os.replace(tmp, path)


def versions_of(*modules):
    """``{name: version}`` of already imported modules, plus numpy and python."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in modules:
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def overhead_args(argv):
    """The options of every worker's ``overhead`` subcommand."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128, 1024, 8192])
    p.add_argument("--repeat", type=int, default=100)
    p.add_argument("--json")
    p.add_argument("--data", required=True, help="the workload .npz (its ODE weights are used)")
    return p.parse_args(argv)


def overhead_state(batch):
    """The (batch, 20) float32 initial state of the solver-overhead measurements (as benchmarks.solver_overhead)."""
    return np.tanh(np.random.default_rng(0).standard_normal((batch, 20))).astype(np.float32)
