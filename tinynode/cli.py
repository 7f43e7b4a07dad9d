"""The command line: ``tinynode train``, ``tinynode eval``, ``tinynode info``.

``tinynode train`` with no arguments reproduces the Lux tutorial "MNIST
Classification using Neural ODEs": the first images of the MNIST training set
(1,500 when ``CI=true``, as the tutorial does), split 90/10 in order, batch
128, Adam(0.001), 9 epochs, InterpolatingAdjoint, and one line per epoch.
MNIST comes from ``--data-dir``, the cache or a download; offline (or with
``--offline``) it falls back to the 5,000-image sample shipped inside the
package, with a one-line notice.
"""

import argparse
import json
import os
import platform
import sys

import numpy as np

from . import __version__, backend, fused, runs
from .adjoints import SENSEALGS
from .checkpoint import architecture_of, load_checkpoint, save_checkpoint
from .errors import ArgumentError, CheckpointError, DataError, SolverError, TinyNodeError, TrainingError
from .fileio import atomic_file
from .models import find_neural_odes
from .optim import Adam
from .runs import CONTROLLERS, SOLVERS
from .train import TrainingInterrupted, confusion_matrix, fit, predict


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as tinynode errors: one line on stderr, exit code 2 (:func:`main`)."""

    def error(self, message):
        raise ArgumentError(f"{message} (see {self.prog} --help)")


def _ci():
    return os.environ.get("CI", "").lower() == "true"


def build_parser():
    parser = _Parser(prog="tinynode", description="Neural ODEs from scratch on NumPy/CuPy.")
    parser.add_argument("--version", action="version", version=f"tinynode {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train the tutorial's Neural ODE classifier")
    _data_options(train)
    train.add_argument("--epochs", type=int, default=9)
    # The options a checkpoint records default to None here: runs.fill_defaults (or, with --resume,
    # the checkpoint's own values) fills them in, so that an option given can be told from one not.
    train.add_argument("--batch-size", type=int, help="default 128")
    train.add_argument("--lr", type=float, help="Adam's learning rate, default 0.001")
    train.add_argument(
        "--sensealg", choices=sorted(SENSEALGS), help="how gradients go through the solver (default interpolating)"
    )
    train.add_argument("--solver", choices=sorted(SOLVERS), help="default tsit5")
    train.add_argument(
        "--controller",
        choices=sorted(CONTROLLERS),
        help="step-size controller: OrdinaryDiffEq's PI (default) or a plain I controller",
    )
    train.add_argument("--rtol", type=float, help="default 1e-3")
    train.add_argument("--atol", type=float, help="default 1e-3 (the tutorial's)")
    train.add_argument("--seed", type=int, help="default 0")
    train.add_argument(
        "--regularize",
        metavar="TERMS",
        help="regularisers for dynamics that are cheap to solve, NAME=WEIGHT,... with NAME among kinetic, "
        "jacobian, error, error_sampled, steer (e.g. kinetic=0.01,jacobian=0.01; docs/regularization.md)",
    )
    train.add_argument(
        "--override",
        type=lambda text: [name.strip().replace("-", "_") for name in text.split(",") if name.strip()],
        metavar="NAMES",
        help="with --resume: the recorded options this run may change (comma-separated, e.g. lr,batch_size)",
    )
    train.add_argument("--save", metavar="PATH", help="checkpoint written after every epoch (atomically)")
    train.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")
    train.add_argument("--history", metavar="PATH", help="JSON with per-epoch loss, time, accuracies, counts")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    train.add_argument(
        "--blas-threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU BLAS threads while training (default 0: automatic, one thread for small "
        "matrices such as the tutorial's and every core for wide models; N pins N)",
    )

    ev = sub.add_parser("eval", help="accuracy and confusion matrix of a checkpoint")
    ev.add_argument("checkpoint")
    _data_options(ev)
    ev.add_argument(
        "--split",
        choices=["holdout", "train", "test"],
        default="holdout",
        help="holdout: the last 10%% of the training images (the tutorial's test set); "
        "train: the first 90%%; test: the official 10,000-image test set",
    )

    sub.add_parser("info", help="versions, backends, GPU")
    return parser


def _data_options(p):
    p.add_argument(
        "--dataset",
        choices=["mnist", "fashion-mnist"],
        default=None,
        help="default: mnist for train; for eval, the checkpoint's own",
    )
    p.add_argument("--data-dir", metavar="DIR", help="a directory holding the IDX files (or set TINYNODE_DATA)")
    p.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="use the first N training images (default: 1500 when CI=true, else all; for eval, "
        "the number the checkpoint was trained with)",
    )
    p.add_argument("--offline", action="store_true", help="never try to download")
    p.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu")


def _load(args, split="train", quiet=False, recorded=None):
    """``(images, labels, source)`` (:func:`tinynode.data.load_mnist` with its source record); a run
    recorded as trained on the bundled sample (``recorded``) takes it again unless --data-dir says otherwise."""
    from .data import load_mnist

    subset = args.subset if split == "train" else None
    sample = split == "train" and args.data_dir is None and (recorded or {}).get("origin") == "the bundled sample"
    return load_mnist(
        args.dataset,
        sample=sample and args.dataset == "mnist",
        split=split,
        data_dir=args.data_dir,
        download=not args.offline,
        subset=subset,
        quiet=quiet,
        with_source=True,
    )


def _say(text):
    """One line on stdout in one write (a reader that has seen part of it and left gets nothing half-said)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _write_json_atomically(path, document):
    with atomic_file(path) as f:
        f.write(json.dumps(document, indent=1).encode("utf-8"))


