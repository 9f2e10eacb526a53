"""A linear probe of the frozen pretrained encoder: what its states know before any head is trained.

    python -m experiments.probe --records records/ravdess/wave --classes all
    python -m experiments.probe --records records/ravdess/wave --classes all --window-s 10   # zero-padded windows

Each utterance of the records (the recipe's waveform records) goes once through emotf's Keras
Whisper encoder (`emotf.models.whisper.build_whisper_encoder_model`); every layer's states are
pooled over the utterance's tokens into mean ‖ std (768 numbers a layer). By default the encoder
sees the utterance alone (attention over its own tokens); with ``--window-s`` it sees the
utterance zero-padded to that window as one input, padding included (Whisper's own practice;
the pooling still covers the utterance's tokens only). The pooled features are kept in
``--cache`` (one .npz per records folder and window), so the probes below cost seconds.

Then, on the speaker folds of ``emotf.fit --split speaker-folds`` (6 folds; a fold's test
speakers are scored by a probe trained on all the other speakers: no validation set, no
selection), a logistic regression (C 0.1, balanced classes, features standardised on the
training speakers) on: the last layer, and all layers concatenated; each without and with
per-speaker standardisation (each speaker's own mean and deviation, no label used). Prints
UA mean ± std over the folds and writes JSON beside the cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def pooled_states(records: str, *, window_s: float = 0.0, batch: int = 16) -> dict[str, np.ndarray]:
    """{"features": (n, layers + 1, 2 · width) mean ‖ std per layer, "labels": (n,) str, "speakers": (n,) str}."""
    from emotf.data import pipeline
    from emotf.models.whisper import WhisperSteps, build_whisper_encoder_model
    from emotf.records.folder import load_records

    info = load_records(records)
    encoder = build_whisper_encoder_model()
    cfg = pipeline.PipelineConfig(class_names=info.present_classes, modality="waveform", batch_size=batch,
                                  cache="off", bucket_s=window_s or 2.0)
    window = int(round(window_s * info.sample_rate))
    feats, labels, speakers = [], [], []
    for unit in info.units:
        for x, _, meta in pipeline.eval_dataset(info, [unit], cfg, with_meta=True):
            wave, length = x["audio"].numpy(), x["audio_length"].numpy()
            if window:  # the window as one input: the encoder attends to the padding too, as Whisper does
                wave, length = wave[:, :window], np.minimum(length, window)
                wave = np.pad(wave, ((0, 0), (0, window - wave.shape[1])))
                out = encoder.predict_on_batch({"audio": wave, "audio_length": np.full(len(wave), window, np.int32)})
                tokens = np.asarray(WhisperSteps(2)(length))  # the utterance's own tokens, as the model counts them
            else:
                out = encoder.predict_on_batch({"audio": wave, "audio_length": length})
                tokens = np.asarray(out["tokens"])
            states = np.asarray(out["states"])  # (batch, layers + 1, tokens, width)
            for s, t in zip(states, tokens, strict=True):
                valid = s[:, :int(t)]
                feats.append(np.concatenate([valid.mean(1), valid.std(1)], axis=-1))
            labels += [v.decode() for v in meta["label_name"].numpy()]
            speakers += [unit] * len(wave)
    return {"features": np.stack(feats).astype(np.float32), "labels": np.array(labels),
            "speakers": np.array(speakers)}


def per_speaker(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's features standardised with that speaker's own mean and deviation (no label used)."""
    out = np.empty_like(x)
    for s in np.unique(speakers):
        rows = speakers == s
        out[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-6)
    return out


def probe(x: np.ndarray, y: np.ndarray, speakers: np.ndarray, folds: list[list[str]]) -> list[float]:
    """UA of a logistic regression on each fold's test speakers, trained on every other speaker."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scores = []
    for test in folds:
        te = np.isin(speakers, test)
        scale = StandardScaler().fit(x[~te])
        clf = LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)
        clf.fit(scale.transform(x[~te]), y[~te])
        scores.append(float(balanced_accuracy_score(y[te], clf.predict(scale.transform(x[te])))))
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default="records/ravdess/wave")
    p.add_argument("--classes", default="all", help="all, or the paper's 4")
    p.add_argument("--window-s", type=float, default=0.0, help="0: each utterance alone; else a padded window")
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--cache", default="runs/probe")
    args = p.parse_args(argv)

    from emotf.catalog import CLASS_SETS
    from emotf.data import splits
    from emotf.records.folder import load_records

    info = load_records(args.records)
    cache = Path(args.cache) / f"{info.corpus}-{Path(args.records).name}-w{args.window_s:g}.npz"
    if cache.exists():
        data = dict(np.load(cache))
    else:
        t0 = time.perf_counter()
        data = pooled_states(args.records, window_s=args.window_s)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **data)
        print(f"encoded {len(data['labels'])} utterances in {time.perf_counter() - t0:.0f} s -> {cache}")
    keep = np.isin(data["labels"], CLASS_SETS[args.classes]) if args.classes in CLASS_SETS else \
        np.ones(len(data["labels"]), bool)
    x, y, spk = data["features"][keep], data["labels"][keep], data["speakers"][keep]
    folds = [splits.make_split(info.speakers(), "speaker-folds", f, folds=args.folds).test for f in range(args.folds)]
    rows = {}
    for name, feats in (("last layer", x[:, -1]), ("all layers", x.reshape(len(x), -1))):
        for norm, f in (("", feats), (" + per-speaker standardisation", per_speaker(feats, spk))):
            scores = probe(f, y, spk, folds)
            rows[name + norm] = scores
            print(f"{name + norm:48s} UA {np.mean(scores):.3f} ± {np.std(scores):.3f}  "
                  + " ".join(f"{s:.2f}" for s in scores))
    out = cache.with_suffix(f".c{args.classes}.json")
    command = "python -m experiments.probe " + " ".join(sys.argv[1:] if argv is None else argv)
    out.write_text(json.dumps({"command": command, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
