"""A training run's options, data and files, checked before its first epoch (the CLI's rules).

A checkpoint written by ``tinynode train`` records everything the run depended
on: the model options (``meta["options"]``), the training options
(``meta["training"]``) and where its images came from (``meta["data"]``: the
files and their SHA-256, or the bundled sample; :func:`tinynode.data.load_mnist`).
``--resume`` continues only the same run: an option given on the command line
that differs from the checkpoint's is refused unless ``--override NAME`` says
so, and options not given are taken from the checkpoint. ``eval`` scores the
images the run used, or refuses. Paths that would overwrite each other are
refused before anything is trained.
"""

import json
import math
import os
import tempfile

from .adjoints import SENSEALGS
from .controllers import IController, PIController
from .errors import ArgumentError, CheckpointError, DataError, TinyNodeError
from .models import tutorial_model
from .regularizers import parse_regularization
from .tableaus import Dopri5, Tsit5

__all__ = ["SOLVERS", "CONTROLLERS", "DEFAULTS", "check_values", "check_paths", "resume_options", "make_model"]

SOLVERS = {"tsit5": Tsit5, "dopri5": Dopri5}
CONTROLLERS = {"pi": PIController, "i": IController}

#: The options a run records, with their defaults (``subset``'s is 1,500 under CI=true, else all images).
DEFAULTS = {
    "sensealg": "interpolating", "solver": "tsit5", "controller": "pi", "rtol": 1e-3, "atol": 1e-3,
    "lr": 1e-3, "batch_size": 128, "seed": 0, "dataset": "mnist", "subset": None, "regularize": "",
}  # fmt: skip
MODEL_OPTIONS = ("sensealg", "solver", "controller", "rtol", "atol")
TRAINING_OPTIONS = ("dataset", "subset", "lr", "batch_size", "seed", "regularize")
CHOICES = {"sensealg": SENSEALGS, "solver": SOLVERS, "controller": CONTROLLERS}


def check_values(args):
    """Every numeric option in range, named as on the command line (``--lr nan`` would only show up
    as a NaN loss an epoch later; ``--epochs 0`` would train nothing and say nothing)."""
    _positive_finite("--lr", args.lr)
    if args.regularize is not None:  # canonical, so that --resume compares weights, not spellings
        args.regularize = parse_regularization(args.regularize).spec
    for flag, tol in (("--rtol", args.rtol), ("--atol", args.atol)):
        _positive_finite(flag, tol)
        if tol is not None and not 1e-10 <= tol <= 1:
            raise ArgumentError(f"{flag} {tol} is outside [1e-10, 1], where float32 training can follow it")
    _at_least("--epochs", args.epochs, 1)
    _at_least("--batch-size", args.batch_size, 1)
    _at_least("--seed", args.seed, 0)
    _at_least("--blas-threads", args.blas_threads, 0, most=4096)
    if args.subset is not None:
        _at_least("--subset", args.subset, 10, why=" (the run holds out 10 % of them to test on)")


def check_enough_images(count, dataset):
    """A run holds out 10 % of its images to test on: it needs at least 10."""
    if count < 10:
        raise DataError(f"only {count} {dataset} images were found or kept; a run needs at least 10 (it tests on 10 %)")


def _positive_finite(flag, value):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ArgumentError(f"{flag} must be a finite positive number, got {value}")


def _at_least(flag, value, least, most=None, why=""):
    if value is not None and (value < least or (most is not None and value > most)):
        upper = f" and at most {most}" if most is not None else ""
        raise ArgumentError(f"{flag} must be at least {least}{upper}{why}, got {value}")


def new_run_id():
    """A run's identity, recorded in its checkpoints and history and kept by ``--resume``."""
    return os.urandom(8).hex()


