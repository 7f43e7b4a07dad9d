"""The tutorial's training loop: Adam, cross-entropy, accuracy after every epoch.

Each epoch runs over the training batches (forward, loss, backward, one Adam
step), then measures accuracy on the training and test sets, and prints one
line in the Lux tutorial's format followed by the epoch's evaluation counts::

    [1/9]	Time 0.0731s	Training Accuracy: 50.22222%	Test Accuracy: 46.00000%	NFE forward/backward: 220/183

``Time`` is the training part of the epoch only, as in the tutorial. The loss
is read back once per batch (one host synchronisation) to stop at once if it
becomes NaN; Ctrl-C is deferred to the end of the current batch, so the
parameters and the optimiser state are always consistent when it arrives.
"""

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from .backend import blas_threads as backend_blas_threads
from .backend import item, to_host
from .errors import NonFiniteError, TrainingError
from .losses import logit_cross_entropy_grad
from .models import find_neural_odes

__all__ = ["fit", "evaluate", "confusion_matrix", "EpochRecord", "TrainingInterrupted"]


class TrainingInterrupted(Exception):
    """Ctrl-C arrived; raised after the batch in progress has finished."""

    def __init__(self, epoch, batch):
        super().__init__(f"interrupted in epoch {epoch} after {batch} batches")
        self.epoch, self.batch = epoch, batch


@dataclass
class EpochRecord:
    """One line of the training history."""

    epoch: int
    loss: float
    time: float
    train_accuracy: float
    test_accuracy: float
    forward_nf: int
    backward_nvjp: int
    backward_nf: int
    predict_nf: float = 0.0  # forward evaluations per solve while scoring the test set (inference)
    regularization: dict = field(default_factory=dict)  # each regulariser's mean value per training solve

    def line(self, epochs):
        """The tutorial's epoch line, followed by the evaluation counts (and the regularisers' values)."""
        reg = "".join(f"\t{name} {value:.4g}" for name, value in self.regularization.items())
        return (
            f"[{self.epoch}/{epochs}]\tTime {self.time:.4f}s\tTraining Accuracy: "
            f"{100 * self.train_accuracy:.5f}%\tTest Accuracy: {100 * self.test_accuracy:.5f}%\t"
            f"NFE forward/backward: {self.forward_nf}/{self.backward_nvjp + self.backward_nf}" + reg
        )

    as_dict = asdict


def predict(model, params, loader):
    """Predicted classes and true labels over a loader (inference: no backward data kept)."""
    preds, truth = [], []
    for x, y in loader:
        preds.append(to_host(model(params, x).argmax(axis=-1)))
        truth.append(to_host(y))
    return np.concatenate(preds), np.concatenate(truth)


def evaluate(model, params, loader):
    """Accuracy of ``model`` over ``loader``, a float in [0, 1]."""
    preds, truth = predict(model, params, loader)
    return float((preds == truth).mean())


