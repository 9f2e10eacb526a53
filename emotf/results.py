"""``python -m emotf.results``: the measured results grid, run resumably and summarised over folds.

    python -m emotf.results plan                    # every run of the grid, done or not, with its command
    python -m emotf.results run [--section grid]    # train (and cross-evaluate) what is missing, in order
    python -m emotf.results report --write docs/results.md
    python -m emotf.results summarize runs/ravdess-c4-f*/cnn_rnn   # any runs of yours: mean ± std

The grid (``PLAN``) is data: one ``Cell`` per table row (architecture, class set,
records variant, folds, extra flags). ``run`` trains each missing fold with
``python -m emotf.fit`` in its own process (a finished run folder is skipped by
``emotf.fit`` itself, a killed one resumes), cheapest-first across cells so every
row gets its first fold before any row gets its second, then scores the finished
models on the cross-corpus records. ``report`` reads only what the run folders
hold (``metrics.json``, ``eval/*.json``), so every number in the tables comes from
a run, with the command that made it; rows with no finished fold say so.

``runs/`` is not in git (models are large), so the numbers of every finished run
(its JSON files, no weights) are also copied into the ledger ``docs/results/runs/``,
which is: ``run`` does it after each job, ``archive`` for runs made by hand. The
report and ``plan`` read a run from ``runs/`` where it is, else from the ledger, so a
fresh clone reports, and resumes, the grid measured elsewhere. Rows measured before
the ledger existed, whose run folders were lost, are kept as recorded
(``docs/results/recorded-2026-11-24.json``, marked † in the tables) until new runs
cover their folds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotf.preprocess import records_folder

log = logging.getLogger("emotf")

FOLDS6 = (0, 1, 2, 3, 4, 5)
SECTIONS = ("grid", "variants", "level", "tuned", "av", "seeds")
SEEDS = (0, 1, 2)  # the seed study's seeds; 0 is emotf.fit's default
# EmoDB's and RAVDESS's median speech levels differ by 19.5 dB (-17.1 against -36.6 dBFS, both measured with
# python -m emotf.preprocess --measure-level); the gain brings EmoDB's images to RAVDESS's level.
EMODB_GAIN = f"records/emodb/{records_folder('ds2', gain_db=-19.5)}"
LEVEL_DS2 = records_folder("ds2", level_dbfs=-35)
CLASS_LABEL = {"all": "8", "4": "4", "3": "3"}
TUNED_HPARAMS = "tuning/best/cnn_rnn-ravdess-ds2-c4-f0.json"
# The numbers of every finished run, kept in git: runs/<name>/... -> docs/results/runs/<name>/...
LEDGER = Path("docs/results/runs")
LEDGER_FILES = ("config.json", "metrics.json", "history.json")
# Table rows measured on 2026-11-24 whose run folders were lost with that machine (runs/ was not kept then).
RECORDED = Path("docs/results/recorded-2026-11-24.json")
RECORDED_NOTE = ("† recorded on 2026-11-24 from run folders that are lost (runs/ was not kept in git then; "
                 "see the Status above); `python -m emotf.results run` re-measures the row, which shows the "
                 "new runs once they cover the same folds.")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One row of a results table: an architecture trained on one records variant and class set, over folds.

    Attributes:
        section: the table the row belongs to ("grid", "variants", "level", "tuned", "av", "seeds").
        arch: ``emotf.fit --arch``.
        classes: ``--classes`` ("all", "4" or "3").
        corpus, variant: the records, ``records/<corpus>/<variant>``.
        folds: test folds to run, in order.
        split: ``--split``.
        epochs: ``--epochs`` (0: the paper's number for the arch).
        args: further ``emotf.fit`` flags, e.g. ``("--hparams", path)``.
        tag: suffix of the run folder and of the row's label, for rows that differ only in ``args``.
        cross: records folders every finished fold model is also scored on (``emotf.evaluate``).
    """

    section: str
    arch: str
    classes: str = "4"
    corpus: str = "ravdess"
    variant: str = "ds2"
    folds: tuple[int, ...] = FOLDS6
    split: str = "speaker-folds"
    epochs: int = 8
    args: tuple[str, ...] = ()
    tag: str = ""
    cross: tuple[str, ...] = ()

    @property
    def records(self) -> str:
        return f"records/{self.corpus}/{self.variant}"

    @property
    def label(self) -> str:
        return self.arch + (f" ({self.tag})" if self.tag else "")

    def out(self, fold: int) -> str:
        variant = "" if self.variant == "ds2" else f"-{self.variant}"
        classes = f"-c{CLASS_LABEL[self.classes]}" if self.corpus == "ravdess" else ""
        return f"runs/{self.corpus}{variant}{classes}-f{fold}/{self.arch}" + (f"-{self.tag}" if self.tag else "")

    def fit_argv(self, fold: int) -> list[str]:
        return ["python", "-m", "emotf.fit", "--arch", self.arch, "--records", self.records, "--classes",
                self.classes, "--split", self.split, "--fold", str(fold), "--epochs", str(self.epochs),
                *self.args, "--out", self.out(fold)]

    def out_pattern(self) -> str:
        """The run folder of every fold, with the fold as ``F``."""
        return self.out(0).replace("-f0/", "-fF/")

    def command(self) -> str:
        """The fit command of every fold, with the fold as ``F``."""
        argv = self.fit_argv(0)
        argv[argv.index("--fold") + 1] = "F"
        argv[-1] = self.out_pattern()
        return " ".join(argv)


