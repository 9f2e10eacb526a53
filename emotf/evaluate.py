"""``python -m emotf.evaluate RUN --records DIR``: score a trained model on any records.

    python -m emotf.evaluate runs/cnn_rnn-ravdess-ds2-c4-auto-f0 --records records/emodb/ds2

On the run's own records the default is its test speakers; on other records
(another corpus: a cross-corpus test) every speaker. Records whose emotion the
model does not know are left out, and by default the model may only predict
classes the records contain (the classes the two corpora share);
``--no-restrict`` lets it predict any of its classes. Results go to
``RUN/eval/<corpus>-<records folder>-<speakers>.json`` with a confusion-matrix PNG.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("emotf")


def evaluate(run_dir: str | Path, records: str | Path, *, speakers: str = "auto", restrict: bool = True,
             batch_size: int = 64) -> dict:
    """Score the run's model on records; returns (and writes) the report.

    Args:
        speakers: "test", "val", "train" (the run's split; same corpus only), "all" or "auto".
        restrict: allow predictions only of classes present in the evaluated records.
    """
    from emotf import data, evaluation, plots, runs

    run = runs.open_run(run_dir)
    info = data.load_records(records)
    same = Path(run.config["records"]["root"]).resolve() == info.root.resolve()
    if speakers == "auto":
        speakers = "test" if same else "all"
    if speakers in ("test", "val", "train"):
        if not same:
            raise ValueError(f"--speakers {speakers} names the run's split, but {info.root} are not its records "
                             f"({run.config['records']['root']}); use --speakers all")
        units = run.config["split"][speakers]
    elif speakers == "all":
        units = info.units
    else:
        raise ValueError(f"speakers must be auto, test, val, train or all. Received: {speakers!r}")
    names = run.class_names
    shared = [c for c in names if c in info.present_classes]
    if not shared:
        raise ValueError(f"{info.root}: none of the model's classes {list(names)} occur in these records "
                         f"({list(info.present_classes)})")
    cfg = data.PipelineConfig(class_names=names, modality=run.modality, batch_size=batch_size,
                              colormap=run.colormap, cache="off")
    expected = tuple(run.config["input_shape"]) if run.modality != "av" else run.config["input_shape"]
    got = data.input_shapes(info, run.modality)
    if json.dumps(got, default=list) != json.dumps(expected, default=list):
        raise ValueError(f"{info.root}: input shape {got} differs from the model's {expected}; "
                         f"preprocess with the same --spec-size/--video-size")
    model = run.load_model()
    counts = info.count(units, names)
    pred = evaluation.predict_records(model, data.eval_dataset(info, units, cfg, with_meta=True))
    allowed = [counts[c] > 0 for c in names] if restrict else None
    rep = evaluation.score(pred, names, allowed)
    rep.update(run=str(run.path), records=str(info.root), corpus=info.corpus, variant=info.variant,
               speakers=list(units), restricted=restrict, excluded_labels={
                   c: n for c, n in info.count(units, info.present_classes).items() if c not in names and n})
    out = run.path / "eval"
    out.mkdir(exist_ok=True)
    # The folder name, not the variant: two records folders of one variant (e.g. ds2 and ds2-gain-20) keep
    # their reports apart.
    stem = f"{info.corpus}-{info.root.name}-{speakers}"
    (out / f"{stem}.json").write_text(json.dumps(rep, indent=2))
    plots.confusion_png(rep["confusion_matrix"], names, out / f"{stem}.png",
                        title=f"{run.arch} on {info.corpus}/{info.variant} ({speakers}) · UA {rep['ua']:.3f}")
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emotf.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("--records", required=True, help="records folder to score")
    p.add_argument("--speakers", default="auto", choices=["auto", "test", "val", "train", "all"])
    p.add_argument("--no-restrict", action="store_true", help="let the model predict classes absent from the records")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from emotf import evaluation

    try:
        rep = evaluate(args.run, args.records, speakers=args.speakers, restrict=not args.no_restrict,
                       batch_size=args.batch_size)
    except (ValueError, FileNotFoundError) as e:
        log.error("error: %s", e)
        return 2
    print(evaluation.summary_line(f"{rep['corpus']}/{rep['variant']}", rep))
    print("classes scored:", ", ".join(rep["predicted_classes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
