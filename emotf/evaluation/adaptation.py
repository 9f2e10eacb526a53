"""Speaker adaptation at test time, without labels: each speaker's pooled features standardised with that speaker's
own statistics.

A long recording of one speaker, or an evaluation whose speakers are known, holds what a
model trained on other speakers lacks: how this speaker's voice sits in feature space.
For a model whose head starts with pooled utterance features and a batch norm (the
pretrained encoder's default ``"stats"`` head: layers ``layer_stats`` then ``stats_norm``),
the utterances of one speaker are pooled, each feature is standardised with the speaker's
own mean and deviation over those utterances, and mapped onto the training population's
statistics (the batch norm's moving mean and variance), so that the head sees every speaker
centred where the training speakers were on average. No label and no other speaker is used;
the model is not changed. A speaker with fewer than ``min_utterances`` utterances is scored
unadapted.

The headline figures of emotf are without it; reports carry both (docs/results.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras
import numpy as np

from emotf.data import pipeline
from emotf.evaluation import scoring
from emotf.evaluation.scoring import predict_records
from emotf.models.adaptation import NORM, adapt, split, supports


def predict_adapted(model: keras.Model, datasets: Mapping[str, Iterable], *, min_utterances: int = 2) -> dict:
    """`emotf.evaluation.scoring.predict_records`' output, each speaker's utterances adapted to the speaker.

    Args:
        datasets: {speaker: an ``eval_dataset(..., with_meta=True)`` of that speaker's records, at least one}.
    """
    features, head = split(model)
    norm = model.get_layer(NORM)
    parts = []
    for speaker, dataset in datasets.items():
        pred = predict_records(features, dataset)  # its "probs" are the pooled features here
        z = pred["probs"]
        if len(z) >= min_utterances:
            z = adapt(z, norm)
        parts.append({**pred, "probs": np.asarray(head(z, training=False), np.float32),
                      "speaker": np.array([speaker] * len(z))})
    if not parts:
        raise ValueError("no speakers to evaluate")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def adapted_score(model: keras.Model, info, units: Iterable[str], cfg, class_names, allowed=None) -> dict | None:
    """`emotf.evaluation.scoring.score` of the speaker-adapted predictions on the records of ``units`` (one speaker
    each), or None where the model has no head to adapt. ``cfg``: the evaluation's `PipelineConfig`."""
    if not supports(model):
        return None
    datasets = {u: pipeline.eval_dataset(info, [u], cfg, with_meta=True) for u in units
                if sum(info.count([u], cfg.class_names).values())}
    return scoring.score(predict_adapted(model, datasets), class_names, allowed)
