"""Input-pipeline speed: the samples/s emotf's tf.data pipeline delivers from the records, with no model.

    python bench/pipeline.py [--records records/ravdess/ds2] [--batches 40]

Reads fold 0's training speakers (speaker-folds, as ``emotf.fit``) through
``emotf.data.pipeline.train_dataset`` exactly as training does (class-balanced
resampling, batching, prefetch; the colour map is the model's first layer), and times:

- the first pass, which parses the TFRecords and fills the in-memory cache;
- steady state, from the cache (every epoch after the first);
- steady state with the augmentations: the paper's (crop, rotate) for spectrogram
  records; the recipe's (3-s crops, gain, tilt, noise, speed, mixup; SpecAugment is the
  model's own layer) for waveform records (``--variant wave``, the logmel_cnn model's);
- the per-epoch evaluation pipeline (``eval_dataset``, no cache).

Against it, the train-step samples/s of each architecture that reads these records, from
bench/results/train.json (run bench/train.py first): the ratio pipeline /
train step must stay well above 1, or the model waits for its data. Prints a
table and writes JSON to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, peak_rss_mb, print_table, write_json


def _batch_size(x) -> int:
    return int((x["audio"] if isinstance(x, dict) else x).shape[0])


def _time(ds, batches: int) -> tuple[float, int]:
    n, t0 = 0, time.perf_counter()
    for x, *_ in ds.take(batches):
        n += _batch_size(x)
    return time.perf_counter() - t0, n


def modality_of(info) -> str:
    """The model input the records feed: "waveform" (``--variant wave``) or "audio" (spectrogram images)."""
    return "waveform" if info.features == "wave" else "audio"


def measure(info, *, classes: str, batches: int, batch_size: int) -> list[dict]:
    from emotf.catalog import RECIPE
    from emotf.data import pipeline as data
    from emotf.data import splits

    modality = modality_of(info)
    augmentations = tuple(RECIPE["augment"]) if modality == "waveform" else ("crop", "rotate")
    split = splits.make_split(info.speakers(), "speaker-folds", 0)
    names = info.select_classes(classes)
    n_train = sum(info.count(split.train, names).values())
    first = max(1, -(-n_train // batch_size))  # one epoch of batches fills the cache
    rows = []

    def row(name, seconds, n):
        rows.append({"pipeline": name, "classes": len(names), "batches": -(-n // batch_size), "samples": n,
                     "seconds": round(seconds, 2), "samples_per_s": round(n / seconds, 1),
                     "peak_rss_mb": peak_rss_mb()})

    for augment in ((), augmentations):
        cfg = data.PipelineConfig(class_names=names, modality=modality, batch_size=batch_size, augment=augment,
                                  sample_rate=info.sample_rate)
        ds = data.train_dataset(info, split.train, cfg)
        label = "train" + (f" + {', '.join(augment)}" if augment else "")
        if not augment:
            row(f"{label}: first epoch (parse, fill cache)", *_time(ds, first))
        it = iter(ds)
        if augment:
            for _ in range(first):  # fill the cache of this pipeline before timing
                next(it)
        n, t0 = 0, time.perf_counter()
        for _ in range(batches):
            n += _batch_size(next(it)[0])
        row(f"{label}: steady state (cache)", time.perf_counter() - t0, n)
    cfg = data.PipelineConfig(class_names=names, modality=modality, batch_size=batch_size, cache="off",
                              sample_rate=info.sample_rate)
    n_val = sum(info.count(split.val, names).values())
    row("evaluation (no cache)", *_time(data.eval_dataset(info, split.val, cfg), -(-n_val // batch_size)))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default=str(ROOT / "records" / "ravdess" / "ds2"))
    from emotf.catalog import CLASS_CHOICES

    p.add_argument("--classes", default="all", choices=CLASS_CHOICES)
    p.add_argument("--batches", type=int, default=40, help="batches timed in steady state")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-json", default=str(RESULTS / "train.json"), help="bench/train.py's results")
    p.add_argument("--json", default=str(RESULTS / "pipeline.json"))
    a = p.parse_args()
    if not (Path(a.records) / "manifest.json").is_file():
        print(f"{a.records}: no records; make them first: make tfrecords CORPUS=ravdess "
              f"DATA=../shared/data/ravdess_speech")
        return 0
    from emotf.catalog import ARCHS
    from emotf.records.folder import load_records

    info = load_records(a.records)
    rows = measure(info, classes=a.classes, batches=a.batches, batch_size=a.batch_size)
    readers = [name for name, arch in ARCHS.items() if arch.modality == modality_of(info)]
    print_table(rows, ["pipeline", "classes", "batches", "samples", "seconds", "samples_per_s", "peak_rss_mb"])
    steady = min(r["samples_per_s"] for r in rows if "steady" in r["pipeline"])
    against = []
    if Path(a.train_json).is_file():
        for t in json.loads(Path(a.train_json).read_text())["runs"]:
            if t["arch"] in readers:
                against.append({"arch": t["arch"], "policy": t["policy"], "xla": t["xla"],
                                "train_step_samples_per_s": t["samples_per_s"],
                                "pipeline_samples_per_s": steady,
                                "pipeline / train step": round(steady / t["samples_per_s"], 1)})
        print("\nslowest steady-state pipeline against each architecture's train step:")
        print_table(against, list(against[0]) if against else ["arch"])
    else:
        print(f"\n{a.train_json} is absent: run bench/train.py for the comparison with the train step")
    write_json(a.json, {"records": str(a.records), "runs": rows, "against_train_step": against})
    return 0


if __name__ == "__main__":
    sys.exit(main())
