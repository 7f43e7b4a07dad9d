"""The command line, end to end on the bundled sample (offline, isolated cache)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import tinynode as tn
from tinynode import cli, runs
from tinynode.checkpoint import load_checkpoint, save_checkpoint
from tinynode.errors import TrainingError
from tinynode.train import TrainingInterrupted

EPOCH = re.compile(
    r"^\[(\d+)/(\d+)\]\tTime \d+\.\d{4}s\tTraining Accuracy: (\d+\.\d{5})%\t"
    r"Test Accuracy: (\d+\.\d{5})%\tNFE forward/backward: \d+/\d+$",
    re.M,
)


pytestmark = pytest.mark.usefixtures("cli_sandbox")


def train(capsys, *args):
    rc = cli.main(["train", "--offline", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("sensealg", ["interpolating", "gauss", "backsolve", "discrete"])
def test_the_tutorial_reaches_80_percent_with_every_sensealg(capsys, sensealg):
    rc, out, err = train(capsys, "--sensealg", sensealg)
    assert rc == 0
    epochs = EPOCH.findall(out)
    assert [int(e[0]) for e in epochs] == list(range(1, 10)) and all(e[1] == "9" for e in epochs)
    assert float(epochs[-1][3]) >= 80.0, out
    assert "1350 training / 150 test" in out
    assert err.count("\n") == 1 and "bundled 5,000-image MNIST sample" in err  # the one-line notice


def test_all_5000_bundled_images_reach_88_percent(capsys, monkeypatch):
    monkeypatch.delenv("CI")
    rc, out, _ = train(capsys)
    assert rc == 0 and "4500 training / 500 test" in out
    assert float(EPOCH.findall(out)[-1][3]) >= 88.0, out


def test_save_resume_is_bit_for_bit_and_history_is_written(capsys, tmp_path):
    assert train(capsys, "--epochs", "4", "--save", "full.npz")[0] == 0
    assert train(capsys, "--epochs", "2", "--save", "part.npz", "--history", "h.json")[0] == 0
    rc, out, _ = train(capsys, "--epochs", "4", "--resume", "part.npz", "--save", "part.npz", "--history", "h.json")
    assert rc == 0 and "Resuming from part.npz after epoch 2" in out
    assert [int(e[0]) for e in EPOCH.findall(out)] == [3, 4]
    full, part = load_checkpoint("full.npz"), load_checkpoint("part.npz")
    np.testing.assert_array_equal(full["params"], part["params"])
    np.testing.assert_array_equal(full["opt_state"]["v"], part["opt_state"]["v"])
    history = json.loads((tmp_path / "h.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert set(history[0]) >= {"loss", "time", "train_accuracy", "test_accuracy", "forward_nf", "backward_nvjp"}


def test_eval_reports_accuracy_and_confusion_matrix(capsys):
    train(capsys, "--epochs", "2", "--save", "run.npz")
    assert cli.main(["eval", "run.npz", "--offline"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy \d+\.\d{3}% on 150 mnist images \(holdout\), after epoch 2", out)
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d\s+(\s+\d+){10}$", line)]
    assert len(rows) == 10 and sum(int(v) for row in rows for v in row.split()[1:]) == 150


def test_eval_scores_the_data_the_checkpoint_was_trained_on(capsys, monkeypatch):
    train(capsys, "--epochs", "1", "--subset", "1000", "--save", "run.npz")
    monkeypatch.delenv("CI")  # without CI=true the default would be all 5,000 images
    assert cli.main(["eval", "run.npz", "--offline"]) == 0
    assert "on 100 mnist images (holdout)" in capsys.readouterr().out  # the 10 % of the 1,000 trained on
    assert cli.main(["eval", "run.npz", "--offline", "--subset", "2000"]) == 2  # its holdout would be other images
    assert "was trained on the first 1000 images" in capsys.readouterr().err


def test_eval_of_another_architecture_or_damaged_file(capsys, tmp_path):
    other = tn.nn.Chain(tn.nn.Flatten(), tn.nn.Dense(784, 10))
    save_checkpoint(
        "other.npz",
        other.init(0),
        architecture={"layers": repr(other), "num_params": 7850},
        meta={"options": {name: runs.DEFAULTS[name] for name in runs.MODEL_OPTIONS}},
    )
    assert cli.main(["eval", "other.npz", "--offline"]) == 2
    assert "different architecture" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert cli.main(["eval", "bad.npz", "--offline"]) == 2
    assert "not an .npz archive" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(3, 5)

    monkeypatch.setattr(cli, "fit", interrupted)
    rc, _, err = train(capsys)
    assert rc == 130 and "saved the partial state to tinynode-interrupted.npz" in err
    assert load_checkpoint("tinynode-interrupted.npz")["meta"]["epoch"] == 2


def test_nan_loss_keeps_the_last_good_checkpoint(capsys, monkeypatch):
    def nan(*args, on_epoch=None, **kwargs):
        from tinynode.train import EpochRecord

        on_epoch(EpochRecord(1, 0.5, 0.1, 0.5, 0.5, 1, 1, 0))
        raise TrainingError("the loss became nan in epoch 2, batch 3")

    monkeypatch.setattr(cli, "fit", nan)
    rc, _, err = train(capsys, "--save", "good.npz")
    assert rc == 1 and "loss became nan" in err and "last good checkpoint is good.npz" in err
    assert load_checkpoint("good.npz")["meta"]["epoch"] == 1


def test_missing_test_split_and_gpu_say_what_to_do(capsys):
    assert cli.main(["eval", "x.npz"]) == 2
    assert "no checkpoint at x.npz" in capsys.readouterr().err
    if not tn.backend.gpu_available():
        rc, _, err = train(capsys, "--device", "gpu")
        assert rc == 2 and ("pip install 'tinynode[gpu]'" in err or "CUDA device" in err), err


def test_info_and_python_dash_m(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"tinynode {tn.__version__}" in out and "numpy" in out and "GPU" in out
    res = subprocess.run([sys.executable, "-m", "tinynode", "info"], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("tinynode ")


def test_regularize_is_recorded_reported_and_kept_on_resume(capsys, tmp_path):
    history, ckpt = str(tmp_path / "h.json"), str(tmp_path / "c.npz")
    rc, out, _ = train(capsys, "--epochs", "2", "--regularize", "kinetic=1e-2, error_sampled=0.1",
                       "--history", history, "--save", ckpt)  # fmt: skip
    assert rc == 0 and re.search(r"NFE forward/backward: \d+/\d+\tkinetic [\d.e+-]+\terror_sampled ", out), out
    doc = json.load(open(history))
    assert doc["training"]["regularize"] == "kinetic=0.01,error_sampled=0.1"  # canonical
    last = doc["history"][-1]
    assert set(last["regularization"]) == {"kinetic", "error_sampled"} and last["predict_nf"] >= 8
    rc, _, err = train(capsys, "--epochs", "3", "--resume", ckpt, "--regularize", "kinetic=0.1")
    assert rc == 2 and "--override regularize" in err
    rc, out, _ = train(capsys, "--epochs", "3", "--resume", ckpt)  # the run's regularisers, from the checkpoint
    assert rc == 0 and "\tkinetic " in out.splitlines()[-1]
    for bad, says in (("speed=1", "NAME=WEIGHT"), ("kinetic=-1", "kinetic"), ("error=1", "--sensealg discrete")):
        rc, _, err = train(capsys, "--epochs", "1", "--regularize", bad)
        assert rc == 2 and says in err, err


def test_a_resumed_regularised_run_is_the_uninterrupted_one_bit_for_bit(capsys):
    """The random draws (STEER's end time, the Hutchinson noise, the sampled time) continue where the
    run stopped: each solve's draws depend on the seed and the solve's index only."""
    terms = ("--regularize", "steer=0.5,jacobian=0.01,error_sampled=0.1", "--subset", "500")
    assert train(capsys, "--epochs", "2", "--save", "full.npz", *terms)[0] == 0
    assert train(capsys, "--epochs", "1", "--save", "part.npz", *terms)[0] == 0
    assert train(capsys, "--epochs", "2", "--resume", "part.npz", "--save", "part.npz")[0] == 0
    np.testing.assert_array_equal(load_checkpoint("full.npz")["params"], load_checkpoint("part.npz")["params"])
