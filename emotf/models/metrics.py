"""The Keras metrics training compiles with: streaming UA, and WA that takes soft labels (mixup).

Beside `emotf.models.losses`, so that importing ``emotf.models`` registers every custom object a
saved ``model.keras`` of emotf needs (its compiled metrics included). The scoring of finished
predictions (confusion matrix, WA, UA, macro-F1 over a test set) is `emotf.evaluation.metrics`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emotf")
class UnweightedAccuracy(keras.metrics.Metric):
    """Streaming UA: the mean over classes of recall, over classes seen so far.

    Args:
        num_classes: number of classes of the classifier.

    Inputs to ``update_state``: ``y_true`` (batch,) or (batch, 1) class
    indices; ``y_pred`` (batch, num_classes) scores.
    """

    def __init__(self, num_classes: int, name: str = "ua", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.support = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="support")
        self.hits = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == self.num_classes != 1:
            y_true = ops.argmax(y_true, axis=-1)  # soft labels (mixup): the larger share is the class
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        y_hat = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        onehot = ops.one_hot(y_true, self.num_classes, dtype=self.dtype)
        w = ops.ones_like(y_true, dtype=self.dtype) if sample_weight is None else ops.cast(
            ops.reshape(sample_weight, (-1,)), self.dtype)
        onehot = onehot * ops.expand_dims(w, -1)
        correct = ops.cast(ops.equal(y_true, y_hat), self.dtype)
        self.support.assign_add(ops.sum(onehot, axis=0))
        self.hits.assign_add(ops.sum(onehot * ops.expand_dims(correct, -1), axis=0))

    def result(self):
        seen = ops.cast(self.support > 0, self.dtype)
        recall = ops.divide_no_nan(self.hits, self.support)
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        self.support.assign(ops.zeros((self.num_classes,), dtype=self.dtype))
        self.hits.assign(ops.zeros((self.num_classes,), dtype=self.dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="emotf")
class LabelAccuracy(keras.metrics.MeanMetricWrapper):
    """WA (accuracy) against class indices or soft labels (the class with the larger share), whichever
    ``y_true`` is."""

    def __init__(self, name: str = "wa", dtype=None):
        super().__init__(_label_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def _label_accuracy(y_true, y_pred):
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1] != 1:
        y_true = ops.argmax(y_true, axis=-1)
    y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    return ops.cast(ops.equal(y_true, ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")
