"""Training callbacks: throughput, and checkpoints that a kill cannot corrupt and a resume can continue exactly.

Keras's ``ModelCheckpoint`` and ``BackupAndRestore`` write their ``.weights.h5``
in place: a run killed while one is being written leaves a truncated HDF5 file,
and the resumed run dies on it ("bad object header version number"; seen in
tests/test_fit.py). Here every file is written under a temporary name in the
same folder and renamed over the old one (``os.replace`` is atomic), so a kill
leaves either the old file or the new one.

A resumed run equals an uninterrupted one when everything that carries from
epoch to epoch comes back, all from the same save: the weights and the optimizer,
the state of the model's random generators (dropout, in-model augmentation; not in
Keras's backup, so added to it), early stopping's count (replayed from the
history) and the position in the training stream (`resume_epoch`, which the
trainer skips to). A backup's save is committed by a single rename
(`AtomicBackupAndRestore`), so a kill never mixes two saves.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence

import keras
import numpy as np

from emotf import interrupts


def _partial(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".partial-{tail}")  # keeps the .weights.h5 / .json ending Keras checks


class Interruptible(keras.callbacks.Callback):
    """Ends training with ``KeyboardInterrupt`` after the step during which Ctrl-C came, even where Python
    swallowed its first exception (`emotf.interrupts`)."""

    def on_train_batch_end(self, batch, logs=None):
        interrupts.check()


class Throughput(keras.callbacks.Callback):
    """Adds ``train_samples_per_s`` to the epoch logs, timed from the end of the epoch's first
    step (so XLA / tracing time is excluded)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self.t_first, self.steps = None, 0

    def on_train_batch_end(self, batch, logs=None):
        if self.t_first is None:
            self.t_first = time.perf_counter()
        else:
            self.steps += 1
        self.t_last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.steps:
            logs["train_samples_per_s"] = self.steps * self.batch_size / (self.t_last - self.t_first)


def save_weights_file(model: keras.Model, path: str | os.PathLike) -> None:
    """The model's weights alone (not the optimizer's: a third of the bytes with Adam), atomically, as ``.npz``."""
    path = str(path)
    tmp = _partial(path)
    with open(tmp, "wb") as f:
        np.savez(f, **{f"{i:05d}": np.asarray(w) for i, w in enumerate(model.get_weights())})
    os.replace(tmp, path)


def load_weights_file(model: keras.Model, path: str | os.PathLike) -> None:
    """Load what `save_weights_file` wrote (a ``.weights.h5`` of an older run loads the Keras way).

    Raises:
        ValueError: the file holds the weights of another model.
    """
    path = str(path)
    if path.endswith(".h5"):
        model.load_weights(path)
        return
    with np.load(path) as f:
        weights = [f[k] for k in sorted(f.files)]
    shapes = [tuple(w.shape) for w in model.get_weights()]
    if [tuple(w.shape) for w in weights] != shapes:
        raise ValueError(f"{path}: holds the weights of another model ({len(weights)} arrays, the model has "
                         f"{len(shapes)})")
    model.set_weights(weights)


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch so far by ``monitor`` (weights only, replaced atomically).

    Args:
        initial_value: the best value of the epochs before a resume (None: none yet).
    """

    def __init__(self, path: str | os.PathLike, monitor: str, mode: str, initial_value: float | None = None):
        super().__init__()
        self.path, self.monitor, self.mode = str(path), monitor, mode
        self.best = initial_value

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or math.isnan(float(current)):
            return
        current = float(current)
        if self.best is None or (current > self.best if self.mode == "max" else current < self.best):
            self.best = current
            save_weights_file(self.model, self.path)


def _seed_states(model: keras.Model) -> list:
    """The model's random generators' states: its variables that are neither weights nor metrics."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _backup_metadata(backup_dir: str | os.PathLike) -> dict | None:
    """A backup's ``training_metadata.json`` (None: no save committed yet)."""
    path = os.path.join(str(backup_dir), "training_metadata.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def resume_epoch(backup_dir: str | os.PathLike) -> int:
    """The epoch a run resumes from (0: none), as `AtomicBackupAndRestore` will restore it."""
    meta = _backup_metadata(backup_dir)
    return 0 if meta is None else int(meta["epoch"])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose every save is committed by one atomic rename.

    Each save writes the weights (and the optimizer's state) to a file of its own,
    ``epoch-<N>-batch-<B>.weights.h5``, then replaces ``training_metadata.json``, which
    names that file and holds the state of the model's random generators (dropout,
    in-model augmentation: Keras's backup leaves them out). That replacement is the
    commit; the files of earlier saves are removed after it. A kill at any point
    therefore leaves one save whole: its epoch, its weights, its generators' states,
    and the resumed run continues exactly as an uninterrupted one (with separate
    files renamed one by one, a kill between two renames paired the new weights
    with the old epoch number, and the resumed run trained one epoch twice).

    A backup written before this layout (``latest.weights.h5``, ``seeds.npz``) still restores.
    """

    _LEGACY_SEEDS = "seeds.npz"

    def _load_model(self):
        meta = _backup_metadata(self.backup_dir)
        if meta is not None and "weights" in meta:
            self._weights_path = os.path.join(self.backup_dir, meta["weights"])
            if not os.path.isfile(self._weights_path):
                raise ValueError(f"{self._training_metadata_path}: names {meta['weights']}, which is not in "
                                 f"{self.backup_dir}; the backup is damaged: delete that folder to train from the "
                                 f"start")
        super()._load_model()
        if meta is None:
            return
        legacy = os.path.join(self.backup_dir, self._LEGACY_SEEDS)
        if "seeds" in meta:
            states = [np.asarray(s["values"], dtype=s["dtype"]) for s in meta["seeds"]]
        elif os.path.isfile(legacy):
            with np.load(legacy) as f:
                states = [f[k] for k in sorted(f.files)]
        else:
            return
        variables = _seed_states(self.model)
        if len(states) != len(variables):
            raise ValueError(f"{self._training_metadata_path}: holds {len(states)} random generator states, the "
                             f"model has {len(variables)}: the backup is another model's")
        for v, state in zip(variables, states, strict=True):
            v.assign(state)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:05d}-batch-{self._last_batch_seen}.weights.h5"
        weights = os.path.join(self.backup_dir, name)
        self.model.save_weights(_partial(weights), overwrite=True)
        os.replace(_partial(weights), weights)
        states = [np.asarray(v) for v in _seed_states(self.model)]
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
                "seeds": [{"dtype": str(s.dtype), "values": s.tolist()} for s in states]}
        with open(_partial(self._training_metadata_path), "w") as f:
            json.dump(meta, f)
        os.replace(_partial(self._training_metadata_path), self._training_metadata_path)  # the commit
        for old in os.listdir(self.backup_dir):
            if old != name and (old.endswith(".weights.h5") or old.startswith(".partial-") or
                                old == self._LEGACY_SEEDS):
                os.remove(os.path.join(self.backup_dir, old))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` that, after a resume, counts on from the epochs already run.

    Args:
        history: the rows of the epochs run before (``monitor`` and ``epoch``), replayed at the start
            of training for the epochs before the one training resumes from.
    """

    def __init__(self, *args, history: Sequence[dict] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.past = list(history)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        start = getattr(self.model, "_initial_epoch", 0) or 0
        for row in self.past:
            if int(row["epoch"]) < start and self.monitor in row:
                self.on_epoch_end(int(row["epoch"]), {self.monitor: row[self.monitor]})
        self.model.stop_training = False
