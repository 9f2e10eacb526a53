"""Single-clip prediction latency, from audio file to label: p50 / p95 per architecture, Keras and TFLite.

    python bench/latency.py [--archs cnn cnn_rnn cnn_lstm crnn] [--clips 40] [--runs-root runs/ravdess-c4-f0]
    python bench/latency.py --archs video_3dcnn av       # face video + speech: Javanese AV clips (MTCNN faces)

For each architecture, the run folder ``RUNS_ROOT/<arch>`` (a trained model of
``python -m emotf.fit``) is used where it exists; otherwise a one-step run is
made with ``emotf.fit`` (the weights do not change the latency). Each RAVDESS
clip goes through ``emotf.serving.inference.predict`` (decode, 3-s clips, spectrogram
images, model, mean of the clip probabilities, label) in one process with the
model loaded once, as a service would run it; the features alone are timed
too. The TFLite rows run the same features through the exported model
(``emotf.export``, ``--no-tflite`` skips it; for the waveform models too, each utterance padded
to whole 2-s buckets as ``predict`` pads it). The video models (``video_3dcnn``, ``av``) read
Javanese AV clips (speech and face in one MP4; ``--video-data``), made into face stacks with
MTCNN as ``predict --video`` does, with models of the Javanese records (``--video-records``);
Keras only. A few warm-up clips are not timed. Prints a table and writes JSON to bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import RAVDESS, RESULTS, ROOT, peak_rss_mb, print_table, ravdess_files, write_json

# the spectrogram models (emotf.catalog.AUDIO_BRANCHES) and the recipe's waveform model (Keras only: its TFLite
# export, with a variable-length input, is not measured here)
ARCHS = ("cnn", "cnn_rnn", "cnn_lstm", "crnn", "logmel_cnn", "whisper_tiny")
VIDEO_ARCHS = ("video_3dcnn", "av")  # face stacks from a video beside the speech


def ensure_run(arch: str, runs_root: Path, records: Path, scratch: Path) -> Path:
    """A run folder with a model of ``arch``: the trained one, else a one-step run made now (the waveform model
    on the waveform records beside ``records``: ``<corpus>/wave``)."""
    from emotf.catalog import ARCHS as CATALOG

    if CATALOG[arch].modality == "waveform":
        records = records.parent / "wave"
    if (runs_root / arch / "model.keras").is_file():
        return runs_root / arch
    out = scratch / arch
    if not (out / "model.keras").is_file():
        print(f"{runs_root / arch}: no trained model; making a one-step run in {out}", flush=True)
        subprocess.run([sys.executable, "-m", "emotf.fit", "--arch", arch, "--records", str(records), "--classes", "4",
                        "--split", "speaker-folds", "--epochs", "1", "--max-steps-per-epoch", "1", "--out", str(out),
                        "--overwrite", "--quiet"], check=True)
    return out


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "mean_ms": round(float(np.mean(ms)), 1)}


def measure(run_dir: Path, files: list[Path], *, warmup: int, tflite: bool, video: bool = False) -> list[dict]:
    from emotf.features import inputs
    from emotf.runs import open_run
    from emotf.serving import exporter as export
    from emotf.serving import inference as predict

    run = open_run(run_dir)
    model = run.load_model()
    rows = []
    for f in files[:warmup]:
        predict.predict(run_dir, f, f if video else None, model=model)
    feats, total, clips, labels = [], [], [], {}
    for f in files[warmup:]:
        t0 = time.perf_counter()
        inputs.features(run, f, f if video else None)
        t1 = time.perf_counter()
        r = predict.predict(run_dir, f, f if video else None, model=model)
        t2 = time.perf_counter()
        feats.append(1000 * (t1 - t0))
        total.append(1000 * (t2 - t1))
        clips.append(len(r["clips"]))
        labels[f] = r["label"]
    base = {"arch": run.arch, "params": model.count_params(), "clips": len(total),
            "images_per_clip": round(float(np.mean(clips)), 2)}
    rows.append({**base, "path": "keras (mp4 -> label)" if video else "keras (wav -> label)", **percentiles(total),
                 "features_p50_ms": percentiles(feats)["p50_ms"], "peak_rss_mb": peak_rss_mb()})
    if tflite and run.modality not in ("video", "av"):
        lite = export.export(run_dir, "tflite", out=Path(run_dir) / "export")
        runner = export.TFLiteRunner(lite["path"])
        names = run.class_names
        times, same = [], 0
        for i, f in enumerate(files):
            t0 = time.perf_counter()
            x, _ = inputs.features(run, f)
            label = names[int(runner(x if run.modality == "waveform" else [x["audio"]]).mean(axis=0).argmax())]
            if i >= warmup:
                times.append(1000 * (time.perf_counter() - t0))
                same += label == labels[f]
        rows.append({**base, "path": "tflite (wav -> label)", **percentiles(times),
                     "features_p50_ms": percentiles(feats)["p50_ms"], "peak_rss_mb": peak_rss_mb(),
                     "tflite_bytes": lite["bytes"], "label_agreement": round(same / len(times), 3)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS + VIDEO_ARCHS)
    p.add_argument("--clips", type=int, default=40, help="timed clips (after --warmup more)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs-root", default=str(ROOT / "runs" / "ravdess-c4-f0"))
    p.add_argument("--records", default=str(ROOT / "records" / "ravdess" / "ds2"))
    p.add_argument("--scratch", default=str(RESULTS / "latency_runs"), help="where one-step runs are made")
    p.add_argument("--data", default=str(RAVDESS), help="RAVDESS-named audio files (03-01-*), searched recursively")
    p.add_argument("--video-data", default=str(RAVDESS.parent / "javanese_av" / "dataset-resize"),
                   help="MP4 clips with a face and speech, for the video models")
    p.add_argument("--video-records", default=str(ROOT / "records" / "javanese" / "ds2"),
                   help="records the video models' one-step runs are made from")
    p.add_argument("--no-tflite", action="store_true")
    p.add_argument("--json", default=str(RESULTS / "latency.json"))
    a = p.parse_args()
    # Every 7th clip: actors, emotions and statements spread over the corpus.
    files = ravdess_files(a.data)[::7][: a.clips + a.warmup]
    if not files:
        print(f"{a.data}: no RAVDESS clips there: nothing to measure")
        return 0
    videos = sorted(Path(a.video_data).glob("*.mp4"))[::5][: a.clips + a.warmup]
    rows = []
    for arch in a.archs:
        video = arch in VIDEO_ARCHS
        if video and not videos:
            print(f"{a.video_data}: no MP4 clips there: {arch} not measured")
            continue
        run_dir = ensure_run(arch, Path(a.runs_root), Path(a.video_records if video else a.records), Path(a.scratch))
        for r in measure(run_dir, videos if video else files, warmup=a.warmup, tflite=not a.no_tflite, video=video):
            rows.append({**r, "run": str(run_dir)})
            print(f"{arch} {r['path']}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms", flush=True)
    print()
    print_table(rows, ["arch", "path", "params", "clips", "images_per_clip", "features_p50_ms", "p50_ms", "p95_ms",
                       "mean_ms", "peak_rss_mb"])
    write_json(a.json, {"runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
