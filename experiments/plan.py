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
from emotf.runs import RunDir
from experiments import ledger

FOLDS6 = (0, 1, 2, 3, 4, 5)
SECTIONS = ("grid", "variants", "level", "tuned", "av", "seeds", "selection", "recipe", "pretrained", "loco",
            "ablation", "javanese")
SEEDS = (0, 1, 2)  # the seed study's seeds; 0 is emotf.fit's default
# EmoDB's and RAVDESS's median speech levels differ by 19.5 dB (-17.1 against -36.6 dBFS, both measured with
# python -m emotf.preprocess --measure-level); the gain brings EmoDB's images to RAVDESS's level.
EMODB_GAIN = f"records/emodb/{folder_name('ds2', gain_db=-19.5)}"
LEVEL_DS2 = folder_name("ds2", level_dbfs=-35)
CLASS_LABEL = {"all": "8", "4": "4", "3": "3"}
ALL_CLASSES = {"javanese": "6"}  # "all" is RAVDESS's 8 classes in the run folder names, except where said here
TUNED_HPARAMS = "tuning/best/cnn_rnn-ravdess-ds2-c4-f0.json"
# The corpora of leave-one-corpus-out (the recipe's waveform records of each: make tfrecords ... VARIANT=wave).
LOCO_CORPORA = ("ravdess", "emodb", "emovo", "tess", "javanese")
# The Javanese AV corpus: 10 speakers in 5 folds of one woman and one man each (test 2, validation 2, train 6).
# 144 training clips at 6 classes: batch 16 instead of the paper's 64 gives the paper's models 9 steps an epoch.
JAVANESE_FOLDS = (0, 1, 2, 3, 4)
JAVANESE = ("--folds", "5")
JAVANESE_PAPER = (*JAVANESE, "--batch-size", "16")
FACEFILL = folder_name("ds2", face_crop="fill")  # records of --face-crop fill
WAVE_FACES = folder_name("wave", face_crop="fill", faces=True)  # waveforms with face stacks (--video on), face-fill
# whisper_tiny rows measured before its defaults became the linear head and levelling: the level as recorded
NOLEVEL = ("--hparams", "experiments/hparams/whisper-as-recorded.json")
STREAM = ("--head-fit", "stream", *NOLEVEL)
LEVEL = ("--hparams", "experiments/hparams/whisper-level.json")  # whisper_tiny levelled to -25 dBFS (its default)
LEVEL_TILT = ("--hparams", "experiments/hparams/whisper-level-tilt.json")  # ... and its slope to -4 dB/octave


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
        corpora: several corpora trained on together (``--records`` of all of them, each
            ``records/<corpus>/<variant>``); ``corpus`` then only names the row.
        test_corpus: with ``corpora``: the one left out and tested (``--test-corpus``).
        robust: the folds whose models also get the robustness report (``emotf.evaluate --robustness``).
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
    corpora: tuple[str, ...] = ()
    test_corpus: str = ""
    robust: tuple[int, ...] = ()

    @property
    def records(self) -> str:
        return ",".join(f"records/{c}/{self.variant}" for c in self.corpora or (self.corpus,))

    @property
    def class_count(self) -> str:
        """How many classes, as the run folder names say it ("all": RAVDESS's 8, or the corpus's own)."""
        return ALL_CLASSES.get(self.corpus, CLASS_LABEL["all"]) if self.classes == "all" else CLASS_LABEL[self.classes]

    @property
    def label(self) -> str:
        return self.arch + (f" ({self.tag})" if self.tag else "")

    def out(self, fold: int) -> str:
        variant = "" if self.variant == "ds2" else f"-{self.variant}"
        labelled = self.corpus in ("ravdess", "javanese") or self.corpora
        classes = f"-c{self.class_count}" if labelled else ""
        name = f"loco-{self.test_corpus}" if self.test_corpus else self.corpus
        return f"runs/{name}{variant}{classes}-f{fold}/{self.arch}" + (f"-{self.tag}" if self.tag else "")

    def fit_argv(self, fold: int) -> list[str]:
        loco = ["--test-corpus", self.test_corpus] if self.test_corpus else []
        return ["python", "-m", "emotf.fit", "--arch", self.arch, "--records", self.records, "--classes",
                self.classes, "--split", self.split, *loco, "--fold", str(fold), "--epochs", str(self.epochs),
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


# Ablation rows measured by a selection candidate with exactly that setting (lever -> candidate tag).
ABLATION_FROM_SELECTION = {"no-mixup": "candidate-no-mixup"}


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
        # How the recipe was chosen: four candidates on folds 0-1, compared on validation UA only.
        # The no-mixup candidate is the recipe without mixup (the other settings are the arch's defaults), so it is
        # also the ablation's "without mixup" row, scored on EmoDB for it.
        *(Cell("selection", "logmel_cnn", "4", variant="wave", folds=(0, 1), epochs=60, tag=t, args=(
            "--batch-size", "32", "--lr", lr, "--weight-decay", "0.05", "--lr-schedule", "warmup_cosine",
            "--warmup-epochs", "3", "--patience", "15", "--augment", augment, *extra),
            cross=("records/emodb/wave",) if t == ABLATION_FROM_SELECTION["no-mixup"] else ())
          for t, lr, augment, extra in (
            ("candidate-all-augmentations", "1e-3", "all", ()),
            ("candidate-no-mixup", "1e-3", "gain,tilt,noise,speed,specaugment", ()),
            ("candidate-lr-3e-3", "3e-3", "all", ()),
            ("candidate-mean-and-variance", "1e-3", "all", ("--hparams", "experiments/hparams/norm-meanvar.json")))),
        # emotf's recipe (the waveform model; its training settings are the arch's defaults), every fold, scored
        # on the other corpora too, with the robustness report of fold 0.
        Cell("recipe", "logmel_cnn", "4", variant="wave", epochs=0, robust=(0,),
             cross=tuple(f"records/{c}/wave" for c in LOCO_CORPORA if c != "ravdess")),
        Cell("recipe", "logmel_cnn", "all", variant="wave", epochs=0, robust=(0,), cross=("records/emodb/wave",)),
        # The paper's model beside it: as it is (a re-run of the grid's fold 0, for its robustness report), and
        # with the recipe's invariances in its images (silence trimmed by the VAD, each band's mean subtracted).
        Cell("recipe", "cnn_rnn", "4", folds=(0,), robust=(0,), tag="robustness",
             cross=("records/emodb/ds2", "records/javanese/ds2")),
        Cell("recipe", "cnn_rnn", "4", variant="ds2-trim-norm", folds=(0, 1),
             cross=("records/emodb/ds2-trim-norm",)),
        # The pretrained encoder (Whisper tiny.en, frozen; the arch's training defaults, its head streamed: the
        # default until the linear head below won) on the recipe's records, with the speaker-adapted test scores
        # beside (emotf.evaluation.adaptation).
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", epochs=0, robust=(0,), args=STREAM,
               cross=("records/emodb/wave",)) for classes in ("all", "4")),
        # a candidate change of its training, judged on validation UA of folds 0-1 only: no mixup (mixing two
        # utterances' waveforms gives the frozen encoder overlapping speech)
        Cell("pretrained", "whisper_tiny", "all", variant="wave", folds=(0, 1), epochs=0,
             args=(*STREAM, "--augment", "gain,tilt,noise,speed,specaugment"), tag="no-mixup"),
        # its other head: the SUPERB/EmoBox layer mix with attentive pooling (fold 0; below the default head there)
        Cell("pretrained", "whisper_tiny", "all", variant="wave", folds=(0,), epochs=0,
             args=("--head-fit", "stream", "--hparams", "experiments/hparams/whisper-mix.json"), tag="mix"),
        # the head fitted as a regularised linear classifier on cached pooled states (--head-fit linear: its L2
        # strength chosen on validation, refitted on training + validation), with 4 augmented views of each
        # training utterance beside the whole ones and each utterance levelled to -25 dBFS before Whisper's front
        # end (a gain then changes nothing), ...
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", epochs=0, robust=(0,),
               cross=("records/emodb/wave",), args=("--head-fit", "linear", "--views", "4", *LEVEL),
               tag="linear-views-level") for classes in ("all", "4")),
        # ... without the levelling, ...
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", folds=(0, 1), epochs=0, robust=(0,),
               cross=("records/emodb/wave",), args=("--head-fit", "linear", "--views", "4", *NOLEVEL),
               tag="linear-views")
          for classes in ("all", "4")),
        # ... without the views either (the whole utterances alone: the linear probe's setting), ...
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", folds=(0, 1), epochs=0, robust=(0,),
               cross=("records/emodb/wave",) if classes == "all" else (),
               args=("--head-fit", "linear", "--views", "0", *NOLEVEL), tag="linear")
          for classes in ("all", "4")),
        # ... and levelled without the views
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", folds=(0,), epochs=0, robust=(0,),
               args=("--head-fit", "linear", "--views", "0", *LEVEL), tag="linear-level") for classes in ("all", "4")),
        # Candidates for the tilt and noise robustness the default misses, fold 0 first: each utterance's spectral
        # slope levelled to -4 dB/octave in Whisper's front end (RAVDESS's typical slope; every fold, as it met the
        # tilt target on fold 0), and twice the views
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", folds=FOLDS6,
               epochs=0, robust=(0,), cross=("records/emodb/wave",),
               args=("--head-fit", "linear", "--views", "4", *LEVEL_TILT), tag="linear-views-level-tilt")
          for classes in ("all", "4")),
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave", folds=(0,), epochs=0, robust=(0,),
               cross=("records/emodb/wave",), args=("--head-fit", "linear", "--views", "8", *LEVEL),
               tag="linear-views8-level") for classes in ("all", "4")),
        # ... the slope levelled on records whose silence is kept: what of the tilt's effect is the VAD's (WebRTC's
        # decisions, which trim the records and the perturbed test audio alike, depend on the spectrum)
        Cell("pretrained", "whisper_tiny", "all", variant="wave-notrim", folds=(0,), epochs=0, robust=(0,),
             args=("--head-fit", "linear", "--views", "4", *LEVEL_TILT), tag="linear-views-level-tilt"),
        # ... and on records trimmed by a VAD that decides on a slope-levelled copy (preprocess --vad-tilt -4)
        *(Cell("pretrained", "whisper_tiny", classes, variant="wave-vadtilt-4", folds=(0,), epochs=0, robust=(0,),
               args=("--head-fit", "linear", "--views", "4", *LEVEL_TILT), tag="linear-views-level-tilt")
          for classes in ("all", "4")),
        # Leave one corpus out: trained on the other four (corpus-balanced), the held-out corpus tested whole.
        *(Cell("loco", "logmel_cnn", "4", corpus=c, variant="wave", folds=(0,), epochs=0, corpora=LOCO_CORPORA,
               test_corpus=c) for c in LOCO_CORPORA),
        # ... and the pretrained encoder, the same way (the corpora the recipe missed first)
        *(Cell("loco", "whisper_tiny", "4", corpus=c, variant="wave", folds=(0,), epochs=0, corpora=LOCO_CORPORA,
               test_corpus=c, args=STREAM) for c in ("ravdess", "tess", "emodb", "emovo", "javanese")),
        # ... and with its default head (fitted on cached states, levelled), which transferred worse to EmoDB
        *(Cell("loco", "whisper_tiny", "4", corpus=c, variant="wave", folds=(0,), epochs=0, corpora=LOCO_CORPORA,
               test_corpus=c, args=("--head-fit", "linear", "--views", "4", *LEVEL), tag="linear-views-level")
          for c in ("ravdess", "tess", "emodb", "emovo", "javanese")),
        # Each lever of the recipe removed in turn, folds 0-1, with the EmoDB score.
        *(Cell("ablation", "logmel_cnn", "4", variant=v, folds=(0, 1), epochs=0, args=a, tag=t,
               cross=(f"records/emodb/{v}",)) for v, a, t in (
            ("wave", ("--hparams", "experiments/hparams/norm-none.json"), "no-normalisation"),
            ("wave-notrim", (), "no-silence-trimming"),
            ("wave", ("--augment", "specaugment,mixup"), "no-waveform-augmentation"),
            ("wave", ("--augment", "gain,tilt,noise,speed,mixup"), "no-specaugment"),
            ("wave", ("--lr-schedule", "constant"), "no-lr-schedule"))),
        # Real faces (issue 16): audio only (the paper's model and the recipe), video only, audio+video without
        # contrastive pre-training, every fold; 15 epochs each (the AV model's), so audio-only and AV match.
        *(cell for classes in ("4", "all") for cell in (
            Cell("javanese", "video_3dcnn", classes, "javanese", folds=JAVANESE_FOLDS, epochs=15,
                 args=JAVANESE_PAPER),
            Cell("javanese", "logmel_cnn", classes, "javanese", variant="wave", folds=JAVANESE_FOLDS, epochs=0,
                 args=JAVANESE),
            # at 6 classes the paper's audio and AV models (9 of the grid's 13 CPU-minutes a fold) get folds 0-2
            Cell("javanese", "cnn_rnn", classes, "javanese", folds=JAVANESE_FOLDS if classes == "4" else (0, 1, 2),
                 epochs=15, args=JAVANESE_PAPER),
            Cell("javanese", "av", classes, "javanese", folds=JAVANESE_FOLDS if classes == "4" else (0, 1, 2),
                 epochs=15, args=(*JAVANESE_PAPER, "--pretrain-epochs", "0"), tag="no-pretrain"),
            # contrastive pre-training: two folds (its cost, 5 epochs of pairs, is what the 2-core budget cut)
            Cell("javanese", "av", classes, "javanese", folds=(0, 1), epochs=15, args=JAVANESE_PAPER),
            # the pretrained encoder, audio only (its training defaults)
            Cell("javanese", "whisper_tiny", classes, "javanese", variant="wave", folds=JAVANESE_FOLDS, epochs=0,
                 args=(*JAVANESE, *STREAM)),
            # face stacks the face fills (--face-crop fill) instead of the paper's head-and-shoulders crop
            Cell("javanese", "video_3dcnn", classes, "javanese", variant=FACEFILL, folds=JAVANESE_FOLDS, epochs=15,
                 args=JAVANESE_PAPER, tag="facefill"),
            Cell("javanese", "av", classes, "javanese", variant=FACEFILL,
                 folds=JAVANESE_FOLDS if classes == "4" else (0, 1, 2), epochs=15,
                 args=(*JAVANESE_PAPER, "--pretrain-epochs", "0"), tag="no-pretrain-facefill"),
            # the pretrained encoder as the audio branch (its own recipe), with the face-filling stacks: against
            # the whisper_tiny row, the face is the only difference
            Cell("javanese", "av", classes, "javanese", variant=WAVE_FACES, folds=JAVANESE_FOLDS, epochs=0,
                 args=(*JAVANESE, "--audio-arch", "whisper_tiny", "--pretrain-epochs", "0"), tag="whisper"))),
        # The AV model trained on the synthetic corpus, scored on the real clips: no real face seen in training.
        Cell("javanese", "av", "all", "synth_iemocap", folds=(0,), split="auto", epochs=0, tag="synthetic",
             cross=("records/javanese/ds2",)),
    )