def check_paths(args, run, epoch=0, legacy=False):
    """The files run ``run`` (resumed after ``epoch``) writes must not collide with each other or with
    what it reads, must be writable, and may replace only this run's own checkpoint and history, and
    only when they are not ahead of it (nothing else is ever lost). ``legacy``: the resumed checkpoint
    predates run ids, so a history without one may be its own."""
    named = {"--save": args.save, "--history": args.history, "--resume": args.resume, "--data-dir": args.data_dir}
    for flag, path in named.items():
        if path is not None and (not path.strip() or "\n" in path):
            raise ArgumentError(f"{flag} {path!r} is not a usable path")
    del named["--data-dir"]
    real = {flag: os.path.realpath(path) for flag, path in named.items() if path}
    for a, b in (("--save", "--history"), ("--resume", "--history")):
        if a in real and b in real and real[a] == real[b]:
            raise ArgumentError(
                f"{a} and {b} name the same file ({named[a]}): the history (JSON) would replace the "
                "checkpoint; give them different paths"
            )
    for flag in ("--save", "--history"):
        if flag in real:
            _check_writable(flag, named[flag])
            if os.path.exists(real[flag]) and real[flag] != real.get("--resume"):
                _check_same_run(flag, named[flag], run, epoch, legacy)
    if "--resume" in real and not os.path.isfile(real["--resume"]):
        raise ArgumentError(f"--resume {named['--resume']}: no such checkpoint file")


def _check_same_run(flag, path, run, epoch=0, legacy=False):
    """An existing file may be replaced only by a newer file of the same run."""
    from .checkpoint import load_checkpoint

    what = "checkpoint" if flag == "--save" else "history"
    try:
        if flag == "--save":
            meta = load_checkpoint(path)["meta"]
            recorded, done = meta.get("run"), meta.get("epoch", 0)
        else:
            with open(path, encoding="utf-8") as f:
                document = json.loads(f.read(1 << 24))
            recorded, done = document.get("run"), len(document.get("history", []))
    except (TinyNodeError, OSError, ValueError, AttributeError, RecursionError, TypeError):
        recorded, done = False, 0
    if recorded != run and not (legacy and recorded is None and what == "history"):
        raise ArgumentError(
            f"{flag} {path} already exists and is not this run's {what}; "
            "tinynode never replaces it: give another path, or delete the file first"
        )
    if isinstance(done, int) and done > epoch:
        raise ArgumentError(
            f"{flag} {path} holds epoch {done} of this run, ahead of the epoch {epoch} resumed from: "
            "it would be replaced by older work; give another path"
        )


def interrupted_path(save, run, epoch):
    """Where Ctrl-C's partial state goes: beside --save, under a name that holds nothing of another run."""
    stem = "tinynode-interrupted" if not save else (save[:-4] if save.endswith(".npz") else save) + ".interrupted"
    for k in range(1, 1000):
        path = f"{stem}.npz" if k == 1 else f"{stem}-{k}.npz"
        if not os.path.exists(path):
            return path
        try:
            _check_same_run("--save", path, run, epoch)
            return path
        except ArgumentError:
            continue
    raise ArgumentError(f"no free name for the interrupted run's checkpoint beside {stem}.npz")