def _grid() -> tuple[Cell, ...]:
    emodb = ("records/emodb/ds2",)
    return (
        # The most important rows: the paper's model and the time-aware one, 4 and 8 classes, every fold.
        Cell("grid", "cnn_rnn", "4", cross=(*emodb, EMODB_GAIN)), Cell("grid", "crnn", "4", cross=emodb),
        Cell("grid", "cnn_rnn", "all", cross=emodb), Cell("grid", "crnn", "all", cross=emodb),
        # Loudness taken out of the features (every utterance at one speech level), for cross-corpus transfer.
        Cell("level", "cnn_rnn", "4", variant=LEVEL_DS2, cross=(f"records/emodb/{LEVEL_DS2}",)),
        # The synthetic AV ablations are small (about 110 records) and answer a different question.
        Cell("av", "av", "all", "synth_iemocap", folds=(0,), split="auto", epochs=0),
        Cell("av", "av", "all", "synth_iemocap", folds=(0,), split="auto", epochs=0,
             args=("--pretrain-epochs", "0"), tag="no-pretrain"),
        Cell("av", "cnn_rnn", "all", "synth_iemocap", folds=(0,), split="auto", epochs=15),
        Cell("av", "video_3dcnn", "all", "synth_iemocap", folds=(0,), split="auto", epochs=0),
        # The paper's data variants for its model (ds2 is the grid's row).
        Cell("variants", "cnn_rnn", "4", variant="ds1", folds=(0, 1)),
        Cell("variants", "cnn_rnn", "4", variant="ds3", folds=(0, 1)),
        Cell("variants", "cnn_rnn", "4", variant="ds4", folds=(0, 1)),
        # The rest of the architecture x class-set grid, on fewer folds.
        Cell("grid", "cnn_rnn", "3", folds=(0, 1)), Cell("grid", "crnn", "3", folds=(0, 1)),
        Cell("grid", "cnn", "4", folds=(0, 1)), Cell("grid", "cnn_lstm", "4", folds=(0, 1)),
        Cell("grid", "cnn", "all", folds=(0, 1)), Cell("grid", "cnn_lstm", "all", folds=(0, 1)),
        Cell("grid", "cnn", "3", folds=(0,)), Cell("grid", "cnn_lstm", "3", folds=(0,)),
        # The search's best configuration against the defaults (the grid's cnn_rnn row), same folds. The search
        # selected on fold 0's validation actors, who are fold 1's test actors: only fold 0 is a clean test.
        Cell("tuned", "cnn_rnn", "4", folds=(0, 1, 2), args=("--hparams", TUNED_HPARAMS), tag="tuned"),
        # How far one fold's numbers move with the seed alone (weights, shuffles): the yardstick for
        # differences between rows measured on one or two folds. Seed 0 is the grid's or variants' run.
        *(Cell("seeds", "cnn_rnn", "4", variant=v, folds=(0,), args=("--seed", str(s)), tag=f"seed{s}")
          for v in ("ds2", "ds3") for s in SEEDS[1:]),
    )


PLAN: tuple[Cell, ...] = _grid()


