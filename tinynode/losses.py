"""Logit cross-entropy, its gradient, and accuracy.

The loss is Lux's ``CrossEntropyLoss(logits=Val(true))``: the batch mean of
``-sum_c y_c * log softmax(z)_c``. The log-softmax is computed through the
log-sum-exp trick, ``log softmax(z) = (z - m) - log sum exp(z - m)`` with
``m = max z``, so no exponential can overflow.

Labels come either as integer classes, shape ``(batch,)``, or as one-hot (or
any soft) targets with the logits' shape.
"""

import numpy as np

from .backend import array_module, item, to_host
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = ["log_softmax", "logit_cross_entropy", "logit_cross_entropy_grad", "accuracy", "one_hot"]


def _is_class_labels(logits, labels):
    if not hasattr(labels, "dtype"):
        raise ArgumentError(f"labels must be an array (integer classes or targets), got {type(labels).__name__}")
    if labels.ndim == logits.ndim - 1 and labels.dtype.kind in "iu":
        if labels.shape != logits.shape[:-1]:
            raise ShapeError(f"class labels of shape {labels.shape} do not match logits {logits.shape}")
        _check_classes(labels, logits.shape[-1])
        return True
    if labels.shape == logits.shape:
        if array_module(labels) is np and labels.size and not (np.all(np.isfinite(labels)) and labels.min() >= 0):
            raise ArgumentError("soft targets must be finite and non-negative (probabilities), got other values")
        return False
    raise ShapeError(
        f"labels must be integer classes of shape {logits.shape[:-1]} or targets of shape "
        f"{logits.shape}, got {labels.dtype} {labels.shape}"
    )


def _check_classes(labels, classes):
    """Every class label in ``0..classes-1`` (a label of -1 would otherwise silently pick the last
    class, and 10 crash deep inside NumPy). Labels on a GPU were checked where they entered (the
    DataLoader), so that a training step keeps its one synchronisation per solver step."""
    xp = array_module(labels)
    if xp is not np:
        return
    if labels.size and item(xp.logical_or(labels < 0, labels >= classes).any()):
        bad = _as_list(labels[xp.logical_or(labels < 0, labels >= classes)][:5])
        raise ArgumentError(
            f"labels must be classes 0..{classes - 1} for logits with {classes} columns, got {bad}; "
            "check the labels file or the number of outputs of the model"
        )


def _check_logits(logits):
    if getattr(getattr(logits, "dtype", None), "kind", None) != "f":
        raise DTypeError(f"logits must be a float array, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ShapeError(f"logits must have shape (batch, classes) with a non-empty batch, got {logits.shape}")


def _as_list(a):
    return to_host(a).tolist()


def one_hot(labels, num_classes, dtype="float32"):
    """``(batch,)`` integer classes -> ``(batch, num_classes)`` one-hot rows."""
    xp = array_module(labels)
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def log_softmax(logits):
    """``log softmax`` along the last axis, via the log-sum-exp trick."""
    xp = array_module(logits)
    s = logits - logits.max(axis=-1, keepdims=True)
    s -= xp.log(xp.exp(s).sum(axis=-1, keepdims=True))
    return s


def _loss_from_logp(xp, logp, labels, is_class):
    n = logp.shape[0]
    if is_class:
        picked = logp[xp.arange(n), labels]
        return -picked.sum() / n
    return -(labels * logp).sum() / n


def logit_cross_entropy(logits, labels):
    """Mean over the batch of ``-sum y * log softmax(logits)``, as a 0-d array.

    The result stays on the logits' device and in their dtype (no host sync).
    """
    _check_logits(logits)
    xp = array_module(logits)
    is_class = _is_class_labels(logits, labels)
    return _loss_from_logp(xp, log_softmax(logits), labels, is_class)


def logit_cross_entropy_grad(logits, labels):
    """``(loss, d loss / d logits)``.

    With ``p = softmax(z)`` the gradient of ``-sum_c y_c log p_c`` is
    ``p * sum_c y_c - y``, i.e. ``p - y`` for one-hot targets; the batch mean
    divides it by the batch size.
    """
    _check_logits(logits)
    xp = array_module(logits)
    is_class = _is_class_labels(logits, labels)
    n = logits.shape[0]
    logp = log_softmax(logits)
    loss = _loss_from_logp(xp, logp, labels, is_class)
    g = xp.exp(logp)
    if is_class:
        g[xp.arange(n), labels] -= 1
    else:
        g *= labels.sum(axis=-1, keepdims=True)
        g -= labels
    g *= 1.0 / n
    return loss, g


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is the true class (a Python float)."""
    _check_logits(logits)
    is_class = _is_class_labels(logits, labels)
    truth = labels if is_class else labels.argmax(axis=-1)
    return item((logits.argmax(axis=-1) == truth).mean())
