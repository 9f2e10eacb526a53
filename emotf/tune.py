"""``python -m emotf.tune``: a KerasTuner search of one architecture on one speaker-independent fold.

    python -m emotf.tune --arch cnn_rnn --records records/ravdess/ds2 --classes 4 --tuner hyperband --max-epochs 9

The objective is validation UA on the fold's validation speakers; the test
speakers are never read. ``OUT`` (default ``tuning/runs/<arch>-<corpus>-<variant>-c<classes>-f<fold>``)
receives the KerasTuner project (``search/``), ``config.json``,
``results.csv``/``results.md`` (trials ranked by validation UA), ``best_hparams.json``
and TensorBoard logs with the hparams view. Run the same command again to
continue an interrupted search. Then retrain and test the best configuration:

    python -m emotf.fit --arch cnn_rnn --records records/ravdess/ds2 --classes 4 --hparams OUT/best_hparams.json

A search runs its trials in a series of processes, ``--trials-per-process`` each
(default 10): TensorFlow keeps some memory of every trained model for the life of
the process, so a long search in one process would grow without bound.

Distributed search: start one chief and any number of workers with the same
command and ``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``, ``tuner1``, ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set (docs/tuning.md).
The flags are those of ``python -m emotf.fit`` (`emotf.config.TrainConfig`) but
for the ones the search chooses (`emotf.tuning.search.NOT_SEARCH_FLAGS`), plus
the search's own (`emotf.tuning.search.SearchConfig`).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys

from emotf import cli
from emotf.records.writer import ensure_default_records
from emotf.tuning import search
from emotf.tuning.search import NOT_SEARCH_FLAGS, SearchConfig

# The exit status of a search process that stopped after its trials_per_process trials
# (EX_TEMPFAIL): the supervising process continues the search in a new process.
EX_RECYCLE = 75
_CHILD_ENV = "EMOTF_TUNE_CHILD"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m emotf.tune", __doc__)
    cli.add_config_flags(p, exclude=NOT_SEARCH_FLAGS, help={
        "out": "search folder (default tuning/runs/<arch>-<corpus>-<variant>-c<classes>-f<fold>)",
        "patience": "early stopping of a trial on validation UA (0: off)"})
    cli.add_config_flags(p, SearchConfig)
    p.add_argument("--overwrite", action="store_true", help="delete a search of another configuration in --out")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    return p


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A search process dies with its supervisor (Linux), so a killed search leaves nothing running."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _supervise(argv: list[str]) -> int:
    """Run the search as a series of ``python -m emotf.tune`` processes until one ends with
    anything but EX_RECYCLE. Only the first may ``--overwrite``: the others continue its search."""
    env = {**os.environ, _CHILD_ENV: "1"}
    part = 1
    while True:
        args = argv if part == 1 else [a for a in argv if a != "--overwrite"]
        rc = subprocess.call([sys.executable, "-m", "emotf.tune", *args], env=env,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        if rc < 0:  # killed by a signal: say so, instead of an exit status nobody reads

            cli.log.error("error: search process %d was killed (%s: out of memory, or by hand); the finished trials "
                          "are kept: run the same command again to resume", part, signal.Signals(-rc).name)
            return 2
        if rc != EX_RECYCLE:
            return rc
        part += 1
        cli.log.info("search process %d", part)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging()

    if args.trials_per_process > 0 and not search.distributed_role() and os.environ.get(_CHILD_ENV) != "1":
        return _supervise(list(sys.argv[1:] if argv is None else argv))
    cli.setup_logging(tensorflow=True)
    try:
        if not args.records:
            args.records = str(ensure_default_records())
        cfg = cli.train_config(args, argv, search=True)
        scfg = cli.config_from_args(args, SearchConfig)
        # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
        from emotf.data.pipeline import named_damage

        with named_damage(cfg.records):
            res = search.run(cfg, scfg, overwrite=args.overwrite, verbose=0 if args.quiet else 1)
    except cli.USER_ERRORS as e:
        return cli.fail(e)
    if res.get("recycle"):
        return EX_RECYCLE
    if res["best"] is None:
        return 0
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.tuning.tuners import format_markdown

    print(format_markdown(res["rows"]))
    print(f"best: trial {res['best']['trial']}, validation UA {res['best']['val_ua']:.4f}; retrain and test with:\n"
          f"  {res['best']['fit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
