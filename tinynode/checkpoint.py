"""Checkpoints: parameters, optimiser state and metadata in one ``.npz``, never pickled.

A checkpoint holds plain arrays (``params``, the optimiser's ``opt_*``
arrays) plus one JSON document (``meta``: architecture, options, epoch,
history, tinynode's version) stored as a uint8 array of its UTF-8 bytes. It is
read with ``allow_pickle=False``, so loading one can never run code.

Writes are atomic: the file is written to a temporary name in the same
directory, flushed to disk, and renamed over the target, so a crash or Ctrl-C
leaves either the old checkpoint or the new one, never half of one.
"""

import json
import os
import zipfile

import numpy as np

from . import __version__
from .backend import to_host
from .errors import CheckpointError
from .fileio import atomic_file
from .optim import state_from_arrays, state_to_arrays

__all__ = ["save_checkpoint", "load_checkpoint", "architecture_of"]


def architecture_of(model):
    """A JSON-able description of a model, compared on load: its layers and size."""
    return {"layers": repr(model), "num_params": int(model.num_params)}


def save_checkpoint(path, params, opt_state=None, *, architecture, meta=None):
    """Write ``path`` atomically. ``opt_state`` is an optimiser state dict (arrays and a step count)."""
    path = os.fspath(path)
    arrays = {"params": to_host(params)}
    for key, value in state_to_arrays(opt_state or {}).items():  # scratch buffers dropped
        arrays[f"opt_{key}"] = to_host(value)
    document = {"format": "tinynode-checkpoint-1", "version": __version__, "architecture": architecture, **(meta or {})}
    arrays["meta"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    with atomic_file(path) as f:
        np.savez(f, **arrays)


def load_checkpoint(path, architecture=None):
    """Read a checkpoint: ``{"params", "opt_state", "meta"}``.

    With ``architecture`` given (see :func:`architecture_of`), a checkpoint of
    another model raises :class:`~tinynode.errors.CheckpointError` saying what differs.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        params = arrays.pop("params")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path} is not a readable tinynode checkpoint ({type(e).__name__}: {e}); "
            "it may be truncated or damaged: train again or use another checkpoint."
        ) from None
    if meta.get("format") != "tinynode-checkpoint-1":
        raise CheckpointError(f"{path} is not a tinynode checkpoint (format {meta.get('format')!r})")
    if architecture is not None and meta.get("architecture") != architecture:
        raise CheckpointError(
            f"{path} holds a different architecture:\n  checkpoint: {meta.get('architecture')}\n"
            f"  this model: {architecture}\nLoad it with the same model options it was trained with."
        )
    if params.ndim != 1 or params.size != meta["architecture"]["num_params"]:
        raise CheckpointError(
            f"{path}: parameter vector of shape {params.shape} does not match its "
            f"architecture ({meta['architecture']['num_params']} parameters)"
        )
    opt_state = {key[4:]: value for key, value in arrays.items() if key.startswith("opt_")}
    if opt_state:
        opt_state = state_from_arrays(opt_state)
    return {"params": params, "opt_state": opt_state, "meta": meta}
