"""Compiling models the one way emotf trains them (shared by training and the search spaces)."""

from __future__ import annotations

import keras

from emotf.evaluation.metrics import UnweightedAccuracy
from emotf.models.losses import ContrastiveLoss


def optimizer(lr: float, weight_decay: float) -> keras.optimizers.Optimizer:
    """AdamW (decoupled weight decay), the paper's optimiser family."""
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay)


def compile_classifier(model: keras.Model, *, num_classes: int, lr: float, weight_decay: float,
                       jit_compile: bool) -> keras.Model:
    """Cross-entropy on the softmax output, metrics ``wa`` (accuracy) and ``ua`` (mean recall)."""
    model.compile(optimizer=optimizer(lr, weight_decay), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="wa"), UnweightedAccuracy(num_classes)],
                  jit_compile=jit_compile)
    return model


def compile_siamese(model: keras.Model, *, margin: float, lr: float, weight_decay: float,
                    jit_compile: bool) -> keras.Model:
    """The contrastive loss on the pair distances."""
    model.compile(optimizer=optimizer(lr, weight_decay), loss=ContrastiveLoss(margin), jit_compile=jit_compile)
    return model