@dataclasses.dataclass(frozen=True)
class Job:
    cell: Cell
    fold: int
    kind: str  # "fit" or "eval"
    records: str = ""

    @property
    def out(self) -> Path:
        return Path(self.cell.out(self.fold))

    @property
    def done_file(self) -> Path:
        if self.kind == "fit":
            return self.out / "metrics.json"
        return self.out / "eval" / f"{eval_stem(self.records)}.json"

    def is_done(self) -> bool:
        """Its result is in ``runs/`` or in the ledger."""
        return self.done_file.is_file() or ledger_path(self.done_file).is_file()

    def argv(self) -> list[str]:
        if self.kind == "fit":
            return self.cell.fit_argv(self.fold)
        return ["python", "-m", "emotf.evaluate", str(self.out), "--records", self.records]


def eval_stem(records: str) -> str:
    """The name ``emotf.evaluate`` gives a cross-corpus report of ``records/<corpus>/<variant>``."""
    corpus, variant = Path(records).parts[-2:]
    return f"{corpus}-{variant}-all"


def jobs(plan: Sequence[Cell], sections: Iterable[str] = ()) -> list[Job]:
    """Every run of the plan, breadth-first: the i-th fold of every row before the (i+1)-th of any.

    A row's cross-corpus evaluation follows its fold's training.
    """
    cells = [c for c in plan if not sections or c.section in set(sections)]
    out: list[Job] = []
    for rank in range(max((len(c.folds) for c in cells), default=0)):
        for c in cells:
            if rank < len(c.folds):
                fold = c.folds[rank]
                out.append(Job(c, fold, "fit"))
                out.extend(Job(c, fold, "eval", r) for r in c.cross)
    return out


def ledger_path(path: str | Path) -> Path:
    """Where the ledger keeps a file or folder of ``runs/``: ``runs/a/b`` -> ``docs/results/runs/a/b``."""
    return LEDGER / Path(path).relative_to("runs")


