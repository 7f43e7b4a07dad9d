"""Every bad input ends in a tinynode error, and nothing on disk is lost (docs/errors.md, row by row).

The command line: every bad flag or path is one line on stderr and exit code
2, before any training; the library: every public entry point raises a
TinyNodeError subclass. Property-based tests throw random bad values at both.
"""

import json
import math
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynode as tn
from tinynode import cli, data
from tinynode.checkpoint import architecture_of, load_checkpoint, save_checkpoint
from tinynode.errors import CheckpointError, TinyNodeError
from tinynode.train import TrainingInterrupted

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def run(capsys, *argv):
    """``(exit code, stdout, stderr)`` of the CLI."""
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def refused(capsys, *argv, match):
    rc, _, err = run(capsys, *argv)
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("tinynode: ") and "Traceback" not in err, err
    assert match in err, err
    return err


# -- the command line: values and paths, refused before the first epoch --------------------------

BAD_FLAGS = [
    (["--lr", "nan"], "--lr must be a finite positive number"),
    (["--lr", "-0.1"], "--lr must be a finite positive number"),
    (["--lr", "abc"], "invalid float value"),
    (["--rtol", "0"], "--rtol must be a finite positive number"),
    (["--atol", "inf"], "--atol must be a finite positive number"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--epochs", "-3"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--subset", "5"], "--subset must be at least 10"),
    (["--blas-threads", "-1"], "--blas-threads must be at least 0"),
    (["--blas-threads", "100000"], "at most 4096"),
    (["--seed", "-1"], "--seed must be at least 0"),
    (["--sensealg", "magic"], "invalid choice"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--override", "lr"], "--override only applies with --resume"),
    (["--save", "x.npz", "--history", "x.npz"], "name the same file"),
    (["--save", "missing-dir/x.npz"], "does not exist"),
    (["--save", "."], "is a directory"),
    (["--resume", "nothing.npz"], "no checkpoint at nothing.npz"),
    (["--history", "/proc/h.json"], "cannot write in /proc"),  # writable by its mode bits, not in fact
]


