"""Evaluation metrics: WA, UA (macro recall), macro-F1 and the confusion matrix.

WA (weighted accuracy) is plain accuracy, dominated by the large classes; UA
(unweighted accuracy) is the mean of the per-class recalls, so every emotion
counts the same. Papers disagree on which they print; emotf always gives both.

These score finished predictions (numpy); the Keras metrics that training compiles with are
`emotf.models.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
