"""Preprocessing speed and memory: clips/s and peak RSS (whole process tree).

    python bench/preprocess.py --data ../shared/data/ravdess_speech --variants ds1 ds2 --workers 0 --scales 1
    python bench/preprocess.py ... --scales 1 4 --limit 240     # peak RSS must not grow with corpus size
    python bench/preprocess.py ... --reference 60                 # the reference's pipeline on 60 clips, for the ratio
    python bench/preprocess.py ... --checkouts ../old . --repeat 2  # A/B: another checkout's emotf, alternately
    python bench/preprocess.py ... --runners local beam --repeat 2  # the local pool against Beam's local runner

Each run preprocesses a CSV manifest listing the corpus ``scale`` times (as
distinct speakers), in a fresh output folder, as a child process; a sampler
adds up the RSS of that process and all its workers every 50 ms, and the CPU time
of the whole command (the process and its workers, user + system) is what the
kernel accounts to it once it has ended. ``clips per CPU-second`` of the whole
command, start-up included, against the reference pipeline's (also per CPU-second,
in this process) is the per-core ratio. Prints a table and writes JSON to
bench/results/preprocess.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import ROOT, write_json


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def write_manifest(files: list[Path], scale: int, path: Path) -> int:
    """A CSV corpus listing every file ``scale`` times, each copy as its own speaker."""
    from emotf.corpora.ravdess import CODES as RAVDESS_CODES

    rows = []
    for k in range(scale):
        for f in files:
            parts = f.stem.split("-")
            label = RAVDESS_CODES[parts[2]]
            rows.append((str(f), label, f"Actor_{parts[6]}_x{k}"))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "speaker"])
        w.writerows(rows)
    return len(rows)


def run_one(manifest: Path, variant: str, workers: int, out: Path, checkout: Path = ROOT,
            runner: str = "local") -> dict:
    cmd = [sys.executable, "-m", "emotf.preprocess", "--corpus", "csv", "--data", str(manifest), "--variant", variant,
           "--out", str(out), "--workers", str(workers), "--no-progress"] + (["--runner", runner] if runner != "local"
                                                                            else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    seconds = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its workers, once all have ended
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"preprocess failed:\n{err}")
    # OUT/csv/<variant> before CSV corpora had names, OUT/<manifest's stem>/<variant> since
    manifest_out = json.loads(next(out.glob(f"*/{variant}/manifest.json")).read_text())
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
            "clips_per_cpu_s": round(manifest_out["utterances"] / cpu, 2), "peak_rss_mb": round(peak / 2**20, 1),
            "utterances": manifest_out["utterances"], "records": manifest_out["records"],
            "skipped": len(manifest_out["skipped"]), "clips_per_s": round(manifest_out["utterances"] / seconds, 2)}


def reference_pipeline(files: list[Path]) -> dict:
    """The reference's audio path, re-created: librosa at 44.1 kHz → STFT 2048/512 → dB → matplotlib
    figure (seismic, ±60 dB, 400×300 px) → PNG → crop (20, 190, 380, 280) → resize 300×200."""
    import io

    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    t0, c0 = time.time(), time.process_time()
    for f in files:
        y, sr = librosa.load(str(f), sr=44100)
        y = np.pad(y, (0, max(0, 3 * sr - len(y))))[: 3 * sr]
        db = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=2048, hop_length=512)), ref=1.0)
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.imshow(db, origin="lower", aspect="auto", cmap="seismic", vmin=-60, vmax=60)
        ax.axis("off")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        buf.seek(0)
        Image.open(buf).convert("RGB").crop((20, 190, 380, 280)).resize((300, 200))
    seconds, cpu = time.time() - t0, time.process_time() - c0
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "clips": len(files),
            "clips_per_s": round(len(files) / seconds, 2), "clips_per_cpu_s": round(len(files) / cpu, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ravdess_speech"))
    p.add_argument("--variants", nargs="*", default=["ds1", "ds2"])
    p.add_argument("--workers", nargs="+", type=int, default=[0], help="0: all cores")
    p.add_argument("--scales", nargs="+", type=int, default=[1])
    p.add_argument("--limit", type=int, default=0, help="use the first N files only")
    p.add_argument("--reference", type=int, default=0, help="also time the reference pipeline on N clips")
    p.add_argument("--checkouts", nargs="+", default=[str(ROOT)],
                   help="emotf checkouts whose python -m emotf.preprocess runs (A/B: alternately, in this order)")
    p.add_argument("--repeat", type=int, default=1, help="rounds over the checkouts")
    p.add_argument("--runners", nargs="+", default=["local"], choices=["local", "beam"],
                   help="local pool and/or Beam's local runner (alternately, in this order)")
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "preprocess.json"))
    a = p.parse_args()
    data = Path(a.data)
    if not data.is_dir():
        print(f"{data} is absent: nothing to measure")
        return 0
    files = sorted(data.rglob("03-01-*.*"))
    if a.limit:
        files = files[: a.limit]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in a.scales:
            manifest = Path(tmp) / f"manifest_x{scale}.csv"
            n = write_manifest(files, scale, manifest)
            for variant in a.variants:
                for workers in a.workers:
                    for rnd in range(a.repeat):
                        for i, checkout in enumerate(a.checkouts):
                            for runner in a.runners:
                                out = Path(tmp) / f"out_{variant}_{workers}_{scale}_{rnd}_{i}_{runner}"
                                r = run_one(manifest, variant, workers, out, Path(checkout).resolve(), runner)
                                r.update(variant=variant, workers=workers or os.cpu_count(), scale=scale,
                                         input_clips=n, checkout=_describe(checkout), runner=runner,
                                         load_average=round(os.getloadavg()[0], 2))
                                rows.append(r)
                                print(f"{r['checkout']} {runner} {variant} x{scale} workers={r['workers']}: "
                                      f"{r['clips_per_s']} clips/s, {r['cpu_s']} CPU-s, peak RSS {r['peak_rss_mb']} MB",
                                      flush=True)
    result = {"data": str(data), "runs": rows}
    if a.reference:
        ref_files = files[: a.reference]
        reference_pipeline(ref_files[:1])  # warm-up: imports and numba compilation are not timed on either side
        emotf_in_process(ref_files[:1])
        ref = reference_pipeline(ref_files)
        ours = emotf_in_process(ref_files)
        result["reference"] = {"reference": ref, "emotf_1_worker": ours,
                               "speedup": round(ours["clips_per_s"] / ref["clips_per_s"], 2)}
        for r in rows:  # the whole command (start-up, decoding, features, writing) per CPU-second, per core
            r["x_reference_per_core"] = round(r["clips_per_cpu_s"] / ref["clips_per_cpu_s"], 1)
    print()
    print(f"{'checkout':14} {'runner':6} {'variant':8} {'scale':>5} {'workers':>7} {'clips':>6} {'records':>7} "
          f"{'seconds':>8} {'clips/s':>8} {'CPU s':>7} {'clips/CPU-s':>11} {'x ref/core':>10} {'peak RSS MB':>11} "
          f"{'skipped':>7}")
    for r in rows:
        print(f"{r['checkout']:14} {r['runner']:6} {r['variant']:8} {r['scale']:>5} {r['workers']:>7} "
              f"{r['utterances']:>6} {r['records']:>7} {r['seconds']:>8} {r['clips_per_s']:>8} {r['cpu_s']:>7} "
              f"{r['clips_per_cpu_s']:>11} "
              f"{r.get('x_reference_per_core', ''):>10} {r['peak_rss_mb']:>11} {r['skipped']:>7}")
    if a.reference:
        rr = result["reference"]
        print(f"\nsame {a.reference} clips, one process, after a warm-up clip: reference pipeline (librosa 44.1 kHz → "
              f"matplotlib → PNG → crop → resize) {rr['reference']['clips_per_s']} clips/s "
              f"({rr['reference']['clips_per_cpu_s']} per CPU-second); emotf ds2 features "
              f"{rr['emotf_1_worker']['clips_per_s']} clips/s; "
              f"emotf / reference = {rr['speedup']}")
    write_json(a.json, result)  # with the command, the CPU and its flags, the load and the kernel environment
    return 0


def _describe(checkout: str) -> str:
    """A checkout as its git commit (short), or its path where it is no git checkout."""
    proc = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", checkout, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() + ("+" if dirty else "")) if proc.returncode == 0 else checkout


def emotf_in_process(files: list[Path]) -> dict:
    """emotf's ds2 feature path (decode → 3-s clips → spectrogram images), in this process, like the reference."""
    from emotf.config import AudioConfig
    from emotf.features import audio

    cfg = AudioConfig()
    t0 = time.time()
    for f in files:
        x = audio.load_audio(f, cfg).samples
        audio.utterance_images(x, cfg, mode="clips", clean=False, key=f.stem)
    seconds = time.time() - t0
    return {"seconds": round(seconds, 2), "clips": len(files), "clips_per_s": round(len(files) / seconds, 2)}


if __name__ == "__main__":
    sys.exit(main())