@pytest.mark.parametrize("flags, match", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_one_line_and_exit_2_before_training(capsys, monkeypatch, flags, match):
    monkeypatch.setattr(cli, "fit", lambda *a, **k: pytest.fail("training started"))
    refused(capsys, "train", "--offline", *flags, match=match)
    assert not os.path.exists("x.npz")


def train(capsys, *args):
    rc, out, err = run(capsys, "train", "--offline", "--quiet", *args)
    assert rc == 0, err
    return out


def test_resume_with_the_history_on_the_checkpoint_is_refused_and_the_checkpoint_survives(capsys):
    train(capsys, "--epochs", "1", "--save", "run.npz")
    before = open("run.npz", "rb").read()
    refused(capsys, "train", "--offline", "--resume", "run.npz", "--history", "run.npz", match="name the same file")
    assert open("run.npz", "rb").read() == before


def test_resume_refuses_changed_options_unless_overridden(capsys):
    train(capsys, "--epochs", "1", "--save", "run.npz", "--lr", "0.002")
    err = refused(capsys, "train", "--offline", "--resume", "run.npz", "--lr", "0.01", match="with other options")
    assert "--lr 0.01 (the checkpoint's: 0.002)" in err and "--override lr" in err
    out = train(capsys, "--epochs", "2", "--resume", "run.npz", "--save", "run.npz", "--lr", "0.01", "--override", "lr")
    assert load_checkpoint("run.npz")["meta"]["training"]["lr"] == 0.01 and out == ""
    train(capsys, "--epochs", "3", "--resume", "run.npz", "--save", "run.npz")  # not given: the run's own
    assert load_checkpoint("run.npz")["meta"]["training"]["lr"] == 0.01


def _other_mnist(directory, n=200):
    rng = np.random.default_rng(5)
    os.makedirs(directory, exist_ok=True)
    data.write_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"), rng.integers(0, 255, (n, 28, 28), np.uint8))
    data.write_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"), rng.integers(0, 10, n).astype(np.uint8))


def test_eval_and_resume_refuse_other_images_than_the_run_used(capsys):
    train(capsys, "--epochs", "1", "--save", "run.npz")
    meta = load_checkpoint("run.npz")["meta"]
    assert meta["data"]["origin"] == "the bundled sample" and meta["data"]["files"] == data.SAMPLE_SHA256
    _other_mnist("other")
    refused(capsys, "eval", "run.npz", "--data-dir", "other", match="the run used the bundled sample")
    refused(capsys, "train", "--offline", "--resume", "run.npz", "--data-dir", "other", match="the images differ")
    rc, out, _ = run(capsys, "eval", "run.npz", "--offline")  # the run's own images: scored
    assert rc == 0 and "on 150 mnist images (holdout)" in out


def test_ctrl_c_keeps_the_last_complete_checkpoint_and_labels_the_partial_one(capsys, monkeypatch):
    train(capsys, "--epochs", "1", "--save", "run.npz")
    before = open("run.npz", "rb").read()

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(2, 5)

    with monkeypatch.context() as patch:
        patch.setattr(cli, "fit", interrupted)
        rc, _, err = run(capsys, "train", "--offline", "--resume", "run.npz", "--save", "run.npz")
    assert rc == 130 and "run.interrupted.npz" in err and "run.npz still holds the end of epoch 1" in err
    assert open("run.npz", "rb").read() == before
    partial = load_checkpoint("run.interrupted.npz")["meta"]
    assert partial["epoch"] == 1 and "epoch 2" in partial["interrupted"]
    rc, out, _ = run(capsys, "eval", "run.interrupted.npz", "--offline")
    assert rc == 0 and "after epoch 1 (then interrupted" in out


# -- checkpoints: every field checked ----------------------------------------------------------------


def _write(path, params, meta, **opt):
    arrays = {"params": params, "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    arrays.update({f"opt_{k}": v for k, v in opt.items()})
    np.savez(path, **arrays)


def _good_meta(model):
    return {"format": "tinynode-checkpoint-1", "version": tn.__version__, "architecture": architecture_of(model),
            "epoch": 1, "history": [], "options": {"sensealg": "interpolating", "solver": "tsit5",
                                                   "controller": "pi", "rtol": 1e-3, "atol": 1e-3}}  # fmt: skip


DAMAGED = {
    "metadata is a list": lambda m, p: ([1, 2], p, {}),
    "no architecture": lambda m, p: ({k: v for k, v in m.items() if k != "architecture"}, p, {}),
    "epoch is text": lambda m, p: ({**m, "epoch": "two"}, p, {}),
    "history is an object": lambda m, p: ({**m, "history": {}}, p, {}),
    "unknown option": lambda m, p: ({**m, "options": {**m["options"], "solver": "rk45"}}, p, {}),
    "integer parameters": lambda m, p: (m, p.astype(np.int32), {}),
    "NaN parameters": lambda m, p: (m, np.full_like(p, np.nan), {}),
    "no step count": lambda m, p: (m, p, {"m": np.zeros_like(p), "v": np.zeros_like(p)}),
    "negative step count": lambda m, p: (m, p, {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": np.array(-1)}),
    "short moment": lambda m, p: (m, p, {"m": np.zeros(3, p.dtype), "v": np.zeros_like(p), "t": np.array(2)}),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_malformed_checkpoints_are_checkpoint_errors_in_the_library_and_the_cli(capsys, damage):
    model = tn.models.tutorial_model()
    meta, params, opt = DAMAGED[damage](_good_meta(model), model.init(0))
    _write("bad.npz", params, meta, **opt)
    with pytest.raises(CheckpointError, match="bad.npz"):
        ckpt = load_checkpoint("bad.npz")
        tn.runs.check_options(ckpt["meta"].get("options", {}), "bad.npz")
    refused(capsys, "eval", "bad.npz", "--offline", match="bad.npz")
    refused(capsys, "train", "--offline", "--resume", "bad.npz", match="bad.npz")


def test_stale_temporary_files_of_a_killed_writer_are_removed_by_the_next_write():
    model = tn.models.tutorial_model()
    dead = ".run.npz.999999999.deadbeef.tmp"  # no process has this id
    alive = f".run.npz.{os.getpid()}.0badcafe.tmp"  # ours, as if still writing
    for name in (dead, alive):
        open(name, "wb").write(b"half a checkpoint")
    save_checkpoint("run.npz", model.init(0), architecture=architecture_of(model))
    assert not os.path.exists(dead) and os.path.exists(alive)
    assert zipfile.is_zipfile("run.npz")


# -- the library: each public function raises a tinynode error for bad values ------------------------


def test_library_bad_values_name_themselves():
    f = lambda t, y, p: -y  # noqa: E731
    cases = [
        (lambda: tn.solve(f, np.ones(2), (0, 1), dt0=1e-17), "dt0 = 1e-17 is too small"),
        (lambda: tn.Adam(float("nan")), "learning rate lr must be a finite positive"),
        (lambda: tn.SGD(-1), "learning rate lr must be a finite positive"),
        (lambda: tn.logit_cross_entropy(np.zeros((2, 10)), np.array([-1, 3])), "classes 0..9"),
        (lambda: tn.logit_cross_entropy(np.zeros((2, 10)), np.array([10, 3])), "got [10]"),
        (lambda: data.DataLoader(np.zeros((2, 28, 28), np.uint8), np.array([0.5, 1.0])), "integer classes"),
        (lambda: data.DataLoader(np.zeros((2, 28, 28), np.uint8), np.array([3, 10])), "classes 0..9, got int64"),
        (lambda: data.DataLoader([[0]], [0]), "needs arrays"),
    ]
    for call, match in cases:
        with pytest.raises(TinyNodeError, match=match.replace("[", r"\[").replace("]", r"\]")):
            call()


anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.lists(st.floats(allow_nan=True), max_size=3),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["rtol", "atol", "dt0", "max_steps", "saveat", "solver", "controller", "tspan"]),
       value=anything)  # fmt: skip
def test_random_solver_options_give_a_result_or_a_tinynode_error(name, value):
    kwargs = {"tspan": (0.0, 1.0), "max_steps": 10_000}
    kwargs[name] = value
    tspan = kwargs.pop("tspan")
    try:
        sol = tn.solve(lambda t, y, p: -y, np.ones(2), tspan, **kwargs)
    except TinyNodeError:
        return
    assert np.all(np.isfinite(sol.y))  # accepted: then the answer is a real one
    if name != "saveat":
        assert math.isclose(sol.t[-1], float(tspan[1]))


@settings(max_examples=40, deadline=None)
@given(args=st.lists(st.sampled_from(["in", "out"]), min_size=0, max_size=0), a=anything, b=anything,
       act=st.one_of(st.none(), st.text(max_size=6)))  # fmt: skip
def test_random_layer_arguments_give_a_layer_or_a_tinynode_error(args, a, b, act):
    try:
        layer = tn.nn.Dense(a, b, act)
    except TinyNodeError:
        return
    assert layer.num_params == layer.out_features * (layer.in_features + 1)


FLAG_VALUES = {
    "--lr": ["0.001", "nan", "-1", "x", "1e400"], "--epochs": ["1", "0", "-2", "1.5"],
    "--batch-size": ["64", "0", "q"], "--subset": ["200", "3", "-1"], "--rtol": ["1e-3", "0", "nan"],
    "--blas-threads": ["1", "-5", "99999"], "--sensealg": ["gauss", "nope"], "--save": ["a.npz", ".", "no/a.npz"],
    "--history": ["a.npz", "h.json", "no/h.json"], "--resume": ["none.npz"], "--override": ["lr", "bogus"],
}  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=4, unique=True), st.data())
def test_random_command_lines_run_or_are_refused_in_one_line(flags, draw):
    argv = ["train", "--offline", "--quiet"]
    for flag in flags:
        argv += [flag, draw.draw(st.sampled_from(FLAG_VALUES[flag]))]
    stub_fit = lambda *a, **k: []  # noqa: E731  (the checks, not the training, are under test)
    original, cli.fit = cli.fit, stub_fit
    try:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = cli.main(argv)
    finally:
        cli.fit = original
    assert rc in (0, 2), (argv, err.getvalue())
    if rc == 2:
        assert err.getvalue().startswith("tinynode: ") and err.getvalue().count("\n") == 1, (argv, err.getvalue())


def test_more_library_misuse_is_named():
    layer = tn.nn.Dense(3, 2)
    cases = [
        (lambda: layer.init("seven"), tn.ArgumentError, "a seed"),
        (lambda: layer.init(0, np.int32), tn.DTypeError, "float32 or float64"),
        (lambda: tn.solve("f", np.ones(2), (0, 1)), tn.ArgumentError, "callable"),
        (lambda: save_checkpoint(".", layer.init(0), architecture=architecture_of(layer)), CheckpointError,
         "is a directory"),
    ]  # fmt: skip
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


# -- found by a tester trying to break it (each once a traceback, a silent replacement or a wrong answer) --


def test_an_existing_file_is_replaced_only_by_its_own_run(capsys):
    train(capsys, "--epochs", "1", "--save", "a.npz", "--history", "a.json")
    before = open("a.npz", "rb").read()
    refused(capsys, "train", "--offline", "--epochs", "1", "--save", "a.npz", match="not this run's checkpoint")
    refused(capsys, "train", "--offline", "--epochs", "1", "--save", "b.npz", "--history", "a.npz", match="not this")
    refused(capsys, "train", "--offline", "--epochs", "1", "--history", "a.json", match="not this run's history")
    open("labels.gz", "wb").write(b"someone's data")
    refused(capsys, "train", "--offline", "--epochs", "1", "--save", "labels.gz", match="already exists")
    assert open("a.npz", "rb").read() == before and open("labels.gz", "rb").read() == b"someone's data"
    train(capsys, "--epochs", "2", "--resume", "a.npz", "--save", "a.npz", "--history", "a.json")  # its own: fine
    assert load_checkpoint("a.npz")["meta"]["epoch"] == 2


def test_a_second_interrupted_run_does_not_replace_the_first_ones_state(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(1, 3)

    monkeypatch.setattr(cli, "fit", interrupted)
    assert run(capsys, "train", "--offline", "--seed", "1")[0] == 130
    first = open("tinynode-interrupted.npz", "rb").read()
    rc, _, err = run(capsys, "train", "--offline", "--seed", "2")
    assert rc == 130 and "tinynode-interrupted-2.npz" in err
    assert open("tinynode-interrupted.npz", "rb").read() == first


def test_a_bad_checkpoint_is_refused_when_saved_not_only_when_loaded():
    model = tn.models.tutorial_model()
    save_checkpoint("good.npz", model.init(0), architecture=architecture_of(model))
    before = open("good.npz", "rb").read()
    for params, meta in ((np.full(16450, np.nan, np.float32), None), (model.init(0), {"note": object()})):
        with pytest.raises(CheckpointError):
            save_checkpoint("good.npz", params, architecture=architecture_of(model), meta=meta)
    assert open("good.npz", "rb").read() == before


EDITED = {
    "a solver as a list": lambda m: {**m, "options": {**m["options"], "solver": ["tsit5"]}},
    "data files as a list": lambda m: {**m, "data": {**m.get("data", {}), "files": ["x"]}},
    "a subset that is true": lambda m: {**m, "training": {**m["training"], "subset": True}},
    "a dataset as a list": lambda m: {**m, "training": {**m["training"], "dataset": ["mnist"]}},
}


@pytest.mark.parametrize("edit", sorted(EDITED))
def test_hand_edited_metadata_is_one_line_for_eval_and_resume(capsys, edit):
    train(capsys, "--epochs", "1", "--save", "run.npz")
    with np.load("run.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = EDITED[edit](json.loads(arrays["meta"].tobytes()))
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez("edited.npz", **arrays)
    for argv in (("eval", "edited.npz", "--offline"), ("train", "--offline", "--resume", "edited.npz")):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_deeply_nested_or_raw_metadata_is_a_checkpoint_error():
    model = tn.models.tutorial_model()
    _write("deep.npz", model.init(0), json.loads("[" * 50 + "]" * 50))
    deep = np.frombuffer(("[" * 100_000 + "]" * 100_000).encode(), np.uint8)
    np.savez("deeper.npz", params=model.init(0), meta=deep)
    with zipfile.ZipFile("raw.npz", "w") as z:
        z.writestr("meta", json.dumps(_good_meta(model)))
    for name in ("deep.npz", "deeper.npz", "raw.npz"):
        with pytest.raises(CheckpointError):
            load_checkpoint(name)


MORE_BAD_FLAGS = [
    (["--history", "nohist/"], "is a directory"),
    (["--save", "x\ny.npz"], "is not a usable path"),
    (["--resume", ""], "is not a usable path"),
    (["--data-dir", ""], "is not a usable path"),
    (["--rtol", "1e-300"], "outside [1e-10, 1]"),
    (["--atol", "1e300"], "outside [1e-10, 1]"),
]


@pytest.mark.parametrize("flags, match", MORE_BAD_FLAGS, ids=[repr(f) for f, _ in MORE_BAD_FLAGS])
def test_more_bad_flags_are_refused_before_training(capsys, monkeypatch, flags, match):
    monkeypatch.setattr(cli, "fit", lambda *a, **k: pytest.fail("training started"))
    refused(capsys, "train", "--offline", *flags, match=match)


def test_too_few_images_resuming_nothing_and_divergence_say_so(capsys, tmp_path):
    _other_mnist("tiny", n=5)
    refused(capsys, "train", "--offline", "--data-dir", "tiny", match="only 5 mnist images")
    train(capsys, "--epochs", "2", "--save", "run.npz")
    refused(capsys, "train", "--offline", "--resume", "run.npz", "--epochs", "2", match="would train nothing")
    rc, _, err = run(capsys, "train", "--offline", "--quiet", "--lr", "1e38", "--epochs", "2")
    assert rc == 1 and "training diverged" in err and err.count("\n") == 1


def test_ctrl_c_outside_training_is_one_line(capsys, monkeypatch):
    train(capsys, "--epochs", "1", "--save", "run.npz")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "predict", interrupt)
    rc, _, err = run(capsys, "eval", "run.npz", "--offline")
    assert rc == 130 and err.splitlines()[-1] == "tinynode: interrupted" and "Traceback" not in err


def test_more_library_bad_values_are_tinynode_errors():
    dense = tn.nn.Dense(2, 2)
    p = dense.init(0)
    y, ctx = dense.forward(p, np.ones((3, 2), np.float32))
    wrong_vjp = lambda x, gy: (5 * gy.sum() * np.ones_like(x),)  # noqa: E731
    nan_vjp = lambda x, gy: (np.full_like(x, np.nan),)  # noqa: E731
    cases = [
        lambda: tn.nn.Dense(2, 3, ["tanh"]),
        lambda: dense.backward(p, ctx, np.ones((3, 2))),  # float64 cotangent, float32 layer
        lambda: tn.solve(
            tn.VectorField(tn.nn.Dense(2, 3)), np.ones((1, 2)), (0, 1), tn.nn.Dense(2, 3).init(0, np.float64)
        ),
        lambda: tn.solve_with_vjp(tn.VectorField(dense), np.ones((1, 2), np.float32), {0, 1}, p),
        lambda: tn.solve(lambda t, y, q: -y, np.ones(2), (0, 1), controller=tn.PIController),
        lambda: tn.PIController(qmax=0),
        lambda: tn.IController(safety="x"),
        lambda: tn.solve(lambda t, y, q: -y, np.ones(2), (0, 1), dense=True)("a"),
        lambda: tn.NeuralODE(tn.nn.Dense(2, 2), saveat="ab"),
        lambda: tn.Adam(betas=0.9),
        lambda: tn.Adam().step(p, p, {}),
        lambda: tn.GaussAdjoint(rtol=float("inf")),
        lambda: tn.testing.gradcheck(np.sin, np.ones(3), vjp=wrong_vjp, full_max=0, directions=0),
        lambda: tn.testing.gradcheck(np.sin, np.ones(3), vjp=nan_vjp),
        lambda: tn.testing.gradcheck(np.sin, np.ones(3), vjp=wrong_vjp, eps=0),
        lambda: tn.backend.get_array_module("tpu"),
        lambda: data.DataLoader(np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64), seed=-1),
        lambda: data.DataLoader(np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64), classes="ten"),
        lambda: data.train_test_split(np.zeros(4), np.zeros(4), at="0.5"),
        lambda: data.load_mnist(["mnist"]),
        lambda: data.read_idx(None),
        lambda: data.write_idx("/proc/x.idx", np.zeros(3, np.uint8)),
        lambda: tn.logit_cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1])),
        lambda: tn.solve(lambda t, y, q: -y, np.ones(2), "01"),
        lambda: tn.solve(lambda t, y, q: -y, np.ones(2), (0, 1), atol="1e-3"),
        lambda: tn.solve(lambda t, y, q: -y, np.ones(2), (0, 1), atol=1e-3 + 1j),
    ]
    for k, call in enumerate(cases):
        with pytest.raises(TinyNodeError):
            call()
            print(k)


