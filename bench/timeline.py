"""The timeline of long recordings (``python -m emotf.predict RUN FILE --timeline``): time and peak memory against
the recording's length.

    python bench/timeline.py [--archs logmel_cnn cnn_rnn] [--minutes 1 60] [--runs-root runs/ravdess-c4-f0]

A recording of N minutes is made from RAVDESS clips with a second of room noise between them (FLAC, written in
blocks; not kept). Each (architecture, length) runs in its own process, the lengths alternating, so peak memory
(the process's resident set at the end) is that run's alone; the time is that of `emotf.serving.timeline.timeline`
itself, measured inside the process (model loaded before). The real-time factor is the recording's length over
that time. A run folder ``RUNS_ROOT/<arch>`` is used where it exists, else a one-step run is made
(`bench/latency.py`'s ``ensure_run``: the weights do not change the time). Prints a table and writes JSON to
bench/results/timeline.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from common import RAVDESS, RESULTS, ROOT, print_table, ravdess_files, write_json
from latency import ensure_run

CHILD = """
import json, resource, sys, time
from emotf.runs import open_run
from emotf.serving import timeline
run, path = sys.argv[1], sys.argv[2]
model = open_run(run).load_model()
t0 = time.perf_counter()
t = timeline.timeline(run, path, model=model)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "windows": len(t.windows), "duration_s": t.duration_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_recording(path: Path, minutes: float, clips: list[Path], rate: int = 16000) -> Path:
    """RAVDESS clips, a second of room noise after each, over and over to ``minutes``; written a clip at a time."""
    rng = np.random.default_rng(0)
    total, i = int(minutes * 60 * rate), 0
    with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        written = 0
        while written < total:
            x, sr = sf.read(clips[i % len(clips)], dtype="float32")
            assert sr == rate, f"{clips[i % len(clips)]}: {sr} Hz"
            piece = np.concatenate([x, rng.standard_normal(rate).astype(np.float32) * 3e-4])[: total - written]
            out.write(piece)
            written += len(piece)
            i += 1
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["logmel_cnn", "cnn_rnn"])
    p.add_argument("--minutes", nargs="+", type=float, default=[1.0, 60.0])
    p.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "ravdess-c4-f0")
    p.add_argument("--records", type=Path, default=ROOT / "records" / "ravdess" / "ds2",
                   help="records a one-step run is made on where no trained model is there (waveform models: the "
                        "wave records beside)")
    p.add_argument("--data", type=Path, default=RAVDESS, help="RAVDESS-layout clips the recordings are made of")
    p.add_argument("--json", type=Path, default=RESULTS / "timeline.json")
    args = p.parse_args(argv)
    clips = ravdess_files(args.data, 60)
    if not clips:
        print(f"{args.data}: no RAVDESS clips", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {a: ensure_run(a, args.runs_root, args.records, tmp / "runs") for a in args.archs}
        files = {m: make_recording(tmp / f"{m:g}min.flac", m, clips) for m in args.minutes}
        for arch in args.archs:
            for m in args.minutes:  # each length once per arch, in order: the shorter first
                proc = subprocess.run([sys.executable, "-c", CHILD, str(runs[arch]), str(files[m])],
                                      capture_output=True, text=True, cwd=ROOT)
                if proc.returncode:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    return 1
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append({"arch": arch, "minutes": m, "windows": r["windows"], "seconds": round(r["seconds"], 1),
                             "real_time_factor": round(r["duration_s"] / r["seconds"], 1),
                             "peak_rss_mb": round(r["peak_rss_mb"])})
                print(rows[-1], flush=True)
    for arch in args.archs:
        mine = [r for r in rows if r["arch"] == arch]
        base = min(mine, key=lambda r: r["minutes"])
        for r in mine:
            r["rss_over_shortest_mb"] = r["peak_rss_mb"] - base["peak_rss_mb"]
    print_table(rows, ["arch", "minutes", "windows", "seconds", "real_time_factor", "peak_rss_mb",
                       "rss_over_shortest_mb"])
    write_json(args.json, {"runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
