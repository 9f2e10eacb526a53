"""Score a finished run's model on any records: its own test speakers, or a whole other corpus (the work of
``python -m emotf.evaluate``)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from emotf.records.folder import load_records
from emotf.runs import open_run

log = logging.getLogger("emotf")


def evaluate(run_dir: str | Path, records: str | Path, *, speakers: str = "auto", restrict: bool = True,
             batch_size: int = 64) -> dict:
    """Score the run's model on records; returns the report, also written to ``RUN/eval/<stem>.json`` and .png.

    Records of emotions the model does not know are left out.

    Args:
        speakers: "test", "val", "train" (the run's split; its own records only), "all", or "auto": the
            test speakers on the run's own records, every speaker on other records (a cross-corpus test).
        restrict: the model may predict only classes the evaluated records contain (the classes two
            corpora share); off: any of its classes.

    Raises:
        ValueError: no class in common, a split named on other records, or input shapes that differ.
    """
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.data import pipeline
    from emotf.evaluation import adaptation, plots, scoring

    run = open_run(run_dir)
    info = load_records(records)
    units, speakers = units_of(run, info, speakers)
    names = run.class_names
    shared = [c for c in names if c in info.present_classes]
    if not shared:
        raise ValueError(f"{info.root}: none of the model's classes {list(names)} occur in these records "
                         f"({list(info.present_classes)})")
    cfg = pipeline.PipelineConfig(class_names=names, modality=run.modality, batch_size=batch_size, cache="off",
                                  wave_audio=run.wave_audio)
    model = run.load_model()
    got, expected = info.input_shapes(run.modality, run.wave_audio), input_shapes(model)
    if got != expected:
        raise ValueError(f"{info.root}: input shape {got} differs from the model's {expected}; "
                         f"preprocess with the same --spec-size/--video-size")
    counts = info.count(units, names)
    pred = scoring.predict_records(model, pipeline.eval_dataset(info, units, cfg, with_meta=True))
    allowed = [counts[c] > 0 for c in names] if restrict else None
    rep = scoring.score(pred, names, allowed)
    adapted = adaptation.adapted_score(model, info, units, cfg, names, allowed)
    if adapted is not None:  # the same speakers, each adapted to (no label used): beside the headline, not it
        rep["speaker_adapted"] = adapted
    rep.update(run=str(run.path), records=str(info.root), corpus=info.corpus, variant=info.variant,
               speakers=list(units), restricted=restrict, excluded_labels={
                   c: n for c, n in info.count(units, info.present_classes).items() if c not in names and n})
    stem = free_stem(run, report_stem(info.corpus, Path(info.source.split(",")[0]).name, speakers), str(info.root))
    rep["written_to"] = str(run.eval_file(stem))
    run.write_eval(stem, rep)
    plots.confusion_png(rep["confusion_matrix"], names, run.eval_file(stem, ".png"),
                        title=f"{run.arch} on {info.corpus}/{info.variant} ({speakers}) · UA {rep['ua']:.3f}")
    return rep


def units_of(run, info, speakers: str = "auto") -> tuple[list[str], str]:
    """The speakers to score and what they are: ``speakers`` "test", "val", "train" (the run's split, of its
    own records only), "all", or "auto" (test on the run's own records, all on others).

    Raises:
        ValueError: a part of the split named on other records, or an unknown choice.
    """
    same = _folders(run.records_root) == _folders(info.source or str(info.root))
    if speakers == "auto":
        speakers = "test" if same else "all"
    if speakers in ("test", "val", "train"):
        if not same:
            raise ValueError(f"--speakers {speakers} names the run's split, but {info.source} are not its records "
                             f"({run.records_root}); use --speakers all")
        return list(run.split[speakers]), speakers
    if speakers == "all":
        return info.units, speakers
    raise ValueError(f"speakers must be auto, test, val, train or all. Received: {speakers!r}")


def _folders(records: str) -> set[Path]:
    return {Path(r).resolve() for r in str(records).split(",") if r}


def report_stem(corpus: str, records_folder: str, speakers: str) -> str:
    """The name of a report in ``RUN/eval/``: ``<corpus>-<records folder>-<speakers>``.

    The folder name, not the variant: two records folders of one variant (e.g. ds2 and ds2-gain-20) keep
    their reports apart.
    """
    return f"{corpus}-{records_folder}-{speakers}"


def free_stem(run, stem: str, records: str) -> str:
    """``stem``, unless ``RUN/eval/<stem>.json`` reports other records (a corpus of the same name and folder
    elsewhere): then ``<stem>-<8 hex digits of these records' path>``, so no report replaces another's."""
    path = run.eval_file(stem)
    try:
        old = json.loads(path.read_text()).get("records") if path.is_file() else None
    except (OSError, ValueError):  # unreadable: it is replaced, as any file of a report being rewritten
        old = None
    if old is None or _folders(old) == _folders(records):
        return stem
    tag = hashlib.sha256(",".join(sorted(map(str, _folders(records)))).encode()).hexdigest()[:8]
    return f"{stem}-{tag}"


def input_shapes(model) -> dict | tuple:
    """The shapes a model takes, as `RecordsInfo.input_shapes` gives them (a dict for two inputs)."""
    structure = model.input
    if isinstance(structure, dict):
        return {k: tuple(t.shape[1:]) for k, t in structure.items()}
    return tuple(structure.shape[1:])
