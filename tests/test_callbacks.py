"""Checkpoints a kill cannot corrupt: a save interrupted half-way leaves the previous file intact."""

import itertools
import json
import os

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


def test_best_weights_keep_the_best_epoch_weights_only_and_the_old_file_when_killed(tmp_path, monkeypatch):
    path = tmp_path / "best.weights.npz"
    cb = callbacks.BestWeights(path, "val_ua", "max", initial_value=0.4)
    first = _model(0)
    cb.set_model(first)
    cb.on_epoch_end(0, {"val_ua": 0.3})  # below the epochs before a resume: not saved
    assert not path.exists()
    cb.on_epoch_end(1, {"val_ua": 0.5})
    assert path.is_file() and not list(tmp_path.glob(".partial-*"))
    with np.load(path) as f:
        assert len(f.files) == len(first.get_weights())  # no optimizer state
    second = _model(1)
    cb.set_model(second)
    cb.on_epoch_end(2, {"val_ua": 0.45})  # worse: the file stays the first model's

    def dies(*args, **kwargs):
        with open(args[0] if not hasattr(args[0], "write") else args[0].name, "ab") as f:
            f.write(b"half")
        raise _Killed

    monkeypatch.setattr(np, "savez", dies)
    with pytest.raises(_Killed):
        cb.on_epoch_end(3, {"val_ua": 0.9})
    reloaded = _model(2)
    callbacks.load_weights_file(reloaded, path)  # the old file, whole
    np.testing.assert_array_equal(reloaded.get_weights()[0], first.get_weights()[0])
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="another model"):
        callbacks.load_weights_file(other, path)


def test_backup_restores_the_random_generators_and_early_stopping_counts_on(tmp_path):
    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
        m.compile("adam", "mse")
        return m

    a = model()
    backup = callbacks.AtomicBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    a.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), epochs=2, verbose=0, callbacks=[backup])
    states = [np.asarray(v) for v in callbacks._seed_states(a)]
    assert states and callbacks.resume_epoch(tmp_path / "backup") == 2
    b = model()
    assert not all(np.array_equal(s, np.asarray(v)) for s, v in zip(states, callbacks._seed_states(b), strict=True))
    b._initial_epoch = 0
    restore = callbacks.AtomicBackupAndRestore(str(tmp_path / "backup"))
    restore.set_model(b)
    restore.on_train_begin()
    assert all(np.array_equal(s, np.asarray(v)) for s, v in zip(states, callbacks._seed_states(b), strict=True))
    assert b._initial_epoch == 2

    history = [{"epoch": 0, "val_ua": 0.5}, {"epoch": 1, "val_ua": 0.4}, {"epoch": 2, "val_ua": 0.3}]
    stop = callbacks.ResumableEarlyStopping(monitor="val_ua", mode="max", patience=2, history=history)
    stop.set_model(b)
    stop.on_train_begin()  # resumes at epoch 2: epochs 0-1 replayed (best 0.5, one epoch without gain)
    assert stop.best == 0.5 and stop.wait == 1 and not b.stop_training
    stop.on_epoch_end(2, {"val_ua": 0.45})
    assert b.stop_training


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


def _dropout_model(seed):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    m.compile("adam", "mse")
    m.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    return m


def _state(model):
    """Everything a resume restores: weights, the optimizer's variables, the random generators."""
    return [np.asarray(v) for v in [*model.weights, *model.optimizer.variables, *callbacks._seed_states(model)]]


def _restored(backup):
    model = _dropout_model(2)
    cb = callbacks.AtomicBackupAndRestore(str(backup))
    cb.set_model(model)
    cb.on_train_begin()
    return model


def test_a_save_killed_after_any_of_its_file_operations_restores_one_whole_save(tmp_path, monkeypatch):
    # CI caught the kill between two renames of the earlier layout: new weights with the old epoch number, so the
    # resumed run trained that epoch twice and differed from an uninterrupted run.
    first, second = _dropout_model(0), _dropout_model(1)
    saves = {1: _state(first), 2: _state(second)}
    assert not all(np.array_equal(a, b) for a, b in zip(saves[1], saves[2], strict=True))
    real = {"replace": os.replace, "remove": os.remove}
    for k in itertools.count(1):
        backup = tmp_path / f"backup{k}"
        cb = callbacks.AtomicBackupAndRestore(str(backup))
        cb.set_model(first)
        cb.on_epoch_end(0)
        calls = []

        def dies_after_call(name, k=k, calls=calls):
            def op(*args):
                real[name](*args)
                calls.append(name)
                if len(calls) == k:
                    raise _Killed
            return op

        for name in real:
            monkeypatch.setattr(os, name, dies_after_call(name))
        cb.set_model(second)
        try:
            cb.on_epoch_end(1)
            finished = True
        except _Killed:
            finished = False
        monkeypatch.undo()
        restored = _restored(backup)
        epoch = restored._initial_epoch
        assert epoch == callbacks.resume_epoch(backup) and epoch in saves, (k, epoch)
        for a, b in zip(_state(restored), saves[epoch], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"killed after file operation {k}: epoch {epoch}")
        if finished:
            assert epoch == 2 and k > 2  # the weights' rename, the commit, then the clean-up
            assert sorted(p.name for p in backup.iterdir()) == ["epoch-00002-batch-0.weights.h5",
                                                                "training_metadata.json"]
            break


def test_a_backup_of_the_earlier_layout_restores_and_is_replaced_by_the_next_save(tmp_path):
    old = _dropout_model(0)
    backup = tmp_path / "backup"
    backup.mkdir()
    old.save_weights(str(backup / "latest.weights.h5"))
    np.savez(backup / "seeds.npz", **{f"{i:05d}": np.asarray(v) for i, v in enumerate(callbacks._seed_states(old))})
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 3, "batch": 0}))
    restored = _restored(backup)
    assert restored._initial_epoch == 3
    for a, b in zip(_state(restored), _state(old), strict=True):
        np.testing.assert_array_equal(a, b)
    cb = callbacks.AtomicBackupAndRestore(str(backup))
    cb.set_model(restored)
    cb.on_epoch_end(3)
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-00004-batch-0.weights.h5", "training_metadata.json"]
    (backup / "epoch-00004-batch-0.weights.h5").unlink()
    with pytest.raises(ValueError, match="epoch-00004-batch-0.weights.h5.*damaged"):
        _restored(backup)


def test_throughput_excludes_the_first_step():
    cb = callbacks.Throughput(batch_size=8)
    logs = {}
    cb.on_epoch_begin(0)
    for b in range(4):
        cb.on_train_batch_end(b)
    cb.on_epoch_end(0, logs)
    assert logs["train_samples_per_s"] > 0 and cb.steps == 3
