"""Losses: the contrastive (Hadsell) loss of the siamese pre-training; cross-entropy of hard or soft labels."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emotf")
class ContrastiveLoss(keras.losses.Loss):
    """``y·d² + (1 − y)·max(margin − d, 0)²`` on pair distances ``d``.

    ``y_true`` is 1 for a matching (positive) pair and 0 for a non-matching
    one; ``y_pred`` is the distance. Negatives farther apart than ``margin``
    cost nothing and closer ones are pushed apart: the hinge the reference code
    had backwards (``min`` instead of ``max``, which pulls negatives together
    and collapses the embedding).

    Args:
        margin: the distance beyond which a negative pair costs nothing.
    """

    def __init__(self, margin: float = 1.0, name: str = "contrastive", **kwargs):
        super().__init__(name=name, **kwargs)
        if margin <= 0:
            raise ValueError(f"margin must be positive. Received: margin={margin}")
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        d = ops.cast(y_pred, "float32")
        y = ops.cast(ops.reshape(y_true, ops.shape(d)), "float32")
        return y * ops.square(d) + (1.0 - y) * ops.square(ops.relu(self.margin - d))

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


def _soft_labels(y_true, y_pred):
    """Class-index labels (batch,) or (batch, 1) → one-hot; soft labels (batch, classes) as they are."""
    classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == classes and classes != 1:
        return ops.cast(y_true, "float32")
    return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes, dtype="float32")


@keras.saving.register_keras_serializable(package="emotf")
class LabelCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against class indices or against soft labels (mixup's), whichever
    ``y_true`` is: training batches with mixup carry (batch, classes), validation batches (batch,)."""

    def __init__(self, name: str = "label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        p = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)
        return -ops.sum(_soft_labels(y_true, y_pred) * ops.log(p), axis=-1)
