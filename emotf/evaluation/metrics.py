"""Evaluation metrics: WA, UA (macro recall), macro-F1 and the confusion matrix.

WA (weighted accuracy) is plain accuracy, dominated by the large classes; UA
(unweighted accuracy) is the mean of the per-class recalls, so every emotion
counts the same. Papers disagree on which they print; emotf always gives both.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
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


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int counts; rows are the true class, columns the prediction."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """Every figure emotf publishes for one set of predictions.

    Classes absent from ``y_true`` are left out of UA and macro-F1 (their recall
    is undefined) and listed under ``"absent_classes"``.

    Returns:
        A JSON-ready dict: ``n``, ``wa``, ``ua``, ``macro_f1``,
        ``per_class`` {name: {recall, precision, f1, support}},
        ``confusion_matrix`` (rows true, columns predicted), ``class_names``, and
        ``most_predicted`` {class, share}: the class predicted most often and its share of
        the predictions (a model that collapses onto one class shows it at a glance).
    """
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, k)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(k), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    n = int(cm.sum())
    return {
        "n": n,
        "wa": float(tp.sum() / n) if n else float("nan"),
        "ua": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {name: {"recall": float(recall[i]), "precision": float(precision[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(class_names)},
        "absent_classes": [name for i, name in enumerate(class_names) if not present[i]],
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
        "most_predicted": {"class": class_names[int(predicted.argmax())],
                           "share": float(predicted.max() / n) if n else float("nan")},
    }
