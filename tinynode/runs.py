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

import math
import os
import tempfile

from .adjoints import SENSEALGS
from .controllers import IController, PIController
from .errors import ArgumentError, CheckpointError
from .models import tutorial_model
from .tableaus import Dopri5, Tsit5

__all__ = ["SOLVERS", "CONTROLLERS", "DEFAULTS", "check_values", "check_paths", "resume_options", "make_model"]

SOLVERS = {"tsit5": Tsit5, "dopri5": Dopri5}
CONTROLLERS = {"pi": PIController, "i": IController}

#: The options a run records, with their defaults (``subset``'s is 1,500 under CI=true, else all images).
DEFAULTS = {
    "sensealg": "interpolating", "solver": "tsit5", "controller": "pi", "rtol": 1e-3, "atol": 1e-3,
    "lr": 1e-3, "batch_size": 128, "seed": 0, "dataset": "mnist", "subset": None,
}  # fmt: skip
MODEL_OPTIONS = ("sensealg", "solver", "controller", "rtol", "atol")
TRAINING_OPTIONS = ("dataset", "subset", "lr", "batch_size", "seed")
CHOICES = {"sensealg": SENSEALGS, "solver": SOLVERS, "controller": CONTROLLERS}


def check_values(args):
    """Every numeric option in range, named as on the command line (``--lr nan`` would only show up
    as a NaN loss an epoch later; ``--epochs 0`` would train nothing and say nothing)."""
    _positive_finite("--lr", args.lr)
    _positive_finite("--rtol", args.rtol)
    _positive_finite("--atol", args.atol)
    _at_least("--epochs", args.epochs, 1)
    _at_least("--batch-size", args.batch_size, 1)
    _at_least("--seed", args.seed, 0)
    _at_least("--blas-threads", args.blas_threads, 0, most=4096)
    if args.subset is not None:
        _at_least("--subset", args.subset, 10, why=" (the run holds out 10 % of them to test on)")


def _positive_finite(flag, value):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ArgumentError(f"{flag} must be a finite positive number, got {value}")


def _at_least(flag, value, least, most=None, why=""):
    if value is not None and (value < least or (most is not None and value > most)):
        upper = f" and at most {most}" if most is not None else ""
        raise ArgumentError(f"{flag} must be at least {least}{upper}{why}, got {value}")


def check_paths(args):
    """The files a run writes must not collide with each other or with what it reads, and must be writable."""
    named = {"--save": args.save, "--history": args.history, "--resume": args.resume}
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
    if "--resume" in real and not os.path.isfile(real["--resume"]):
        raise ArgumentError(f"--resume {named['--resume']}: no such checkpoint file")


def _check_writable(flag, path):
    if os.path.isdir(path):
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
    recorded = {**check_options(meta.get("options", {}), path), **meta.get("training", {})}
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
        valid = value in CHOICES[name] if name in CHOICES else (
            name in ("rtol", "atol") and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
        )  # fmt: skip
        if not valid:
            raise CheckpointError(f"{path}: recorded option {name} = {value!r} is not one tinynode knows")
    return options


def fill_defaults(args, ci):
    """The defaults of the options not given (a run that does not resume)."""
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, 1500 if (name == "subset" and ci) else default)


def model_options(args):
    return {name: getattr(args, name) for name in MODEL_OPTIONS}


def make_model(options):
    """The tutorial's model with a run's options."""
    return tutorial_model(
        sensealg=SENSEALGS[options["sensealg"]](),
        solver=SOLVERS[options["solver"]](),
        rtol=options["rtol"],
        atol=options["atol"],
        controller=CONTROLLERS[options.get("controller", "pi")](),
    )


def same_images(recorded, current):
    """None if the data source ``current`` has the files a checkpoint recorded, else what differs."""
    if not recorded:
        return None
    if recorded.get("dataset") != current.get("dataset"):
        return f"the run used {recorded.get('dataset')}, this is {current.get('dataset')}"
    if recorded.get("files") != current.get("files"):
        return f"the run used {_describe(recorded)}, this is {_describe(current)} (the files' SHA-256 differ)"
    return None


def _describe(source):
    files = ", ".join(f"{name} {sha[:12]}" for name, sha in sorted(source.get("files", {}).items()))
    return f"{source.get('origin')} ({files})"
