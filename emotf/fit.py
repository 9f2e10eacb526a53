"""``python -m emotf.fit``: train one model on one speaker-independent fold, then test it once.

    python -m emotf.fit --arch cnn_rnn --records records/ravdess/ds2 --classes 4 --fold 0
    python -m emotf.fit --arch cnn_rnn        # no --records: the embedded synthetic corpus

The run folder (``--out``, default ``runs/<arch>-<corpus>-<variant>-c<classes>-<split>-f<fold>``)
receives ``config.json`` (the resolved configuration, the split and the runtime),
``history.json``/``history.csv``, ``checkpoints/`` (the best epoch's weights),
``model.keras`` (the selected weights), ``metrics.json`` (test and validation WA,
UA, macro-F1, per-class figures and confusion matrices, per clip and per
utterance), ``confusion_test.png``, ``curves.png`` and ``tensorboard/`` (scalars
and the hparams view); its layout is `emotf.runs`. Validation speakers
choose the checkpoint and stop early; the test speakers are scored once, at the end.

Run the same command again after a kill and it resumes from the last finished
epoch; a finished run is not retrained. Every flag is a field of
`emotf.config.TrainConfig`; the work is `emotf.training.trainer.run`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from emotf import cli, interrupts
from emotf.records.writer import ensure_default_records
from emotf.training import trainer


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m emotf.fit", __doc__)
    cli.add_config_flags(p, help={"out": "run folder (default runs/<arch>-<corpus>-<variant>-c<classes>-<split>-"
                                         "f<fold>)"})
    p.add_argument("--hparams", default="", help="JSON of hyperparameters (e.g. a tuner's best_hparams.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a run of another configuration in --out")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging(tensorflow=True)
    interrupts.install()
    try:
        # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
        from emotf.data.pipeline import named_damage

        if not args.records:
            args.records = str(ensure_default_records())
        cfg = cli.train_config(args, argv, hparams=args.hparams)
        # a progress bar within each epoch on a terminal, one line per epoch in a log
        verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
        with named_damage(cfg.records):
            result = trainer.run(cfg, overwrite=args.overwrite, verbose=verbose)
    except cli.USER_ERRORS as e:
        return cli.fail(e)
    except KeyboardInterrupt:
        return cli.interrupted("the finished epochs are kept; run the same command again to resume")
    except Exception as e:
        if type(e).__name__ not in ("UnavailableError", "AbortedError") or "TF_CONFIG" not in os.environ:
            raise
        # MultiWorkerMirroredStrategy: a peer died or was restarted; the collectives of this step cannot finish
        peer = next((line.strip() for line in str(e).splitlines() if "/job:" in line), str(e).splitlines()[0])
        return cli.fail(RuntimeError(f"a worker of the cluster was lost ({peer[:200]}); the finished epochs are "
                                     f"kept: start every worker again with the same command to resume"))
    print(json.dumps({"test": {k: result["test"][k] for k in ("wa", "ua", "macro_f1", "n")},
                      "validation": {k: result["validation"][k] for k in ("wa", "ua", "macro_f1", "n")},
                      "train_samples_per_s": result.get("train_samples_per_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