def confusion_matrix(preds, truth, num_classes=10):
    """``m[i, j]`` = how many images of class i were predicted as j."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (truth.astype(np.int64), preds.astype(np.int64)), 1)
    return m


def _training_counts(odes):
    """The epoch's evaluation counts, and each regulariser's mean value per solve, over the Neural ODEs."""
    counts = {key: sum(ode.counts[key] for ode in odes) for key in ("forward_nf", "backward_nvjp", "backward_nf")}
    solves, totals = sum(ode.counts["solves"] for ode in odes), {}
    for ode in odes:
        for name, value in ode.counts["regularization"].items():
            totals[name] = totals.get(name, 0.0) + value
    return {**counts, "regularization": {name: value / max(solves, 1) for name, value in totals.items()}}


@contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C into a flag that the loop checks between batches."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["set"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(iterable, total, enabled, desc):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)


def _train_epoch(model, params, optimizer, opt_state, batches, epoch, interrupted):
    """One pass over the training batches (forward, loss, backward, optimiser step); the losses."""
    losses = []
    for b, (x, y) in enumerate(batches):
        try:
            logits, ctx = model.forward(params, x)
        except NonFiniteError:
            if math.isfinite(item(params.sum())):
                raise
            raise TrainingError(
                f"the parameters became NaN or Inf after the update before epoch {epoch}, batch {b + 1} "
                "(training diverged); training stopped. Try a smaller learning rate (--lr)."
            ) from None
        loss, glogits = logit_cross_entropy_grad(logits, y)
        loss = item(loss)
        if not math.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss} in epoch {epoch}, batch {b + 1}; training "
                "stopped. Try a smaller learning rate (--lr) or tighter tolerances."
            )
        _, grads = model.backward(params, ctx, glogits, need_gx=False)
        optimizer.step(params, grads, opt_state)
        losses.append(loss)
        if interrupted["set"]:
            raise TrainingInterrupted(epoch, b + 1)
    return losses


def fit(
    model,
    params,
    optimizer,
    opt_state,
    train_loader,
    eval_train,
    eval_test,
    *,
    epochs,
    start_epoch=0,
    on_epoch=None,
    out=sys.stdout,
    progress=None,
    blas_threads="auto",
):
    """Train ``params`` in place for epochs ``start_epoch + 1 .. epochs``; return the history.

    Arguments:
        model: a layer producing logits (e.g. ``tinynode.models.tutorial_model()``).
        params, opt_state: updated in place.
        optimizer: e.g. ``tinynode.Adam(0.001)``.
        train_loader: yields shuffled training batches ``(x, labels)``.
        eval_train, eval_test: loaders for the accuracies printed after each epoch.
        on_epoch: ``on_epoch(record)`` after each epoch (the CLI saves a checkpoint there).
        out: where the epoch lines go (None: nowhere).
        progress: show a tqdm bar during each epoch; by default only when stderr is a terminal.
        blas_threads: threads for the CPU's BLAS while training: ``"auto"`` (the
            default) runs the layers around the Neural ODEs on one thread and lets
            each solve choose from its size (:mod:`tinynode.threads`); a number
            pins every product to it; None leaves BLAS as it is.

    Raises :class:`~tinynode.errors.TrainingError` if the loss becomes NaN or
    Inf (params then hold the last batch's values; the last ``on_epoch`` saved
    the last good state) and :class:`TrainingInterrupted` after Ctrl-C.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    odes = find_neural_odes(model)
    history = []
    pin = (1, True) if blas_threads == "auto" else (blas_threads, False)
    with _deferred_interrupt() as interrupted, backend_blas_threads(*pin):
        for epoch in range(start_epoch + 1, epochs + 1):
            for ode in odes:
                ode.reset_counts()
            t_start = time.perf_counter()
            batches = _progress(train_loader, len(train_loader), progress, f"epoch {epoch}/{epochs}")
            losses = _train_epoch(model, params, optimizer, opt_state, batches, epoch, interrupted)
            elapsed = time.perf_counter() - t_start
            counts = _training_counts(odes)  # read before evaluation adds its own solves
            train_accuracy = evaluate(model, params, eval_train)
            for ode in odes:
                ode.reset_counts()
            test_accuracy = evaluate(model, params, eval_test)
            solves = sum(ode.counts["solves"] for ode in odes)
            record = EpochRecord(
                epoch=epoch,
                loss=float(np.mean(losses)),
                time=elapsed,
                train_accuracy=train_accuracy,
                test_accuracy=test_accuracy,
                predict_nf=sum(ode.counts["forward_nf"] for ode in odes) / max(solves, 1),
                **counts,
            )
            history.append(record)
            if on_epoch is not None:  # first: a failing output (a closed pipe) must not lose the epoch
                on_epoch(record)
            if out is not None:
                print(record.line(epochs), file=out, flush=True)
            if interrupted["set"]:
                raise TrainingInterrupted(epoch + 1, 0)
    return history