def cmd_train(args):
    from .data import DataLoader, train_test_split

    runs.check_values(args)
    say = (lambda text: None) if args.quiet else _say
    resumed = _resume(args) if args.resume else None
    recorded_run = resumed["meta"].get("run") if resumed is not None else None
    run = recorded_run or runs.new_run_id()
    epoch = resumed["meta"].get("epoch", 0) if resumed is not None else 0
    runs.check_paths(args, run, epoch, legacy=resumed is not None and recorded_run is None)  # before loading data
    if resumed is None:
        if args.override:
            raise ArgumentError("--override only applies with --resume")
        runs.fill_defaults(args, _ci())
    xp = backend.get_array_module(args.device)
    images, labels, source = _load(args, quiet=args.quiet, recorded=resumed and resumed["meta"].get("data"))
    runs.check_enough_images(len(labels), args.dataset)
    (x_train, y_train), (x_test, y_test) = train_test_split(images, labels, at=0.9)
    options = runs.model_options(args)
    model = runs.make_model(options, runs.regularization(args))
    arch = architecture_of(model)
    optimizer = Adam(args.lr)
    params, start_epoch, history = model.init(args.seed), 0, []
    opt_state = optimizer.init(params)
    if resumed is not None:
        params, start_epoch, history = _continue(args, resumed, arch, source, opt_state, say)
    params = xp.asarray(params)
    opt_state = {k: (xp.asarray(v) if hasattr(v, "shape") and np.ndim(v) else v) for k, v in opt_state.items()}
    train_loader = DataLoader(x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed, xp=xp)
    train_loader.epoch = start_epoch
    for ode in find_neural_odes(model):  # a resumed run's regularisers draw on where the run stopped
        ode.training_solves = start_epoch * len(train_loader)
    loaders = (train_loader, *(DataLoader(x, y, batch_size=args.batch_size, xp=xp) for x, y in
                               ((x_train, y_train), (x_test, y_test))))  # fmt: skip
    say(
        f"tinynode {__version__}: the Lux tutorial's Neural ODE on {len(y_train)} training / {len(y_test)} test "
        f"{args.dataset} images, {options['sensealg']} adjoint, {options['solver']}, rtol={args.rtol}, "
        f"atol={args.atol}, batch {args.batch_size}, Adam({args.lr}), {args.epochs} epochs, "
        f"{'GPU' if xp is not np else 'CPU'}"
    )
    training = {name: getattr(args, name) for name in runs.TRAINING_OPTIONS}
    meta = {"run": run, "options": options, "training": training, "data": source}
    if args.subset is not None and len(labels) < args.subset:
        say(f"tinynode: --subset {args.subset}: only {len(labels)} images are there; using them all")

    def on_epoch(record):
        history.append(record.as_dict())
        try:
            if args.save:
                save_checkpoint(args.save, params, opt_state, architecture=arch,
                                meta={**meta, "epoch": record.epoch, "history": history})  # fmt: skip
            if args.history:
                _write_json_atomically(args.history, {**meta, "history": history})
        except (TinyNodeError, OSError) as e:  # a full disk, say: training stops, saying what is kept
            history.pop()
            raise TrainingError(f"after epoch {record.epoch}: {e}") from None

    try:
        fit(model, params, optimizer, opt_state, *loaders, epochs=args.epochs, start_epoch=start_epoch,
            on_epoch=on_epoch, out=None if args.quiet else sys.stdout,
            blas_threads=args.blas_threads or "auto")  # fmt: skip
    except TrainingInterrupted as stop:
        return _save_interrupted(args, params, opt_state, arch, {**meta, "history": history}, stop)
    except SolverError as e:  # the solver failed with the run's options (a model that became stiff, say)
        kept = f" The last good checkpoint is {args.save}." if args.save and history else ""
        print(f"tinynode: training stopped: {' '.join(str(e).splitlines())}{kept}", file=sys.stderr)
        return 1
    except TrainingError as e:
        kept = f" The last good checkpoint is {args.save}." if args.save and history else ""
        print(f"tinynode: {e}{kept}", file=sys.stderr)
        return 1
    return 0


