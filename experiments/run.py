"""Fill the results grid: train (and cross-evaluate) what is missing, in order, resumably.

    python -m experiments.run                       # every missing job of the grid (or: make results)
    python -m experiments.run --section grid --arch crnn --classes all --max-runs 2
    python -m experiments.run --archive             # only copy finished run folders (e.g. made by hand) into the ledger

Each job is a ``python -m emotf.fit`` or ``python -m emotf.evaluate`` command
(`experiments.plan`), run in its own process and printed first; a finished run
folder is skipped by ``emotf.fit`` itself and a killed one resumes. Every
finished job is copied into the ledger (`experiments.ledger`).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Iterable, Sequence

from emotf.runs import RunDir
from experiments import ledger
from experiments.plan import PLAN, Cell, Job, add_filters, jobs, select

log = logging.getLogger("emotf")


def run(plan: Sequence[Cell], sections: Iterable[str] = (), *, max_jobs: int = 0, dry_run: bool = False) -> int:
    """Run the missing jobs of the plan in order, each in its own process; returns how many ran.

    Cross-corpus evaluations of models already trained run before any training. A job
    whose result is in the ledger is done; a cross-corpus evaluation whose model is
    not on disk (the fold's numbers came from the ledger) retrains that fold first.
    Every finished job is archived into the ledger.

    A separate process per run keeps memory flat (TensorFlow keeps every traced
    train function for the life of a process) and lets a kill lose one run at most,
    which ``emotf.fit`` resumes.

    Raises:
        subprocess.CalledProcessError: a run failed (the grid stops there; its log says why).
    """
    done = 0
    order = jobs(plan, sections)
    # Scoring a finished model takes seconds, training one many minutes: ready evaluations go first.
    ready = [j for j in order if j.kind != "fit" and RunDir(j.out).is_finished]
    for job in ready + [j for j in order if j not in ready]:
        if job.is_done():
            continue
        if max_jobs and done >= max_jobs:
            break
        steps = [job]
        if job.kind != "fit" and not RunDir(job.out).is_finished:
            steps.insert(0, Job(job.cell, job.fold, "fit"))
        for step in steps:
            argv = step.argv()
            print("$ " + " ".join(argv), flush=True)
            if not dry_run:
                subprocess.run([sys.executable, *argv[1:], *(["--quiet"] if step.kind == "fit" else [])],
                               check=True)
                ledger.archive(step.out)
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.split("\n\n")[0])
    add_filters(p)
    p.add_argument("--max-runs", type=int, default=0, help="stop after this many (0: all)")
    p.add_argument("--archive", action="store_true",
                   help="run nothing: copy every finished run folder of these rows into the ledger")
    args = p.parse_args(argv)
    cells = select(PLAN, archs=args.arch, classes=args.classes)
    if args.archive:
        cells = [c for c in cells if not args.section or c.section in args.section]
        print(f"{ledger.archive_plan(cells)} file(s) copied into {ledger.LEDGER}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        n = run(cells, args.section, max_jobs=args.max_runs)
    except subprocess.CalledProcessError as e:
        log.error("error: %s failed with status %s", " ".join(map(str, e.cmd)), e.returncode)
        return 1
    print(f"{n} run(s) done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
