"""Checkpoints: exact round trip, atomic writes, no pickle, clear errors."""

import json
import os

import numpy as np
import pytest

import tinynode as tn
from tinynode.checkpoint import architecture_of, load_checkpoint, save_checkpoint
from tinynode.errors import CheckpointError


def saved(tmp_path):
    model = tn.models.tutorial_model()
    params = model.init(0)
    opt = tn.Adam()
    state = opt.init(params)
    opt.step(params, np.full_like(params, 0.1), state)
    path = tmp_path / "run.npz"
    save_checkpoint(path, params, state, architecture=architecture_of(model), meta={"epoch": 3, "history": [1, 2]})
    return model, params, state, path


def test_round_trip_is_exact(tmp_path):
    model, params, state, path = saved(tmp_path)
    ckpt = load_checkpoint(path, architecture=architecture_of(model))
    np.testing.assert_array_equal(ckpt["params"], params)
    np.testing.assert_array_equal(ckpt["opt_state"]["m"], state["m"])
    np.testing.assert_array_equal(ckpt["opt_state"]["v"], state["v"])
    assert ckpt["opt_state"]["t"] == 1 and ckpt["meta"]["epoch"] == 3
    assert ckpt["meta"]["version"] == tn.__version__
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]  # no temporary files left


def test_other_architecture_is_refused(tmp_path):
    _, _, _, path = saved(tmp_path)
    other = tn.nn.Chain(tn.nn.Flatten(), tn.nn.Dense(784, 10))
    with pytest.raises(CheckpointError, match="different architecture"):
        load_checkpoint(path, architecture=architecture_of(other))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_files_raise_clear_errors(tmp_path, damage):
    _, _, _, path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a zip" * 100, "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="not a readable tinynode checkpoint|not an .npz archive") as e:
        load_checkpoint(path)
    assert "pickle" not in str(e.value)  # never an invitation to load it unsafely


def test_pickled_content_is_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, params=np.array([object()], dtype=object), meta=np.frombuffer(b"{}", np.uint8))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.npz")


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    model, params, state, path = saved(tmp_path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, params, state, architecture=architecture_of(model))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["run.npz"]
    meta = json.loads(np.load(path)["meta"].tobytes())
    assert meta["format"] == "tinynode-checkpoint-1"
