"""Training callbacks: throughput, and checkpoints that a kill cannot corrupt.

Keras's ``ModelCheckpoint`` and ``BackupAndRestore`` write their ``.weights.h5``
in place: a run killed while one is being written leaves a truncated HDF5 file,
and the resumed run dies on it ("bad object header version number"; seen in
tests/test_fit.py). Here every file is written under a temporary name in the
same folder and renamed over the old one (``os.replace`` is atomic), so a kill
leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import time

import keras


def _partial(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".partial-{tail}")  # keeps the .weights.h5 / .json ending Keras checks


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


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` whose file is replaced atomically."""

    _target: str | None = None

    def _get_file_path(self, epoch, batch, logs):
        return self._target or super()._get_file_path(epoch, batch, logs)

    def _save_model(self, epoch, batch, logs):
        final = super()._get_file_path(epoch, batch, logs)
        self._target = _partial(final)
        if os.path.exists(self._target):  # left by a killed run
            os.remove(self._target)
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self._target = None
        if os.path.exists(_partial(final)):  # it decided to save (not always, with save_best_only)
            os.replace(_partial(final), final)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose weights and epoch file are replaced atomically.

    The weights are renamed first: a kill between the two renames leaves the new weights
    with the old epoch number, so the resumed run repeats one epoch (its history row is
    overwritten), never skips one.
    """

    def _save_model(self):
        final = (self._weights_path, self._training_metadata_path)
        self._weights_path, self._training_metadata_path = map(_partial, final)
        try:
            super()._save_model()
        finally:
            self._weights_path, self._training_metadata_path = final
        os.replace(_partial(final[0]), final[0])
        os.replace(_partial(final[1]), final[1])
