"""Bytes a training run writes per epoch, and its peak memory: ``emotf.fit`` itself, A against B.

    python bench/checkpoints.py                                   # this checkout, cnn_rnn on the embedded records
    python bench/checkpoints.py --code . /tmp/old-emotf --arch cnn_rnn

For each source tree given (``--code``: folders holding an ``emotf`` package, e.g. this
checkout and a ``git worktree`` of an older commit), a fresh process runs the real
``python -m emotf.fit`` for 1 and then for 2 epochs (``--steps`` steps each) into new run
folders, alternating the trees; it reads its own ``/proc/self/io`` (``wchar``: every byte
handed to ``write()``, checkpoints, logs and all) and its peak RSS. The bytes of one
epoch are the 2-epoch run's minus the 1-epoch run's (everything else, evaluation and
the final model, is the same in both). Prints a table and writes JSON to
bench/results/checkpoints.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RESULTS, ROOT, print_table, write_json

CHILD = r"""
import json, os, resource, sys
from pathlib import Path

def wchar():
    with open("/proc/self/io") as f:
        return int(next(line.split()[1] for line in f if line.startswith("wchar")))

before = wchar()
from emotf import fit
rc = fit.main(sys.argv[1:])
out = Path(sys.argv[sys.argv.index("--out") + 1])
files = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file() and "checkpoints" in p.parts}
print("RESULT " + json.dumps({"rc": rc, "wchar": wchar() - before, "checkpoint_files": files,
                              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def one(code: Path, args: list[str], out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", CHILD, *args, "--out", str(out), "--quiet"], env=env,
                          capture_output=True, text=True, cwd=code)  # its own emotf first on sys.path
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{code}: the run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", nargs="+", default=[str(ROOT)], help="source trees to compare (A B ...)")
    p.add_argument("--arch", default="cnn_rnn")
    p.add_argument("--records", default=str(ROOT / "records" / "synth_iemocap" / "ds2"))
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "checkpoints.json"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            runs: dict[tuple[str, int], dict] = {}
            for epochs in (1, 2):
                for code in args.code:  # alternate the trees
                    fit_args = ["--arch", args.arch, "--records", args.records, "--epochs", str(epochs),
                                "--max-steps-per-epoch", str(args.steps)]
                    out = Path(tmp) / f"{Path(code).resolve().name}-{rep}-e{epochs}"
                    runs[code, epochs] = one(Path(code).resolve(), fit_args, out)
            for code in args.code:
                a, b = runs[code, 1], runs[code, 2]
                rows.append({"code": str(code), "repeat": rep, "arch": args.arch,
                             "MB_per_epoch": round((b["wchar"] - a["wchar"]) / 1e6, 1),
                             "MB_1_epoch_run": round(a["wchar"] / 1e6, 1), "peak_rss_mb": b["peak_rss_mb"],
                             "checkpoint_files": ", ".join(f"{k} {v / 1e6:.1f} MB"
                                                           for k, v in sorted(b["checkpoint_files"].items()))})
    print_table(rows, ["code", "repeat", "arch", "MB_per_epoch", "MB_1_epoch_run", "peak_rss_mb", "checkpoint_files"])
    write_json(args.out, {"rows": rows, "steps": args.steps, "records": args.records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