PLAN: tuple[Cell, ...] = _grid()


@dataclasses.dataclass(frozen=True)
class Job:
    cell: Cell
    fold: int
    kind: str  # "fit", "eval" (another corpus's records) or "robust" (its own test speakers, perturbed)
    records: str = ""

    @property
    def out(self) -> Path:
        return Path(self.cell.out(self.fold))

    @property
    def done_file(self) -> Path:
        run = RunDir(self.out)
        if self.kind == "robust":
            return run.eval_file(robust_stem(self.cell))
        return run.metrics_file if self.kind == "fit" else run.eval_file(eval_stem(self.records))

    def is_done(self) -> bool:
        """Its result is in ``runs/`` or in the ledger."""
        return self.done_file.is_file() or ledger.ledger_path(self.done_file).is_file()

    def argv(self) -> list[str]:
        if self.kind == "fit":
            return self.cell.fit_argv(self.fold)
        if self.kind == "robust":
            return ["python", "-m", "emotf.evaluate", str(self.out), "--records", self.cell.records, "--robustness"]
        return ["python", "-m", "emotf.evaluate", str(self.out), "--records", self.records]


def eval_stem(records: str) -> str:
    """The name ``emotf.evaluate`` gives a cross-corpus report of ``records/<corpus>/<variant>``."""
    corpus, variant = Path(records).parts[-2:]
    return report_stem(corpus, variant, "all")


def robust_stem(cell: Cell) -> str:
    """The name ``emotf.evaluate --robustness`` gives the report of a fold model on its own test speakers."""
    first = cell.records.split(",")[0]
    corpus = "+".join(cell.corpora) if cell.corpora else Path(first).parts[-2]
    return report_stem(corpus, Path(first).name, "test") + "-robustness"


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
                if fold in c.robust:
                    out.append(Job(c, fold, "robust"))
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
