"""Compiling models the one way emotf trains them (shared by training and the search spaces)."""

from __future__ import annotations

import keras

from emotf.models.losses import ContrastiveLoss, LabelCrossentropy
from emotf.models.metrics import LabelAccuracy, UnweightedAccuracy


def optimizer(lr, weight_decay: float) -> keras.optimizers.Optimizer:
    """AdamW (decoupled weight decay), the paper's optimiser family; ``lr`` a number or a schedule."""
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay)


def learning_rate(lr: float, schedule: str = "constant", *, epochs: int = 1, warmup_epochs: int = 0,
                  steps_per_epoch: int = 1):
    """The learning rate over training: ``lr`` ("constant"), or ("warmup_cosine") a linear rise from 0 to ``lr``
    over ``warmup_epochs``, then a cosine decay to 0 at the end of ``epochs``."""
    if schedule == "constant":
        return lr
    if schedule != "warmup_cosine":
        raise ValueError(f"schedule must be constant or warmup_cosine. Received: {schedule!r}")
    warmup = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, (epochs - warmup_epochs) * steps_per_epoch),
                                                  warmup_target=lr, warmup_steps=warmup)


def compile_classifier(model: keras.Model, *, num_classes: int, lr, weight_decay: float, jit_compile: bool,
                       soft_labels: bool = False) -> keras.Model:
    """Cross-entropy on the softmax output, metrics ``wa`` (accuracy) and ``ua`` (mean recall).

    Args:
        lr: a number or a Keras schedule (`learning_rate`).
        soft_labels: training batches carry soft labels (mixup); the loss and WA then take either kind.
    """
    if soft_labels:
        loss, wa = LabelCrossentropy(), LabelAccuracy(name="wa")
    else:
        loss, wa = keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="wa")
    model.compile(optimizer=optimizer(lr, weight_decay), loss=loss, metrics=[wa, UnweightedAccuracy(num_classes)],
                  jit_compile=jit_compile)
    return model


def compile_siamese(model: keras.Model, *, margin: float, lr: float, weight_decay: float,
                    jit_compile: bool) -> keras.Model:
    """The contrastive loss on the pair distances."""
    model.compile(optimizer=optimizer(lr, weight_decay), loss=ContrastiveLoss(margin), jit_compile=jit_compile)
    return model
