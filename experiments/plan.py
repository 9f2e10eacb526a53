"""The results grid as data: one `Cell` per table row of docs/results.md, and the jobs that fill it.

    python -m experiments.plan                      # every run of the grid, done or todo, with its command
    python -m experiments.plan --section grid --arch crnn --classes all

A cell is an architecture trained on one records variant and class set over
some actor folds (``python -m emotf.fit``), and optionally scored on other
corpora's records (``python -m emotf.evaluate``). `jobs` orders them
cheapest-first across cells, so every row gets its first fold before any row
gets its second. A job is done when its result is in ``runs/`` or in the ledger
(`experiments.ledger`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from emotf.evaluation.rescore import report_stem
from emotf.records.folder import folder_name
from emotf.training.rundir import RunDir
from experiments import ledger

FOLDS6 = (0, 1, 2, 3, 4, 5)
SECTIONS = ("grid", "variants", "level", "tuned", "av", "seeds")
SEEDS = (0, 1, 2)  # the seed study's seeds; 0 is emotf.fit's default
# EmoDB's and RAVDESS's median speech levels differ by 19.5 dB (-17.1 against -36.6 dBFS, both measured with
# python -m emotf.preprocess --measure-level); the gain brings EmoDB's images to RAVDESS's level.
EMODB_GAIN = f"records/emodb/{folder_name('ds2', gain_db=-19.5)}"
LEVEL_DS2 = folder_name("ds2", level_dbfs=-35)
CLASS_LABEL = {"all": "8", "4": "4", "3": "3"}
TUNED_HPARAMS = "tuning/best/cnn_rnn-ravdess-ds2-c4-f0.json"


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
        run = RunDir(self.out)
        return run.metrics_file if self.kind == "fit" else run.eval_file(eval_stem(self.records))

    def is_done(self) -> bool:
        """Its result is in ``runs/`` or in the ledger."""
        return self.done_file.is_file() or ledger.ledger_path(self.done_file).is_file()

    def argv(self) -> list[str]:
        if self.kind == "fit":
            return self.cell.fit_argv(self.fold)
        return ["python", "-m", "emotf.evaluate", str(self.out), "--records", self.records]


def eval_stem(records: str) -> str:
    """The name ``emotf.evaluate`` gives a cross-corpus report of ``records/<corpus>/<variant>``."""
    corpus, variant = Path(records).parts[-2:]
    return report_stem(corpus, variant, "all")


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




def select(plan: Sequence[Cell], *, archs: Iterable[str] = (), classes: Iterable[str] = ()) -> list[Cell]:
    """The cells of these architectures and class sets (all where none is given)."""
    archs, classes = set(archs), set(classes)
    return [c for c in plan if (not archs or c.arch in archs) and (not classes or c.classes in classes)]


def add_filters(p: argparse.ArgumentParser) -> None:
    """``--section``, ``--arch``, ``--classes``: which rows of the grid a command takes."""
    p.add_argument("--section", action="append", default=[], choices=SECTIONS)
    p.add_argument("--arch", action="append", default=[], help="only these architectures' rows")
    p.add_argument("--classes", action="append", default=[], choices=list(CLASS_LABEL),
                   help="only the rows of these class sets")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.plan", description=__doc__.split("\n\n")[0])
    add_filters(p)
    args = p.parse_args(argv)
    for job in jobs(select(PLAN, archs=args.arch, classes=args.classes), args.section):
        print(("done  " if job.is_done() else "todo  ") + " ".join(job.argv()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