def _resume(args):
    """The ``--resume`` checkpoint, with this run's options reconciled with the ones it records."""
    ckpt = load_checkpoint(args.resume)
    runs.resume_options(args, ckpt["meta"], args.resume)
    runs.check_data_record(ckpt["meta"].get("data"), args.resume)
    done = ckpt["meta"].get("epoch", 0)
    if done >= args.epochs:
        raise ArgumentError(f"--resume {args.resume} has trained {done} epochs already, so --epochs "
                            f"{args.epochs} would train nothing: give --epochs above {done}")  # fmt: skip
    return ckpt


def _continue(args, ckpt, arch, source, opt_state, say):
    """``(params, epoch, history)`` from the resumed checkpoint, after checking it is this model on
    these images; its optimiser state goes into ``opt_state``."""
    if ckpt["meta"]["architecture"] != arch:
        load_checkpoint(args.resume, architecture=arch)  # raises, saying what differs
    different = runs.same_images(ckpt["meta"].get("data"), source)
    if different and "data" not in (args.override or []):
        raise DataError(f"--resume {args.resume}: {different}. Point --data-dir at the run's files, or say "
                        "--override data to continue on these")  # fmt: skip
    if not ckpt["opt_state"]:
        raise CheckpointError(f"{args.resume} has no optimiser state, so training cannot continue from it")
    opt_state.update(ckpt["opt_state"])
    start_epoch = ckpt["meta"].get("epoch", 0)
    say(f"Resuming from {args.resume} after epoch {start_epoch}.")
    return ckpt["params"].astype(np.float32), start_epoch, list(ckpt["meta"].get("history", []))


def _save_interrupted(args, params, opt_state, arch, meta, stop):
    """After Ctrl-C: save where training stopped under its own name (the last complete checkpoint,
    ``--save``'s file, is kept as it is), say how to continue, in one line; the exit code 130."""
    try:
        path = runs.interrupted_path(args.save, meta["run"], stop.epoch - 1)
        save_checkpoint(path, params, opt_state, architecture=arch,
                        meta={**meta, "epoch": stop.epoch - 1, "interrupted": str(stop)})  # fmt: skip
    except TinyNodeError as e:
        print(f"tinynode: interrupted ({stop}); the partial state could not be saved ({e})", file=sys.stderr)
        return 130
    kept = ""
    if args.save and os.path.isfile(args.save):
        kept = f" {args.save} still holds the end of epoch {load_checkpoint(args.save)['meta'].get('epoch')}."
    print(f"tinynode: interrupted ({stop}); saved the partial state to {path}.{kept} Continue with --resume "
          f"{path} (epoch {stop.epoch} restarts from its beginning).", file=sys.stderr)  # fmt: skip
    return 130


