"""The ledger: the numbers of every finished run of the grid, kept in git (``experiments/ledger/``).

``runs/`` is not in git (models are large), so the JSON files of every finished
run (``config.json``, ``metrics.json``, ``history.json``, ``eval/*.json``; no
weights) are copied here, under the run's own path: ``runs/a/b/...`` →
``experiments/ledger/a/b/...``. The report and the plan read a run from
``runs/`` where it is, else from the ledger, so a fresh clone reports, and
resumes, the grid measured elsewhere.

The ledger knows run folders, not the grid: ``python -m experiments.run --archive``
copies every finished run folder of the grid (e.g. made by hand) here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from emotf.evaluation.summary import RunResult, read_run
from emotf.runs import NUMBERS, RunDir

LEDGER = Path("experiments/ledger")
# Table rows measured on 2026-11-24 whose run folders were lost with that machine (runs/ was not kept then);
# a row stands, marked †, until new runs cover its folds.
RECORDED = Path("experiments/recorded-2026-11-24.json")


def ledger_path(path: str | Path) -> Path:
    """Where the ledger keeps a file or folder of ``runs/``: ``runs/a/b`` -> ``experiments/ledger/a/b``."""
    return LEDGER / Path(path).relative_to("runs")


def archive(out: str | Path) -> list[Path]:
    """Copy the JSON files of the finished run folder ``out`` (under ``runs/``) into the ledger.

    Returns:
        the ledger files written; none when ``out`` is not a finished run.
    """
    run = RunDir(out)
    if not run.is_finished:
        return []
    written = []
    for src in [run.path / f for f in NUMBERS] + sorted(run.eval_dir.glob("*.json")):
        if src.is_file():
            dst = ledger_path(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    return written


def archive_plan(plan: Sequence) -> int:
    """Archive every finished run folder of the plan's cells; returns how many files were written."""
    return sum(len(archive(c.out(f))) for c in plan for f in c.folds)


def fold_result(cell, fold: int, root: Path = Path(".")) -> RunResult | None:
    """One finished fold of the row, from ``runs/`` where it is there, else from the ledger; None if neither."""
    return read_run(root / cell.out(fold)) or read_run(root / ledger_path(cell.out(fold)))


def cell_results(cell, root: Path = Path(".")) -> list[RunResult]:
    """The row's finished folds, each from ``runs/`` where it is there, else from the ledger."""
    found = (fold_result(cell, f, root) for f in cell.folds)
    return [r for r in found if r is not None]


def read_recorded(root: Path = Path(".")) -> dict[str, list[dict[str, str]]]:
    """The recorded rows by block name (none where the file is absent)."""
    path = root / RECORDED
    return json.loads(path.read_text())["blocks"] if path.is_file() else {}

