"""Predictions over records and the figures computed from them, at clip and utterance level.

A record is one image (a whole utterance, or one 3-s clip of it). Clip-level
figures score every record; utterance-level figures average the class
probabilities of an utterance's clips first, which is what a user of
``emotf.predict`` gets for a whole file.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from emotf.evaluation import metrics


def predict_records(model, dataset) -> dict[str, np.ndarray]:
    """Run a model over an ``emotf.data.pipeline.eval_dataset(..., with_meta=True)``.

    Returns:
        {"probs": (n, classes) float32, "labels": (n,) int, "utt_id": (n,) str, "clip": (n,) int}.
    """
    probs, labels, utts, clips = [], [], [], []
    for x, y, meta in dataset:
        # A direct call, not predict_on_batch: under a tf.distribute strategy that one
        # returns every replica's copy of the batch.
        probs.append(np.asarray(model(x, training=False), dtype=np.float32))
        labels.append(y.numpy())
        utts += [u.decode() for u in meta["utt_id"].numpy()]
        clips.append(meta["clip"].numpy())
    if not probs:
        raise ValueError("no records to evaluate (no record carries one of the model's classes)")
    return {"probs": np.concatenate(probs), "labels": np.concatenate(labels), "utt_id": np.array(utts),
            "clip": np.concatenate(clips)}


def utterance_level(pred: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean clip probabilities per utterance: ((utterances, classes) probs, (utterances,) labels)."""
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, u in enumerate(pred["utt_id"]):
        groups[u].append(i)
    keys = sorted(groups)
    probs = np.stack([pred["probs"][groups[k]].mean(axis=0) for k in keys])
    labels = np.array([pred["labels"][groups[k][0]] for k in keys])
    return probs, labels


def score(pred: dict[str, np.ndarray], class_names: Sequence[str], allowed: Sequence[bool] | None = None) -> dict:
    """Clip- and utterance-level ``metrics.report`` of predictions.

    Args:
        allowed: per class, whether it may be predicted; e.g. in a cross-corpus
            test, only the classes the two corpora share. None: all.

    Returns:
        The clip-level report with an ``"utterance"`` report nested inside.
    """
    mask = np.ones(len(class_names), bool) if allowed is None else np.asarray(allowed, bool)

    def argmax(p):
        return np.where(mask[None, :], p, -np.inf).argmax(axis=1)

    out = metrics.report(pred["labels"], argmax(pred["probs"]), class_names)
    up, ul = utterance_level(pred)
    out["utterance"] = metrics.report(ul, argmax(up), class_names)
    out["predicted_classes"] = [n for n, m in zip(class_names, mask, strict=True) if m]
    return out


def summary_line(name: str, rep: dict) -> str:
    u = rep["utterance"]
    top = rep["most_predicted"]
    return (f"{name}: WA {rep['wa']:.3f}  UA {rep['ua']:.3f}  F1 {rep['macro_f1']:.3f}  (n={rep['n']} records; "
            f"per utterance WA {u['wa']:.3f} UA {u['ua']:.3f}, n={u['n']}); most predicted: {top['class']} "
            f"{top['share']:.0%}")