def _check_writable(flag, path):
    if os.path.isdir(path) or path.endswith(os.sep):
        raise ArgumentError(f"{flag} {path} is a directory; give a file name inside it")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArgumentError(f"{flag} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise ArgumentError(f"{flag} {path}: the directory {directory} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ArgumentError(f"{flag} {path} exists and is not writable")
    try:  # the real test (permissions, read-only or special file systems): make and remove a file there
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as e:
        raise ArgumentError(f"{flag} {path}: cannot write in {directory} ({e.strerror})") from None


def resume_options(args, meta, path):
    """Fill the options not given from the checkpoint's; refuse given ones that differ, unless overridden."""
    recorded = {**check_options(meta.get("options", {}), path), **check_training(meta.get("training", {}), path)}
    overrides = set(args.override or [])
    unknown = overrides - set(DEFAULTS) - {"data"}
    if unknown:
        raise ArgumentError(
            f"--override {','.join(sorted(unknown))}: not a recorded option; one of {sorted(DEFAULTS)} or data"
        )
    changed = []
    for name in DEFAULTS:
        given = getattr(args, name)
        if given is None:
            setattr(args, name, recorded.get(name, DEFAULTS[name]))
        elif name in recorded and given != recorded[name] and name not in overrides:
            changed.append(f"--{name.replace('_', '-')} {given} (the checkpoint's: {recorded[name]})")
    if changed:
        raise ArgumentError(
            f"--resume {path} continues a run with other options; refused: {'; '.join(changed)}. Leave them out "
            f"to keep the run's, or say --override {','.join(c.split()[0][2:].replace('-', '_') for c in changed)}"
        )


def check_options(options, path):
    """A checkpoint's model options, every one known and valid, or a CheckpointError naming it."""
    for name, value in options.items():
        if name in CHOICES:
            valid = isinstance(value, str) and value in CHOICES[name]
        else:
            valid = name in ("rtol", "atol") and _number(value) and 1e-10 <= value <= 1
        if not valid:
            raise CheckpointError(f"{path}: recorded option {name} = {value!r} is not one tinynode knows")
    return options


def check_training(training, path):
    """A checkpoint's training options (dataset, subset, lr, batch size, seed), each of its type and range."""
    valid = {
        "dataset": lambda v: v in ("mnist", "fashion-mnist"),
        "subset": lambda v: v is None or (_integer(v) and v >= 10),
        "lr": lambda v: _number(v) and math.isfinite(v) and v > 0,
        "batch_size": lambda v: _integer(v) and v >= 1,
        "seed": lambda v: _integer(v) and v >= 0,
        "regularize": lambda v: isinstance(v, str) and _parses(v),
    }
    for name, value in training.items():
        if name not in valid or not valid[name](value):
            raise CheckpointError(f"{path}: recorded training option {name} = {value!r} is not valid")
    return training


def _parses(text):
    try:
        parse_regularization(text)
    except ArgumentError:
        return False
    return True


def regularization(args):
    """The run's regularisers (``--regularize``, their noise seeded by ``--seed``), or None."""
    return parse_regularization(args.regularize, seed=args.seed) if args.regularize else None


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def fill_defaults(args, ci):
    """The defaults of the options not given (a run that does not resume)."""
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, 1500 if (name == "subset" and ci) else default)


def model_options(args):
    """The model options of a run (what :func:`make_model` takes), from the parsed arguments."""
    return {name: getattr(args, name) for name in MODEL_OPTIONS}


def make_model(options, regularize=None):
    """The tutorial's model with a run's options (and, to train it, its regularisers)."""
    return tutorial_model(
        regularize=regularize,
        sensealg=SENSEALGS[options["sensealg"]](),
        solver=SOLVERS[options["solver"]](),
        rtol=options["rtol"],
        atol=options["atol"],
        controller=CONTROLLERS[options.get("controller", "pi")](),
    )


def check_data_record(recorded, path):
    """A checkpoint's record of its data: the files it read, by name and SHA-256."""
    if recorded is None:
        return None
    files, content = recorded.get("files"), recorded.get("sha256", "")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise CheckpointError(f"{path}: its record of the data ('data') is damaged: files = {files!r}")
    if not isinstance(content, str):
        raise CheckpointError(f"{path}: its record of the data ('data') is damaged: sha256 = {content!r}")
    return recorded


def same_images(recorded, current):
    """None if the data source ``current`` has the files a checkpoint recorded, else what differs."""
    if not recorded:
        return None
    if recorded.get("dataset") != current.get("dataset"):
        return f"the run used {recorded.get('dataset')}, this is {current.get('dataset')}"
    if "sha256" in recorded:  # the content used (this tinynode); else the files' checksums (older records)
        same = recorded["sha256"] == current.get("sha256")
    else:
        same = sorted(recorded.get("files", {}).values()) == sorted(current.get("files", {}).values())
    if not same:
        return f"the run used {_describe(recorded)}, this is {_describe(current)} (the images differ)"
    return None


def _describe(source):
    files = ", ".join(f"{name} {sha[:12]}" for name, sha in sorted(source.get("files", {}).items()))
    return f"{source.get('origin')} ({files})"