# -- the second tester's round: legitimate use must still work, and older work must not replace newer --


def test_the_same_images_are_recognised_whatever_their_files(capsys):
    train(capsys, "--epochs", "1", "--save", "s.npz")
    _other_mnist(os.path.join("cache", "tinynode", "mnist"))  # full "MNIST" appears in the cache later
    rc, out, err = run(capsys, "eval", "s.npz", "--offline")
    assert rc == 0 and "on 150 mnist images (holdout)" in out, err  # the run's own sample, not the cache
    images, labels = data.load_sample()
    os.makedirs("raw")
    data.write_idx("raw/train-images-idx3-ubyte", images)  # the same images, renamed and not compressed
    data.write_idx("raw/train-labels-idx1-ubyte", labels)
    rc, out, err = run(capsys, "eval", "s.npz", "--data-dir", "raw")
    assert rc == 0, err


def test_repeating_the_original_options_on_resume_is_accepted(capsys):
    out = train(capsys, "--epochs", "1", "--subset", "100000", "--save", "big.npz")
    train(capsys, "--epochs", "2", "--subset", "100000", "--resume", "big.npz", "--save", "big.npz")
    assert load_checkpoint("big.npz")["meta"]["epoch"] == 2 and out == ""


def test_older_work_of_the_same_run_never_replaces_newer(capsys):
    train(capsys, "--epochs", "1", "--save", "a.npz", "--history", "a.json")
    open("a1.npz", "wb").write(open("a.npz", "rb").read())  # a copy at epoch 1
    train(capsys, "--epochs", "3", "--resume", "a.npz", "--save", "a.npz", "--history", "a.json")
    refused(capsys, "train", "--offline", "--resume", "a1.npz", "--save", "a.npz", "--epochs", "2", match="ahead of")
    refused(capsys, "train", "--offline", "--resume", "a1.npz", "--history", "a.json", "--epochs", "2", match="ahead")
    assert load_checkpoint("a.npz")["meta"]["epoch"] == 3