def archive(out: str | Path) -> list[Path]:
    """Copy the JSON files of the finished run folder ``out`` (under ``runs/``) into the ledger.

    Returns:
        the ledger files written; none when ``out`` is not a finished run.
    """
    out = Path(out)
    if not (out / "metrics.json").is_file():
        return []
    written = []
    for src in [out / f for f in LEDGER_FILES] + sorted((out / "eval").glob("*.json")):
        if src.is_file():
            dst = ledger_path(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    return written


def archive_plan(plan: Sequence[Cell]) -> int:
    """Archive every finished run folder of the plan; returns how many files were written."""
    return sum(len(archive(c.out(f))) for c in plan for f in c.folds)


def run(plan: Sequence[Cell], sections: Iterable[str] = (), *, max_jobs: int = 0, dry_run: bool = False) -> int:
    """Run the missing jobs of the plan in order, each in its own process; returns how many ran.

    Cross-corpus evaluations of models already trained run before any training. A job
    whose result is in the ledger is done; a cross-corpus evaluation whose model is
    not on disk (the fold's numbers came from the ledger) retrains that fold first.
    Every finished job is archived into the ledger.

    A separate process per run keeps memory flat (TensorFlow keeps every traced
    train function for the life of a process) and lets a kill lose one run at most,
    which ``emotf.fit`` resumes.

    Raises:
        subprocess.CalledProcessError: a run failed (the grid stops there; its log says why).
    """
    done = 0
    order = jobs(plan, sections)
    # Scoring a finished model takes seconds, training one many minutes: ready evaluations go first.
    ready = [j for j in order if j.kind == "eval" and (j.out / "metrics.json").is_file()]
    for job in ready + [j for j in order if j not in ready]:
        if job.is_done():
            continue
        if max_jobs and done >= max_jobs:
            break
        steps = [job]
        if job.kind == "eval" and not (job.out / "metrics.json").is_file():
            steps.insert(0, Job(job.cell, job.fold, "fit"))
        for step in steps:
            argv = step.argv()
            print("$ " + " ".join(argv), flush=True)
            if not dry_run:
                subprocess.run([sys.executable, *argv[1:], *(["--quiet"] if step.kind == "fit" else [])],
                               check=True)
                archive(step.out)
        done += 1
    return done


# --------------------------------------------------------------------------------------------- reading runs

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
    path = Path(path)
    if not (path / "metrics.json").is_file():
        return None
    evals = {p.stem: json.loads(p.read_text()) for p in sorted((path / "eval").glob("*.json"))}
    return RunResult(path, json.loads((path / "config.json").read_text())["config"],
                     json.loads((path / "metrics.json").read_text()), evals)


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


def fold_result(cell: Cell, fold: int, root: Path = Path(".")) -> RunResult | None:
    """One finished fold of the row, from ``runs/`` where it is there, else from the ledger; None if neither."""
    return read_run(root / cell.out(fold)) or read_run(root / ledger_path(cell.out(fold)))


def cell_results(cell: Cell, root: Path = Path(".")) -> list[RunResult]:
    """The row's finished folds, each from ``runs/`` where it is there, else from the ledger."""
    found = (fold_result(cell, f, root) for f in cell.folds)
    return [r for r in found if r is not None]


# --------------------------------------------------------------------------------- rows recorded before the ledger

def parse_markdown_table(text: str) -> list[dict[str, str]]:
    """The rows of the first pipe table in ``text``, as ``{header: cell}``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return [dict(zip(split[0], row, strict=False)) for row in split[2:]]


def read_recorded(root: Path = Path(".")) -> dict[str, list[dict[str, str]]]:
    """The recorded rows by block name (none where the file is absent)."""
    path = root / RECORDED
    return json.loads(path.read_text())["blocks"] if path.is_file() else {}


def _find_recorded(recorded: Sequence[dict[str, str]], want: dict[str, str]) -> dict[str, str] | None:
    """The first recorded row whose columns hold ``want``'s values, or None."""
    return next((r for r in recorded if all(r.get(k) == v for k, v in want.items())), None)


def _folds_of(value: str) -> set[str]:
    return {f for f in value.replace("†", "").strip().split(",") if f and f != "none yet"}


def _covers(row: dict[str, Any], old: dict[str, str]) -> bool:
    """The new row holds at least the folds (or fold models) of the recorded one."""
    if "fold models" in old:
        return int(row["fold models"]) >= int(old["fold models"])
    return _folds_of(str(row["folds"])) >= _folds_of(old["folds"])


def _prefer_recorded(rows: list[dict[str, Any]], recorded: Sequence[dict[str, str]],
                     keys: Sequence[str]) -> tuple[list[dict[str, Any]], bool]:
    """Each row, or the recorded row with the same ``keys`` (marked †) where the new one covers fewer folds."""
    out, used = [], False
    for row in rows:
        old = _find_recorded(recorded, {k: str(row[k]) for k in keys})
        if old is not None and not _covers(row, old):
            col = "fold models" if "fold models" in old else "folds"
            row, used = {**old, col: f"{old[col]} †"}, True
        out.append(row)
    return out, used


def _table(rows: list[dict[str, Any]], recorded: Sequence[dict[str, str]], keys: Sequence[str]) -> str:
    rows, used = _prefer_recorded(rows, recorded, keys)
    return markdown_table(rows) + (f"\n\n{RECORDED_NOTE}" if used else "")


# ------------------------------------------------------------------------------------------------ the report

def _grid_table(cells: Sequence[Cell], root: Path, with_variant: bool = False,
                recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for c in cells:
        res = cell_results(c, root)
        classes = CLASS_LABEL[c.classes] if c.corpus == "ravdess" or not res else len(res[0].metrics["class_names"])
        row = {"classes": classes, "arch": c.label}
        if with_variant:
            row = {"variant": c.variant, **row}
        row.update(summary_rows(res))
        row["test clips / fold"] = " ".join(str(r.metrics["test"]["n"]) for r in res)
        rows.append(row)
    # The synthetic corpus's class count comes from its runs, so its rows are known by arch alone.
    keys = ("arch",) if all(c.corpus != "ravdess" for c in cells) else ("classes", "arch")
    return _table(rows, recorded, (("variant",) if with_variant else ()) + keys)


def _commands(cells: Sequence[Cell]) -> str:
    return "\n".join(f"    {c.command()}" for c in cells)


def _cross_table(cells: Sequence[Cell], root: Path, recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for c in cells:
        for records in c.cross:
            stem = eval_stem(records)
            reps = [r.evals[stem] for r in cell_results(c, root) if stem in r.evals]
            rows.append({"trained on": f"RAVDESS {c.variant}, {CLASS_LABEL[c.classes]} classes", "arch": c.label,
                         "tested on": stem.rsplit("-", 1)[0],
                         "classes scored": ", ".join(reps[0]["predicted_classes"]) if reps else "",
                         "fold models": len(reps), "WA": mean_std([e["wa"] for e in reps]),
                         "UA": mean_std([e["ua"] for e in reps]),
                         "macro-F1": mean_std([e["macro_f1"] for e in reps]),
                         "clips": reps[0]["n"] if reps else ""})
    return _table(rows, recorded, ("trained on", "arch", "tested on"))


def _tuned_table(plan: Sequence[Cell], root: Path, recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for tuned in (c for c in plan if c.section == "tuned"):
        base = next(c for c in plan if c.section == "grid" and (c.arch, c.classes, c.variant) ==
                    (tuned.arch, tuned.classes, tuned.variant))
        t_res = {r.fold: r for r in cell_results(tuned, root)}
        b_res = {r.fold: r for r in cell_results(base, root)}
        shared = sorted(set(t_res) & set(b_res))
        for name, res in (("paper defaults", b_res), ("tuned (best_hparams.json)", t_res)):
            rows.append({"configuration": name, "arch": tuned.arch, "params": (
                f"{res[shared[0]].metrics['params']:,}" if shared else ""), **summary_rows([res[f] for f in shared])})
    return _table(rows, recorded, ("configuration",))


def _seeds_table(plan: Sequence[Cell], root: Path) -> str:
    """One row per (arch, classes, variant, fold) of the seed study: the test UA under each seed.

    Seed 0 is the run of the same fold in the grid or variants table (``emotf.fit``'s default seed).
    """
    rows = []
    study = [c for c in plan if c.section == "seeds"]
    for key in dict.fromkeys((c.arch, c.classes, c.variant, f) for c in study for f in c.folds):
        arch, classes, variant, fold = key
        base = next(c for c in plan if c.section in ("grid", "variants") and (c.arch, c.classes, c.variant) ==
                    (arch, classes, variant) and not c.tag)
        cells = [base] + [c for c in study if (c.arch, c.classes, c.variant) == (arch, classes, variant)]
        runs = [(c, fold_result(c, fold, root)) for c in cells]
        runs = [(c, r) for c, r in runs if r is not None]
        seeds = [c.args[c.args.index("--seed") + 1] if "--seed" in c.args else "0" for c, _ in runs]
        ua = [r.metrics["test"]["ua"] for _, r in runs]
        rows.append({"variant": variant, "classes": CLASS_LABEL[classes], "arch": arch, "fold": fold,
                     "seeds": " ".join(seeds) or "none yet", "test UA per seed": " ".join(f"{u:.3f}" for u in ua),
                     "test UA": mean_std(ua) if ua else "",
                     "spread (max − min)": f"{max(ua) - min(ua):.3f}" if len(ua) > 1 else "",
                     "val UA per seed": " ".join(f"{r.metrics['validation']['ua']:.3f}" for _, r in runs),
                     "selected epoch": " ".join(str(r.metrics["selected_epoch"]) for _, r in runs)})
    return markdown_table(rows)


def _recorded_for(cell: Cell, recorded: dict[str, list[dict[str, str]]]) -> dict[str, str] | None:
    """The recorded row of the cell in its own section's table, if any."""
    if cell.section == "tuned":
        want = {"configuration": "tuned (best_hparams.json)"}
    else:
        want = {"arch": cell.label}
        if cell.section != "av":
            want["classes"] = CLASS_LABEL[cell.classes]
        if cell.section in ("variants", "level"):
            want["variant"] = cell.variant
    return _find_recorded(recorded.get(cell.section, []), want)


def confusion_figures(plan: Sequence[Cell], root: Path, out_dir: Path) -> list[Path]:
    """One PNG per row with a finished fold: the test confusion matrices summed over its folds."""
    from emotf import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = read_recorded(root)
    written = []
    for c in (c for c in plan if c.section != "seeds"):  # a seed's run is one fold of a row that has its figure
        res = cell_results(c, root)
        old = _recorded_for(c, recorded)
        if not res or (old is not None and not _covers({"folds": ",".join(str(r.fold) for r in res)}, old)):
            continue  # a recorded row keeps its recorded figure
        name = f"{c.corpus}-{c.variant}-c{CLASS_LABEL[c.classes]}-{c.arch}" + (f"-{c.tag}" if c.tag else "")
        names = res[0].metrics["class_names"]
        ua = np.mean([r.metrics["test"]["ua"] for r in res])
        written.append(plots.confusion_png(
            pooled_confusion(res), names, out_dir / f"{name}.png",
            title=f"{c.label}, {c.corpus} {c.variant}, test folds {','.join(str(r.fold) for r in res)} · "
                  f"mean UA {ua:.3f}"))
    return written


def tables(plan: Sequence[Cell] = PLAN, root: Path = Path(".")) -> dict[str, str]:
    """The generated blocks of docs/results.md, by name."""
    by = {s: [c for c in plan if c.section == s] for s in SECTIONS}
    grid_ds2 = [c for c in by["grid"] if c.variant == "ds2"]
    recorded = read_recorded(root)

    def against_grid(section: str) -> str:
        """The section's rows after the grid's DS2 rows of the same architecture and classes."""
        keys = {(c.arch, c.classes) for c in by[section]}
        base = [c for c in grid_ds2 if (c.arch, c.classes) in keys]
        return (_grid_table(base + by[section], root, with_variant=True, recorded=recorded.get(section, ()))
                + "\n\nCommands:\n\n" + _commands(by[section]))

    return {
        "grid": _grid_table(grid_ds2, root, recorded=recorded.get("grid", ()))
        + "\n\nCommands:\n\n" + _commands(grid_ds2),
        "variants": against_grid("variants"),
        "level": against_grid("level"),
        "cross": _cross_table([c for c in plan if c.cross], root, recorded.get("cross", ()))
        + "\n\nCommands (per fold model F):\n\n"
        + "\n".join(f"    python -m emotf.evaluate {c.out_pattern()} --records {r}"
                    for c in plan for r in c.cross),
        "tuned": _tuned_table(plan, root, recorded.get("tuned", ())) + "\n\nCommands:\n\n" + _commands(by["tuned"]),
        "av": _grid_table(by["av"], root, recorded=recorded.get("av", ())) + "\n\nCommands:\n\n" + _commands(by["av"]),
        "seeds": _seeds_table(plan, root) + "\n\nCommands (seed 0 is the grid's or variants' run of the fold):\n\n"
        + _commands(by["seeds"]),
    }


BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?:.*?\n)?(<!-- /results:(?P=name) -->)", re.S)


def fill(text: str, blocks: dict[str, str]) -> str:
    """Replace each ``<!-- results:NAME -->…<!-- /results:NAME -->`` block of ``text`` with ``blocks[NAME]``.

    Raises:
        KeyError: a block names no table.
    """
    def repl(m: re.Match) -> str:
        return m.group(1) + blocks[m.group("name")].rstrip("\n") + "\n" + m.group(3)

    return BLOCK.sub(repl, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emotf.results", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("plan", "run"):
        s = sub.add_parser(name)
        s.add_argument("--section", action="append", default=[],
                       choices=SECTIONS)
        s.add_argument("--arch", action="append", default=[], help="only these architectures' rows")
        s.add_argument("--classes", action="append", default=[], choices=list(CLASS_LABEL),
                       help="only the rows of these class sets")
    sub.add_parser("archive", help="copy the JSON of every finished run folder of the grid into the ledger")
    sub.choices["run"].add_argument("--max-runs", type=int, default=0, help="stop after this many (0: all)")
    rep = sub.add_parser("report")
    rep.add_argument("--write", default="", help="markdown file whose results blocks are refreshed")
    rep.add_argument("--figures", default="docs/results", help="folder for the pooled confusion PNGs")
    summ = sub.add_parser("summarize")
    summ.add_argument("runs", nargs="+", help="run folders of python -m emotf.fit")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.cmd == "archive":
        print(f"{archive_plan(PLAN)} file(s) copied into {LEDGER}")
        return 0
    if args.cmd in ("plan", "run"):
        plan = [c for c in PLAN if (not args.arch or c.arch in args.arch)
                and (not args.classes or c.classes in args.classes)]
    if args.cmd == "plan":
        for job in jobs(plan, args.section):
            print(("done  " if job.is_done() else "todo  ") + " ".join(job.argv()))
        return 0
    if args.cmd == "run":
        try:
            n = run(plan, args.section, max_jobs=args.max_runs)
        except subprocess.CalledProcessError as e:
            log.error("error: %s failed with status %s", " ".join(map(str, e.cmd)), e.returncode)
            return 1
        print(f"{n} run(s) done")
        return 0
    if args.cmd == "summarize":
        res = [r for r in map(read_run, args.runs) if r is not None]
        if not res:
            log.error("error: none of %s is a finished run (no metrics.json)", args.runs)
            return 2
        print(markdown_table([{"run": str(r.path), **summary_rows([r])} for r in res]
                             + [{"run": f"mean ± std ({len(res)})", **summary_rows(res)}]))
        return 0
    blocks = tables(PLAN)
    if args.write:
        path = Path(args.write)
        path.write_text(fill(path.read_text(), blocks))
        figs = confusion_figures(PLAN, Path("."), Path(args.figures))
        print(f"{path}: tables refreshed; {len(figs)} confusion figure(s) in {args.figures}")
    else:
        for name, text in blocks.items():
            print(f"## {name}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
