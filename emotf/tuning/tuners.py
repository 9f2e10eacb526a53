"""The KerasTuner tuners emotf searches with (with per-trial bookkeeping), and a search's results table.

The objective is validation UA on the validation speakers of one
speaker-independent split; the test speakers are never read during a search.
The search lives in ``OUT/`` (``overwrite`` is an explicit choice): run the
same command again and it continues, keeping every finished trial (an
interrupted trial restarts).
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import psutil

from emotf.tuning.hypermodels import OBJECTIVE, EmotionHyperModel

log = logging.getLogger("emotf")
TUNERS = ("hyperband", "bayesian", "random")


class ProcessRecycle(Exception):
    """Raised before a new trial once a process has run its ``trials_per_process``: the search
    is saved and continues in a fresh process (python -m emotf.tune does that)."""


class _TrialBookkeeping:
    """Mixin for the tuners: wall time, parameter count and the process's resident memory after
    every trial, in ``trial_*/emotf.json``; and the end of a process after ``trials_per_process``
    trials (0: never).

    Why processes end: with the TensorFlow backend every ``fit`` leaves its traced train
    function behind in the TF runtime, ``clear_session`` and ``gc`` notwithstanding (about
    10 MB per trial for a small CNN, 40 MB with XLA; keras-team/keras#17458), so only a
    new process returns that memory.
    """

    trials_per_process = 0
    _emotf_trials_here = 0

    def pre_create_trial(self):
        if self.trials_per_process and self._emotf_trials_here >= self.trials_per_process:
            max_trials = self.oracle.max_trials
            if not (max_trials and len(self.oracle.trials) >= max_trials):  # no new process for nothing
                raise ProcessRecycle(f"{self._emotf_trials_here} trials ran in this process")
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._emotf_t0 = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        seconds = time.perf_counter() - getattr(self, "_emotf_t0", time.perf_counter())
        params = getattr(self.hypermodel, "last_params", None)
        keras.backend.clear_session()
        gc.collect()
        path = Path(self.get_trial_dir(trial.trial_id)) / "emotf.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seconds": seconds, "params": params, "rss_mb": _rss_mb(),
                                    "tuner_id": getattr(self, "tuner_id", None)}))
        super().on_trial_end(trial)
        self._emotf_trials_here += 1


_CLASSES = {
    "hyperband": type("Hyperband", (_TrialBookkeeping, keras_tuner.Hyperband), {}),
    "bayesian": type("BayesianOptimization", (_TrialBookkeeping, keras_tuner.BayesianOptimization), {}),
    "random": type("RandomSearch", (_TrialBookkeeping, keras_tuner.RandomSearch), {}),
}


def _rss_mb() -> float | None:
    try:
        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # psutil unavailable: memory is simply not reported
        return None


def make_tuner(kind: str, hypermodel: EmotionHyperModel, directory: str | Path, *, max_trials: int = 10,
               max_epochs: int = 10, executions_per_trial: int = 1, overwrite: bool = False, seed: int = 0,
               distribution_strategy=None, factor: int = 3, trials_per_process: int = 0) -> keras_tuner.Tuner:
    """A tuner whose project is ``directory/search``.

    Args:
        kind: "hyperband" (``max_epochs`` and ``factor`` set its brackets; it
            decides the number of trials), "bayesian" or "random" (``max_trials``).
        overwrite: start afresh, deleting the project; otherwise a project found
            there is reloaded and continued.
        distribution_strategy: a ``tf.distribute`` strategy for each trial.
        trials_per_process: after this many trials ``search`` raises ProcessRecycle
            instead of starting another (0: never); the caller continues in a new process.
    """
    if kind not in TUNERS:
        raise ValueError(f"tuner must be one of {list(TUNERS)}. Received: {kind!r}")
    common = dict(objective=OBJECTIVE, seed=seed, directory=str(directory), project_name="search",
                  overwrite=overwrite, executions_per_trial=executions_per_trial,
                  distribution_strategy=distribution_strategy, max_consecutive_failed_trials=3)
    if kind == "hyperband":
        tuner = _CLASSES[kind](hypermodel, max_epochs=max_epochs, factor=factor, **common)
    else:
        tuner = _CLASSES[kind](hypermodel, max_trials=max_trials, **common)
    tuner.trials_per_process = trials_per_process
    return tuner


def results_table(tuner: keras_tuner.Tuner) -> list[dict[str, Any]]:
    """Completed trials, best first: id, hyperparameter values, validation UA and WA at the
    best-UA epoch, the epoch, parameters and seconds."""
    rows = []
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    for t in trials:
        ua = t.metrics.get_history("val_ua") if t.metrics.exists("val_ua") else []
        wa = dict((o.step, o.value) for o in t.metrics.get_history("val_wa")) if t.metrics.exists("val_wa") else {}
        best = max(ua, key=lambda o: _first(o.value)) if ua else None
        side = Path(tuner.get_trial_dir(t.trial_id)) / "emotf.json"
        extra = json.loads(side.read_text()) if side.is_file() else {}
        rows.append({
            "trial": t.trial_id, "val_ua": float(t.score),
            "val_wa": _first(wa.get(best.step)) if best is not None and best.step in wa else math.nan,
            "epoch": (best.step + 1) if best is not None else None,
            "params": extra.get("params"), "seconds": extra.get("seconds"),
            # Hyperband's bookkeeping ("tuner/epochs", ...) is not a hyperparameter of the model.
            "hparams": {k: v for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")},
        })
    rows.sort(key=lambda r: -r["val_ua"])
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
    return rows


def _first(v):
    if isinstance(v, Sequence) and not isinstance(v, str):
        return float(v[0])
    return float(v) if v is not None else math.nan


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ranked table in Markdown (one column per hyperparameter)."""
    names = sorted({k for r in rows for k in r["hparams"]})
    head = ["rank", "trial", *names, "val UA", "val WA", "epoch", "params", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [str(r["rank"]), r["trial"], *[_fmt(r["hparams"].get(n)) for n in names], f"{r['val_ua']:.4f}",
                 _fmt(r["val_wa"], ".4f"), _fmt(r["epoch"]), _fmt(r["params"]), _fmt(r["seconds"], ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    names = sorted({k for r in rows for k in r["hparams"]})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "trial", *names, "val_ua", "val_wa", "epoch", "params", "seconds"])
        for r in rows:
            w.writerow([r["rank"], r["trial"], *[r["hparams"].get(n, "") for n in names], r["val_ua"], r["val_wa"],
                        r["epoch"], r["params"], r["seconds"]])


def _fmt(v, spec: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and not spec:
        return f"{v:g}"
    return format(v, spec) if spec else str(v)