def test_eval_refuses_another_dataset_or_a_subset_of_the_test_split(capsys):
    train(capsys, "--epochs", "1", "--save", "run.npz")
    refused(capsys, "eval", "run.npz", "--split", "test", "--dataset", "fashion-mnist", match="trained on mnist")
    refused(capsys, "eval", "run.npz", "--split", "test", "--subset", "100", match="does not apply to --split test")


def test_a_failed_write_during_training_stops_it_with_exit_1_keeping_the_last_checkpoint(capsys, monkeypatch):
    calls = []

    def flaky(path, document):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "_write_json_atomically", flaky)
    rc, _, err = run(capsys, "train", "--offline", "--quiet", "--epochs", "3", "--save", "r.npz", "--history", "h.json")
    assert rc == 1 and "No space left" in err and "last good checkpoint is r.npz" in err and err.count("\n") == 1


def test_a_closed_output_pipe_keeps_the_checkpoints_and_prints_no_traceback(tmp_path):
    import subprocess
    import sys

    cmd = f"{sys.executable} -m tinynode train --offline --epochs 3 --save p.npz | head -n 1 > /dev/null"
    res = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    assert load_checkpoint(tmp_path / "p.npz")["meta"]["epoch"] >= 1


def test_numpy_numbers_and_ranges_are_accepted_where_numbers_are():
    tn.GaussAdjoint(rtol=np.float32(1e-6))
    tn.PIController(qmax=np.int64(10))
    tn.IController(safety=np.float32(0.9))
    tn.Adam(betas=np.array([0.9, 0.999]))
    data.train_test_split(np.zeros(10), np.zeros(10), at=np.float32(0.8))
    tn.testing.gradcheck(np.sin, np.ones(3), vjp=lambda x, g: (np.cos(x) * g,), eps=np.float32(1e-6))
    sol = tn.solve(lambda t, y, p: -y, np.ones(2), (0, 10), saveat=range(0, 11, 5))
    assert sol.t.tolist() == [0.0, 5.0, 10.0]
    model = tn.nn.Dense(2, 2)
    save_checkpoint("n.npz", model.init(0), architecture=architecture_of(model), meta={"epoch": np.int64(3)})
    assert load_checkpoint("n.npz")["meta"]["epoch"] == 3