def cmd_eval(args):
    from .data import DataLoader, train_test_split

    ckpt = load_checkpoint(args.checkpoint)
    meta = ckpt["meta"]
    options = runs.check_options(meta.get("options", {}), args.checkpoint)
    if set(options) != set(runs.MODEL_OPTIONS):
        raise CheckpointError(f"{args.checkpoint} does not record the model options tinynode train writes "
                              f"({', '.join(runs.MODEL_OPTIONS)}); was it saved by tinynode train?")  # fmt: skip
    model = runs.make_model(options)
    if meta["architecture"] != architecture_of(model):
        load_checkpoint(args.checkpoint, architecture=architecture_of(model))  # raises with the difference
    # Score the data the checkpoint was trained on, so that "holdout" is the same 10 % the run held out.
    trained_on = runs.check_training(meta.get("training", {}), args.checkpoint)
    runs.check_data_record(meta.get("data"), args.checkpoint)
    recorded_dataset = trained_on.get("dataset", "mnist")
    if args.dataset not in (None, recorded_dataset):
        raise ArgumentError(f"--dataset {args.dataset}: {args.checkpoint} was trained on {recorded_dataset}")
    args.dataset = recorded_dataset
    if args.split == "test" and args.subset is not None:
        raise ArgumentError("--subset does not apply to --split test: the test split is always all of it")
    if args.subset is None:
        args.subset = trained_on.get("subset")
    elif args.split != "test" and "subset" in trained_on and args.subset != trained_on["subset"]:
        first = trained_on["subset"]
        raise ArgumentError(
            f"--subset {args.subset}: {args.checkpoint} was trained on the first {first} images, "
            f"so its {args.split} split is theirs; leave --subset out"
        )
    xp = backend.get_array_module(args.device)
    from_sample = isinstance(meta.get("data"), dict) and meta["data"].get("origin") == "the bundled sample"
    images, labels, source = _load(
        args, split="test" if args.split == "test" else "train", quiet=from_sample, recorded=meta.get("data")
    )
    if args.split != "test":
        different = runs.same_images(meta.get("data"), source)
        if different:
            raise DataError(f"{args.checkpoint}: {different}; its {args.split} split would be other images. "
                            "Point --data-dir at the run's files")  # fmt: skip
        runs.check_enough_images(len(labels), args.dataset)
        train, holdout = train_test_split(images, labels, at=0.9)
        images, labels = train if args.split == "train" else holdout
    preds, truth = predict(model, xp.asarray(ckpt["params"]), DataLoader(images, labels, batch_size=128, xp=xp))
    when = f"after epoch {meta.get('epoch')}" + (f" (then {meta['interrupted']})" if "interrupted" in meta else "")
    print(f"{args.checkpoint}: accuracy {100 * (preds == truth).mean():.3f}% on {len(truth)} {args.dataset} "
          f"images ({args.split}), {when}")  # fmt: skip
    print("confusion matrix (rows: true class, columns: predicted):")
    m = confusion_matrix(preds, truth)
    print("      " + " ".join(f"{j:>5}" for j in range(10)))
    for i, row in enumerate(m):
        print(f"  {i:>2}  " + " ".join(f"{v:>5}" for v in row))
    return 0


def cmd_info(args):
    print(f"tinynode {__version__}")
    print(f"python   {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"numpy    {np.__version__}")
    try:
        import scipy

        print(f"scipy    {scipy.__version__}")
    except ImportError:
        print("scipy    not installed (only the tests need it)")
    cupy = None
    try:
        import cupy

        print(f"cupy     {cupy.__version__}")
    except ImportError:
        print("cupy     not installed (pip install 'tinynode[gpu]' for the GPU backend)")
    try:
        cupy = backend.get_array_module("gpu")
        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        memory = props.get("totalGlobalMem", 0) / 2**30
        print(
            f"GPU      {name}, {memory:.1f} GiB ({runtime.getDeviceCount()} device(s)); CUDA runtime "
            f"{_cuda_version(runtime.runtimeGetVersion())}, driver {_cuda_version(runtime.driverGetVersion())}"
        )
        print(
            f"fused    {'on' if fused.enabled(cupy) else 'off (TINYNODE_FUSED=0)'}: one kernel each for the "
            "error norm, Adam, bias+activation and its VJP"
        )
        print("backends numpy, cupy (--device gpu or auto)")
    except TinyNodeError as e:
        print(f"GPU      none: {e}")
        print("backends numpy")
    return 0


def _cuda_version(v):
    """CUDA's integer version (12040) as text ("12.4")."""
    return f"{v // 1000}.{(v % 1000) // 10}" if v else "unknown"


def main(argv=None):
    """Run the command; every tinynode error (bad input included) is one line on stderr and exit code 2."""
    try:
        args = build_parser().parse_args(argv)
        with np.errstate(all="ignore"):  # NumPy's warnings would come before our one-line message
            return {"train": cmd_train, "eval": cmd_eval, "info": cmd_info}[args.command](args)
    except TinyNodeError as e:
        print("tinynode: " + " ".join(str(e).split("\n")), file=sys.stderr)  # one line, whatever it quotes
        return 2
    except KeyboardInterrupt:  # (Ctrl-C while training is handled by fit: it saves first)
        print("tinynode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinynode train | head -1`: the reader left; the checkpoints are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit)
        return 141
    except OSError as e:  # writing the output failed (a full disk behind > file, say)
        print(f"tinynode: cannot write the output: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
