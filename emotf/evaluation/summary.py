"""Summaries over finished runs: mean ± std over folds, pooled confusion matrices, Markdown tables.

``python -m emotf.summarize RUN...`` prints them for any runs of yours; the
results grid of this repository (``experiments/``) builds its tables from the
same functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotf.runs import RunDir


@dataclasses.dataclass
class RunResult:
    """The numbers of one finished run folder."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    evals: dict[str, dict[str, Any]]

    @property
    def fold(self) -> int:
        return int(self.metrics["split"]["fold"])


def read_run(path: str | Path) -> RunResult | None:
    """A finished run (metrics.json present), or None."""
    run = RunDir(path)
    if not run.is_finished:
        return None
    return RunResult(run.path, run.train_config, run.metrics(), run.evals())


def mean_std(values: Sequence[float]) -> str:
    """``0.612 ± 0.034`` (sample std over folds), ``0.612`` for one value, ``–`` for none."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def pooled_confusion(results: Sequence[RunResult], part: str = "test") -> np.ndarray:
    """The confusion matrices of the folds summed (every test speaker once, across folds)."""
    return np.sum([np.asarray(r.metrics[part]["confusion_matrix"]) for r in results], axis=0)


def summary_rows(results: Sequence[RunResult]) -> dict[str, str]:
    """Mean ± std over the runs of test WA, UA, macro-F1 and validation UA, and the per-fold UAs."""
    test = [r.metrics["test"] for r in results]
    return {
        "folds": ",".join(str(r.fold) for r in results) or "none yet",
        "test WA": mean_std([t["wa"] for t in test]),
        "test UA": mean_std([t["ua"] for t in test]),
        "macro-F1": mean_std([t["macro_f1"] for t in test]),
        "val UA": mean_std([r.metrics["validation"]["ua"] for r in results]),
        "UA per fold": " ".join(f"{t['ua']:.2f}" for t in test),
        "selected epoch": " ".join(str(r.metrics["selected_epoch"]) for r in results),
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def summarize(paths: Sequence[str | Path]) -> str:
    """One row per finished run and their mean ± std, as a Markdown table.

    Raises:
        ValueError: none of ``paths`` is a finished run.
    """
    res = [r for r in map(read_run, paths) if r is not None]
    if not res:
        raise ValueError(f"none of {list(map(str, paths))} is a finished run (no metrics.json)")
    return markdown_table([{"run": str(r.path), **summary_rows([r])} for r in res]
                          + [{"run": f"mean ± std ({len(res)})", **summary_rows(res)}])
