"""Checkpoints a kill cannot corrupt: a save interrupted half-way leaves the previous file intact."""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from emotf.training import callbacks  # noqa: E402


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 3), "float32"), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    return model


class _Killed(BaseException):
    pass


def _dies_half_way(model, monkeypatch):
    """model.save_weights writes half a file, then the process 'dies'."""
    def save_weights(filepath, overwrite=True):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
        raise _Killed
    monkeypatch.setattr(model, "save_weights", save_weights)


@pytest.mark.parametrize("save_best_only", [False, True])
def test_model_checkpoint_keeps_the_old_file_when_killed_while_saving(tmp_path, monkeypatch, save_best_only):
    path = tmp_path / "best.weights.h5"
    cb = callbacks.AtomicModelCheckpoint(str(path), monitor="val_ua", mode="max", save_best_only=save_best_only,
                                         save_weights_only=True)
    first = _model(0)
    cb.set_model(first)
    cb.on_epoch_end(0, {"val_ua": 0.5})
    assert path.is_file() and not list(tmp_path.glob(".partial-*"))
    second = _model(1)
    cb.set_model(second)
    _dies_half_way(second, monkeypatch)
    with pytest.raises(_Killed):
        cb.on_epoch_end(1, {"val_ua": 0.9})
    reloaded = _model(2)
    reloaded.load_weights(str(path))  # the old file, whole
    np.testing.assert_array_equal(reloaded.get_weights()[0], first.get_weights()[0])
    monkeypatch.undo()
    cb.on_epoch_end(2, {"val_ua": 0.95})  # the next save replaces it (and the partial file)
    reloaded.load_weights(str(path))
    np.testing.assert_array_equal(reloaded.get_weights()[0], second.get_weights()[0])
    assert not list(tmp_path.glob(".partial-*"))


def test_backup_is_whole_after_a_kill_while_saving(tmp_path, monkeypatch):
    cb = callbacks.AtomicBackupAndRestore(str(tmp_path / "backup"))
    first = _model(0)
    cb.set_model(first)
    cb.on_epoch_end(0)
    second = _model(1)
    cb.set_model(second)
    _dies_half_way(second, monkeypatch)
    with pytest.raises(_Killed):
        cb.on_epoch_end(1)
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    restored = _model(2)
    cb2 = callbacks.AtomicBackupAndRestore(str(tmp_path / "backup"))
    cb2.set_model(restored)
    cb2.on_train_begin()  # a truncated file here would raise OSError
    np.testing.assert_array_equal(restored.get_weights()[0], first.get_weights()[0])
    assert restored._initial_epoch == 1


def test_throughput_excludes_the_first_step():
    cb = callbacks.Throughput(batch_size=8)
    logs = {}
    cb.on_epoch_begin(0)
    for b in range(4):
        cb.on_train_batch_end(b)
    cb.on_epoch_end(0, logs)
    assert logs["train_samples_per_s"] > 0 and cb.steps == 3
