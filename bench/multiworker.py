"""Multi-worker training on one machine: what N worker processes (MultiWorkerMirroredStrategy on loopback) cost
against one.

    python bench/multiworker.py --records records/ravdess/ds2 --arch cnn --workers 1 2 --repeat 2

Each configuration trains the same model with the same global batch for ``--epochs`` epochs of ``--steps``
steps; the rate is the chief's ``train_samples_per_s`` (timed by the Throughput callback from the end of each
epoch's first step, so start-up and tracing are left out) of the last epoch. The worker counts alternate, round
after round. Prints a table and writes bench/results/multiworker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, print_table, write_json


def train(workers: int, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "emotf.fit", "--arch", args.arch, "--records", args.records, "--out", str(out),
           "--epochs", str(args.epochs), "--max-steps-per-epoch", str(args.steps), "--batch-size",
           str(args.batch_size), "--quiet"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.time()
    if workers == 1:
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
    else:
        from emotf.training.runtime import loopback_tf_configs

        procs = [subprocess.Popen(cmd + ["--strategy", "multiworker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env={**env, "TF_CONFIG": tf_config})
                 for tf_config in loopback_tf_configs(workers)]
    errors = [p.communicate()[1].decode()[-2000:] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"training with {workers} worker(s) failed:\n" + "\n".join(errors))
    history = json.loads((out / "history.json").read_text())
    rate = history[-1]["train_samples_per_s"]
    return {"workers": workers, "samples_per_s": round(rate, 1),
            "epoch_s": round(args.steps * args.batch_size / rate, 2), "command_s": round(time.time() - t0, 1),
            "load_average": round(os.getloadavg()[0], 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default=str(ROOT / "records" / "ravdess" / "ds2"))
    p.add_argument("--arch", default="cnn")
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--batch-size", type=int, default=32, help="global: each of N workers takes 1/N of it")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--repeat", type=int, default=2, help="rounds over the worker counts")
    p.add_argument("--json", default=str(RESULTS / "multiworker.json"))
    args = p.parse_args()
    args.records = str(Path(args.records).resolve())  # the workers run in the repository root
    if not Path(args.records, "manifest.json").is_file():
        print(f"{args.records} holds no records: make tfrecords first")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.repeat):
            for n in args.workers:
                r = train(n, args, Path(tmp) / f"w{n}-r{rnd}")
                r["round"] = rnd
                rows.append(r)
                print(f"round {rnd}: {n} worker(s): {r['samples_per_s']} samples/s, {r['epoch_s']} s/epoch", flush=True)
    summary = []
    for n in args.workers:
        rates = [r["samples_per_s"] for r in rows if r["workers"] == n]
        summary.append({"workers": n, "samples_per_s_median": statistics.median(rates),
                        "epoch_s_median": statistics.median(r["epoch_s"] for r in rows if r["workers"] == n),
                        "vs_one_worker": round(statistics.median(rates) / statistics.median(
                            r["samples_per_s"] for r in rows if r["workers"] == args.workers[0]), 2)})
    print_table(summary, ["workers", "samples_per_s_median", "epoch_s_median", "vs_one_worker"])
    write_json(Path(args.json), {"arch": args.arch, "records": args.records,
                                 "global_batch": args.batch_size, "runs": rows, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
