"""The training loop: the tutorial's line format, NaN and Ctrl-C handling, reproducibility."""

import io
import os
import re
import signal

import numpy as np
import pytest

import tinynode as tn
from tinynode.errors import TrainingError
from tinynode.train import TrainingInterrupted, confusion_matrix, fit

LINE = re.compile(
    r"^\[(\d)/3\]\tTime \d+\.\d{4}s\tTraining Accuracy: \d+\.\d{5}%\tTest Accuracy: \d+\.\d{5}%"
    r"\tNFE forward/backward: \d+/\d+$"
)


class Loader:
    """A minimal loader over synthetic 28x28 'images' (two blobs per class)."""

    def __init__(self, n, seed, shuffle=False, on_batch=None):
        rng = np.random.default_rng(seed)
        self.y = rng.integers(0, 10, n)
        centers = np.random.default_rng(99).random((10, 28, 28)).astype(np.float32)
        self.x = (centers[self.y] + 0.3 * rng.random((n, 28, 28))).astype(np.float32)
        self.shuffle, self.rng, self.on_batch = shuffle, np.random.default_rng(seed), on_batch

    def __len__(self):
        return -(-len(self.y) // 32)

    def __iter__(self):
        idx = self.rng.permutation(len(self.y)) if self.shuffle else np.arange(len(self.y))
        for b, i in enumerate(range(0, len(idx), 32)):
            if self.on_batch:
                self.on_batch(b)
            yield self.x[idx[i : i + 32]], self.y[idx[i : i + 32]]


def run(epochs=3, on_batch=None, lr=0.01, params=None):
    model = tn.models.tutorial_model()
    params = model.init(0) if params is None else params
    opt = tn.Adam(lr)
    state = opt.init(params)
    out = io.StringIO()
    history = fit(
        model,
        params,
        opt,
        state,
        Loader(200, 0, True, on_batch),
        Loader(200, 0),
        Loader(60, 1),
        epochs=epochs,
        out=out,
        progress=False,
    )
    return params, history, out.getvalue()


def test_lines_follow_the_tutorial_format_and_it_learns():
    params, history, text = run()
    lines = text.strip().split("\n")
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), text
    assert history[-1].test_accuracy > 0.5 and history[-1].loss < history[0].loss
    assert history[0].forward_nf > 0 and history[0].backward_nvjp > 0


def test_runs_are_reproducible_bit_for_bit():
    a, ha, _ = run(epochs=2)
    b, hb, _ = run(epochs=2)
    np.testing.assert_array_equal(a, b)
    assert [r.test_accuracy for r in ha] == [r.test_accuracy for r in hb]


def test_nan_loss_stops_with_a_clear_message():
    model = tn.models.tutorial_model()
    params = model.init(0)
    params[-1] = np.nan
    with pytest.raises(TrainingError, match=r"loss became nan in epoch 1, batch 1.*--lr"):
        run(params=params)


def test_ctrl_c_is_deferred_to_the_end_of_the_batch():
    def interrupt(batch):
        if batch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as e:
        run(on_batch=interrupt)
    assert (e.value.epoch, e.value.batch) == (1, 3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_confusion_matrix():
    m = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), num_classes=3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_fit_runs_blas_single_threaded_by_default():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    seen = []
    model = tn.models.tutorial_model()
    params = model.init(0)
    opt = tn.Adam(0.01)

    def on_epoch(record):
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})

    fit(
        model,
        params,
        opt,
        opt.init(params),
        Loader(64, 0),
        Loader(64, 0),
        Loader(32, 1),
        epochs=1,
        out=None,
        progress=False,
        on_epoch=on_epoch,
    )
    assert seen == [{1}]
