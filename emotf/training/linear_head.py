"""The frozen encoder's head fitted as a regularised linear classifier on cached pooled states (``--head-fit linear``).

With the encoder frozen, the pooled statistics of an utterance (``layer_stats``: every layer's mean ‖ std over
its tokens) never change, so each utterance is encoded once, whole and as it is, and the head is fitted on those
features. The augmentations come in as ``views``: that many passes of the training stream (its random 3-s crops,
speed, gain, tilt and noise; no mixup, whose soft labels a cache of single utterances cannot hold) are encoded
once more and added to the fitted rows:

    pooled states (n, 3840) → standardised with the training speakers' mean and variance (the model's
    ``stats_norm`` batch norm, its moving statistics set to them) → softmax regression (``head_logits``),
    class-balanced, L2-penalised with strength 1 / C, fitted to convergence (L-BFGS)

C is chosen from ``C_GRID`` on validation UA (the test speakers are not seen), then by default the chosen C is
fitted again on the training and validation speakers together (``refit``); the validation figures reported are
those of the fit on the training speakers alone. The result is the whole Keras model with these weights: it
saves, exports, predicts and speaker-adapts as a streamed-trained one does. docs/results.md measures both ways
on the same folds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emotf.models.adaptation import FEATURES, NORM

log = logging.getLogger("emotf")

C_GRID = (0.01, 0.03, 0.1, 0.3)  # inverse L2 strength, chosen on validation UA (0.01-0.3 won on RAVDESS folds)
LOGITS = "head_logits"


def check_model(model) -> None:
    """The head must be the pooled statistics, their batch norm and one linear layer to the classes."""
    names = {layer.name for layer in model.layers}
    hidden = "head_fc" in names
    if not {FEATURES, NORM, LOGITS} <= names or hidden:
        raise ValueError(f"{model.name}: --head-fit linear fits a linear head on the pooled statistics "
                         f"(whisper_tiny's 'stats' head with fc_units 0); this model has "
                         f"{'a hidden layer' if hidden else 'another head'}")
    if any(w.trainable for layer in model.layers if layer.name not in (NORM, LOGITS, "stats_dropout")
           for w in layer.weights):
        raise ValueError(f"{model.name}: --head-fit linear needs the encoder frozen (finetune_blocks 0): fine-tuned "
                         f"blocks change the pooled states every step, so they cannot be cached")


def pooled(features, dataset) -> dict[str, np.ndarray]:
    """The pooled states of every record of ``dataset`` (an ``eval_dataset(..., with_meta=True)`` pass).

    Returns:
        {"x": (n, features) float64, "labels": (n,) int, "utt_id": (n,) str, "clip": (n,) int}
    """
    from emotf.evaluation import scoring

    out = scoring.predict_records(features, dataset)  # its "probs" are here the features model's output
    out["x"] = out.pop("probs").astype(np.float64)
    return out


def fit_softmax(z: np.ndarray, y: np.ndarray, num_classes: int, c: float, *,
                max_iter: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression with an L2 penalty on the weights (not the bias).

    Minimises Σ_i w_{y_i} · CE_i + ||W||² / (2c), w_k = n / (classes · n_k) (scikit-learn's
    ``LogisticRegression(C=c, class_weight="balanced")``), by L-BFGS from zero: a convex problem, so the
    result does not depend on a seed.

    Args:
        z: (n, d) standardised features.
        y: (n,) class indices.

    Returns:
        (W (d, classes), b (classes,)).
    """
    from scipy.optimize import minimize

    n, d = z.shape
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weight = (n / (num_classes * np.maximum(counts, 1)))[y]
    onehot = np.eye(num_classes)[y]

    def loss(theta):
        w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        value = -(weight * (onehot * logp).sum(axis=1)).sum() + (w * w).sum() / (2 * c)
        delta = (np.exp(logp) - onehot) * weight[:, None]
        grad = np.concatenate([(z.T @ delta + w / c).ravel(), delta.sum(axis=0)])
        return value, grad

    res = minimize(loss, np.zeros(d * num_classes + num_classes), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter})
    return res.x[:d * num_classes].reshape(d, num_classes), res.x[d * num_classes:]


