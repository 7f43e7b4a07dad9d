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
import zlib

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
    """Write ``path`` atomically. ``opt_state`` is an optimiser state dict (arrays and a step count).

    What :func:`load_checkpoint` would refuse is refused here, before anything is written
    (a NaN parameter vector must never replace a good checkpoint)."""
    path = _path(path)
    if opt_state is not None and not isinstance(opt_state, dict):
        raise CheckpointError(f"opt_state must be an optimiser state dict (from opt.init(params)), got {opt_state!r}")
    arrays = {"params": to_host(params)}
    for key, value in state_to_arrays(opt_state or {}).items():  # scratch buffers dropped
        arrays[f"opt_{key}"] = to_host(value) if hasattr(value, "shape") else np.asarray(value)
    document = {**(meta or {}), "format": "tinynode-checkpoint-1", "version": __version__, "architecture": architecture}
    try:
        text = json.dumps(document, allow_nan=False, default=_plain)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save a checkpoint to {path}: its metadata is not plain JSON ({e})") from None
    arrays["meta"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _check_meta(path, json.loads(text))  # as load_checkpoint will read it
    _check_params_array(path, arrays["params"], architecture["num_params"])
    _check_opt_state(path, {k[4:]: v for k, v in arrays.items() if k.startswith("opt_")}, arrays["params"])
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save a checkpoint to {path}: it is a directory; give a file name")
    try:
        with atomic_file(path) as f:
            np.savez(f, **arrays)
    except OSError as e:
        raise CheckpointError(f"cannot save a checkpoint to {path}: {e}") from None


def load_checkpoint(path, architecture=None):
    """Read a checkpoint: ``{"params", "opt_state", "meta"}``.

    Every field is checked (the JSON's structure, the parameters' shape and
    float dtype, the optimiser state's arrays and step count); anything else
    raises :class:`~tinynode.errors.CheckpointError` naming the file and the
    field. With ``architecture`` given (see :func:`architecture_of`), a
    checkpoint of another model raises it too, saying what differs.
    """
    path = _path(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}" + (" (it is a directory)" if os.path.isdir(path) else ""))
    if not zipfile.is_zipfile(path):  # (np.load would try other formats, pickle among them, and say so)
        raise CheckpointError(f"{path} is not a tinynode checkpoint: not an .npz archive (damaged, or another file)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        params = arrays.pop("params")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, AttributeError,
            NotImplementedError, RuntimeError, RecursionError, zlib.error) as e:  # fmt: skip
        raise CheckpointError(
            f"{path} is not a readable tinynode checkpoint ({type(e).__name__}: {e}); "
            "it may be truncated or damaged: train again or use another checkpoint."
        ) from None
    _check_meta(path, meta)
    if architecture is not None and meta["architecture"] != architecture:
        raise CheckpointError(
            f"{path} holds a different architecture:\n  checkpoint: {meta['architecture']}\n"
            f"  this model: {architecture}\nLoad it with the same model options it was trained with."
        )
    _check_params_array(path, params, meta["architecture"]["num_params"])
    opt_state = {key[4:]: value for key, value in arrays.items() if key.startswith("opt_")}
    return {"params": params, "opt_state": _check_opt_state(path, opt_state, params), "meta": meta}


def _bad(path, field, problem):
    return CheckpointError(f"{path}: {field} {problem}; the file is damaged or was not written by tinynode")


def _check_meta(path, meta):
    if not isinstance(meta, dict):
        raise _bad(path, "the metadata", f"is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != "tinynode-checkpoint-1":
        raise CheckpointError(f"{path} is not a tinynode checkpoint (format {meta.get('format')!r})")
    arch = meta.get("architecture")
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), str) or not _count(arch.get("num_params")):
        raise _bad(path, "'architecture'", f"is {arch!r}, not {{'layers': text, 'num_params': a count}}")
    if "epoch" in meta and not _count(meta["epoch"], zero=True):
        raise _bad(path, "'epoch'", f"is {meta['epoch']!r}, not a count of epochs")
    if not isinstance(meta.get("history", []), list):
        raise _bad(path, "'history'", "is not a list of epoch records")
    run = meta.get("run", "")
    if not (isinstance(run, str) and len(run) <= 64 and all(c in "0123456789abcdef" for c in run)):
        raise _bad(path, "'run'", f"is {run!r}, not a run id")
    for key in ("options", "training", "data"):
        if key in meta and not isinstance(meta[key], dict):
            raise _bad(path, f"'{key}'", f"is {meta[key]!r}, not an object")


def _count(value, zero=False):
    return isinstance(value, int) and not isinstance(value, bool) and value >= (0 if zero else 1)


def _check_params_array(path, params, num_params):
    if params.ndim != 1 or params.size != num_params:
        raise CheckpointError(
            f"{path}: parameter vector of shape {params.shape} does not match its architecture "
            f"({num_params} parameters)"
        )
    if params.dtype not in (np.float32, np.float64) or not np.all(np.isfinite(params)):
        problem = f"dtype {params.dtype}" if params.dtype not in (np.float32, np.float64) else "NaN or Inf values"
        raise CheckpointError(f"{path}: the parameters have {problem}; a checkpoint holds finite float32/64 weights")


def _check_opt_state(path, opt_state, params):
    """The optimiser's arrays shaped like the parameters, and its step count ``t`` (required with them)."""
    if not opt_state:
        return opt_state
    if "t" not in opt_state:
        raise _bad(path, "the optimiser state", "has no step count 't' (Adam's bias correction needs it)")
    t = opt_state["t"]
    if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
        raise _bad(path, "the optimiser step count 't'", f"is {t!r}, not a count")
    for key, value in opt_state.items():
        if key != "t" and (value.shape != params.shape or value.dtype != params.dtype):
            raise _bad(
                path,
                f"the optimiser array {key!r}",
                f"has {value.dtype} {value.shape}, not the parameters' {params.dtype} {params.shape}",
            )
        if key != "t" and (not np.all(np.isfinite(value)) or (key == "v" and np.any(value < 0))):
            raise _bad(path, f"the optimiser array {key!r}", "holds NaN, Inf or (a second moment) negative values")
    return state_from_arrays(opt_state)


def _plain(value):
    """NumPy scalars in the metadata as Python numbers (json cannot write them)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _path(path):
    try:
        return os.fspath(path)
    except TypeError:
        raise CheckpointError(f"a checkpoint path must be a file name, got {path!r}") from None
