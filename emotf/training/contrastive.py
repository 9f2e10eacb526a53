"""Contrastive pre-training of the ``av`` model's two encoders, as training and the ``av`` search both do it.

The encoders are trained as a siamese pair (`emotf.models.build_siamese`) with
the contrastive loss on in-batch pairs (`emotf.data.pipeline.sample_pairs`):
each clip's audio with its own video, a video of another emotion (hard) and
another clip of the same emotion (super-hard). The ``av`` model is then
fine-tuned from the pre-trained encoders.
"""

from __future__ import annotations

from typing import Any

from emotf.config import TrainConfig


def pair_fractions(cfg: TrainConfig) -> dict[str, float]:
    """The shares of each batch given a hard and a super-hard negative."""
    return {"hard": cfg.hard_fraction, "super_hard": cfg.super_hard_fraction}


def siamese(encoders, input_shape, *, margin: float, lr: float, weight_decay: float, jit_compile: bool):
    """The compiled siamese graph over ``encoders`` (shared with the ``av`` model, not copied)."""
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf import models
    from emotf.training.objectives import compile_siamese

    graph = models.build_siamese(input_shape, encoders=encoders)
    return compile_siamese(graph, margin=margin, lr=lr, weight_decay=weight_decay, jit_compile=jit_compile)


def pair_streams(exp, cfg: TrainConfig) -> dict[str, Any]:
    """The pre-training data of an `emotf.training.experiment.Experiment`.

    Returns:
        {"train": endless pair batches of the training speakers (whole batches only),
        "val": one pass over the validation speakers' pairs, "steps": batches per epoch}.
    """
    pairs = pair_fractions(cfg)
    return {"train": exp.train_dataset(pairs=pairs, drop_remainder=True),
            "val": exp.eval_dataset("val", pairs=pairs),
            "steps": exp.steps_per_epoch(cfg.max_steps_per_epoch, drop_remainder=True)}