def _probs(z: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    logits = z @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def views_of(features, exp, units, views: int) -> dict[str, np.ndarray]:
    """The pooled states of ``views`` passes of the training stream over ``units`` (augmented crops, no mixup)."""
    import dataclasses

    from emotf.data import pipeline

    cfg = dataclasses.replace(exp.pipeline, augment=tuple(a for a in exp.pipeline.augment if a != "mixup"))
    steps = views * pipeline.steps(exp.info, units, cfg)
    xs, labels = [], []
    for x, y in pipeline.train_dataset(exp.info, units, cfg).take(steps):
        xs.append(np.asarray(features(x, training=False), np.float64))
        labels.append(y.numpy())
    return {"x": np.concatenate(xs), "labels": np.concatenate(labels)}


def fit(model, exp, *, refit: bool = True, views: int = 0, grid: tuple[float, ...] = C_GRID) -> dict[str, Any]:
    """Fit ``model``'s head (in place) on the experiment's training speakers; choose C on its validation speakers.

    Args:
        model: a frozen whisper_tiny with the linear "stats" head (`check_model`).
        exp: the `emotf.training.experiment.Experiment` (records, split, pipeline).
        refit: fit the chosen C again on training + validation speakers.
        views: augmented passes of the training stream added to the whole utterances (`views_of`); with
            ``refit``, as many of the validation speakers' too. C is chosen on the clean validation utterances.

    Returns:
        {"grid": [{"C", "val_ua"}], "C": chosen, "refit": bool, "views": int, "validation": the chosen fit's
        validation score (`emotf.evaluation.scoring.score`, of the fit on the training speakers), "fitted_rows",
        "seconds"}.
    """
    import time

    from emotf.evaluation import scoring
    from emotf.models.adaptation import split

    check_model(model)
    t0 = time.perf_counter()
    features, _ = split(model)
    train = pooled(features, exp.eval_dataset("train", with_meta=True))
    val = pooled(features, exp.eval_dataset("val", with_meta=True))
    rows = {"x": train["x"], "labels": train["labels"]}  # what the head is fitted on
    if views:
        extra = views_of(features, exp, exp.split.train, views)
        rows = {k: np.concatenate([rows[k], extra[k]]) for k in rows}
    eps = float(model.get_layer(NORM).epsilon)  # the batch norm divides by sqrt(var + eps): the fit does too
    num_classes = len(exp.class_names)
    mean, var = rows["x"].mean(axis=0), rows["x"].var(axis=0)
    ztr, zval = (rows["x"] - mean) / np.sqrt(var + eps), (val["x"] - mean) / np.sqrt(var + eps)
    tried = []
    for c in grid:
        w, b = fit_softmax(ztr, rows["labels"], num_classes, c)
        pred = {"probs": _probs(zval, w, b).astype(np.float32), "labels": val["labels"], "utt_id": val["utt_id"],
                "clip": val["clip"]}
        score = scoring.score(pred, exp.class_names)
        tried.append({"C": c, "val_ua": float(score["ua"]), "fit": (w, b), "score": score})
        log.info("linear head: C %g, validation UA %.3f", c, tried[-1]["val_ua"])
    best = max(tried, key=lambda t: t["val_ua"])  # the first of equals: the strongest penalty
    if refit:
        parts = [rows, val] + ([views_of(features, exp, exp.split.val, views)] if views else [])
        both, labels = np.concatenate([p["x"] for p in parts]), np.concatenate([p["labels"] for p in parts])
        mean, var = both.mean(axis=0), both.var(axis=0)
        w, b = fit_softmax((both - mean) / np.sqrt(var + eps), labels, num_classes, best["C"])
    else:
        w, b = best["fit"]
        labels = rows["labels"]
    _set_head(model, mean, var, w, b)
    seconds = time.perf_counter() - t0
    log.info("linear head: C %g chosen on validation (UA %.3f)%s; %.0f s", best["C"], best["val_ua"],
             ", refitted on training + validation speakers" if refit else "", seconds)
    return {"grid": [{"C": t["C"], "val_ua": t["val_ua"]} for t in tried], "C": best["C"], "refit": refit,
            "views": views, "validation": best["score"], "fitted_rows": int(len(labels)),
            "seconds": round(seconds, 1)}


def _set_head(model, mean, var, w, b) -> None:
    """The batch norm standardises with (mean, var) exactly (gamma 1, beta 0); the logits layer is (w, b)."""
    norm = model.get_layer(NORM)
    values = {"gamma": np.ones_like(mean), "beta": np.zeros_like(mean), "moving_mean": mean, "moving_variance": var}
    norm.set_weights([values[v.name.split("/")[-1]].astype(np.float32) for v in norm.weights])
    model.get_layer(LOGITS).set_weights([w.astype(np.float32), b.astype(np.float32)])
