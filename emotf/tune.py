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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from emotf.config import TRAIN_ARCHS, TrainConfig

log = logging.getLogger("emotf")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The search itself; the data, split and runtime fields come from a TrainConfig."""

    tuner: str = "hyperband"
    max_trials: int = 10
    max_epochs: int = 9
    factor: int = 3
    executions_per_trial: int = 1
    patience: int = 0
    trials_per_process: int = 10

    def __post_init__(self):
        if self.tuner not in ("hyperband", "bayesian", "random"):
            raise ValueError(f"tuner must be hyperband, bayesian or random. Received: {self.tuner!r}")
        if min(self.max_trials, self.max_epochs, self.executions_per_trial) < 1 or self.factor < 2:
            raise ValueError("max_trials, max_epochs and executions_per_trial must be >= 1, factor >= 2")
        if self.trials_per_process < 0 or self.patience < 0:
            raise ValueError("trials_per_process and patience must be >= 0")


# The exit status of a search process that stopped after its trials_per_process trials
# (EX_TEMPFAIL): the supervising ``main`` continues the search in a new process.
EX_RECYCLE = 75
_CHILD_ENV = "EMOTF_TUNE_CHILD"


def default_out(cfg: TrainConfig, corpus: str, variant: str) -> str:
    return os.path.join("tuning", "runs", f"{cfg.arch}-{corpus}-{variant}-c{cfg.classes}-f{cfg.fold}")


def _distributed_role() -> str:
    """"chief", "worker" or "" (not distributed), from the KERASTUNER_* variables."""
    tid = os.environ.get("KERASTUNER_TUNER_ID", "")
    if not tid or "KERASTUNER_ORACLE_IP" not in os.environ:
        return ""
    return "chief" if tid == "chief" else "worker"


def run(cfg: TrainConfig, scfg: SearchConfig, *, overwrite: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Search; returns {"rows": ranked trials, "best": best hparams or None} (the chief or a lone tuner).

    After ``scfg.trials_per_process`` trials (0: no limit; ignored in a distributed
    search) it returns {"recycle": True, ...} instead: the search is saved, and the
    same call in a new process continues it (``main`` does this).
    """
    import keras

    from emotf import data, experiment, runtime
    from tuning import hypermodels, search

    info = data.load_records(cfg.records)
    out = Path(cfg.out or default_out(cfg, info.corpus, info.variant))
    role = _distributed_role()
    config = {**cfg.to_dict(), **{f"search.{k}": v for k, v in dataclasses.asdict(scfg).items()}}
    if role != "worker":  # workers share the chief's folder and never delete it
        # More trials extend a search; any other change is another search.
        experiment.claim_output(out, config, overwrite,
                                ignore=("out", "search.max_trials", "search.trials_per_process"))
    rt = runtime.configure(mixed_precision=cfg.mixed_precision, strategy=cfg.strategy, jit_compile=cfg.jit_compile,
                           logical_cpus=cfg.logical_cpus)
    keras.utils.set_random_seed(cfg.seed)
    ex = experiment.prepare(cfg, info)
    if role != "worker":
        (out / "config.json").write_text(json.dumps(
            {"out": str(out), "config": config, **ex.describe(), "runtime": rt.describe(),
             "versions": experiment.versions()}, indent=2, default=list))
    extra = {"audio_arch": cfg.audio_arch} if cfg.arch == "av" else {}
    # XLA's compiled executables outlive clear_session: with XLA each trial kept about 40 MB more
    # (tests/test_tuning.py measures it), so a search compiles with XLA only when asked (--jit-compile on).
    jit = cfg.jit_compile == "on"
    hypermodel = hypermodels.get_hypermodel(cfg.arch, ex.shapes, len(ex.class_names), jit_compile=jit, **extra)
    tuner = search.make_tuner(scfg.tuner, hypermodel, out, max_trials=scfg.max_trials, max_epochs=scfg.max_epochs,
                              factor=scfg.factor, executions_per_trial=scfg.executions_per_trial,
                              overwrite=False, seed=cfg.seed,
                              distribution_strategy=rt.strategy if cfg.strategy != "default" else None,
                              trials_per_process=0 if role else scfg.trials_per_process)
    fit_kwargs: dict[str, Any] = {}
    if cfg.arch == "av" and cfg.pretrain_epochs:
        pairs = {"hard": cfg.hard_fraction, "super_hard": cfg.super_hard_fraction}
        fit_kwargs["pretrain"] = (data.train_dataset(ex.info, ex.split.train, ex.pipeline, pairs=pairs,
                                                     drop_remainder=True),
                                  ex.steps_per_epoch(cfg.max_steps_per_epoch, drop_remainder=True),
                                  cfg.pretrain_epochs)
    callbacks = [keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)]
    if scfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_ua", mode="max", patience=scfg.patience))
    try:
        tuner.search(data.train_dataset(ex.info, ex.split.train, ex.pipeline),
                     steps_per_epoch=ex.steps_per_epoch(cfg.max_steps_per_epoch),
                     validation_data=data.eval_dataset(ex.info, ex.split.val, ex.pipeline),
                     epochs=scfg.max_epochs, callbacks=callbacks, verbose=verbose, shuffle=False, **fit_kwargs)
    except search.ProcessRecycle as e:
        log.info("%s; the search continues in a new process", e)
        return {"rows": [], "best": None, "recycle": True}
    if role == "worker":
        return {"rows": [], "best": None}
    return write_results(tuner, hypermodel, cfg, out)


def write_results(tuner, hypermodel, cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """results.csv, results.md and best_hparams.json from the tuner's completed trials."""
    from tuning import search

    rows = search.results_table(tuner)
    search.write_csv(rows, out / "results.csv")
    (out / "results.md").write_text(search.format_markdown(rows))
    best = None
    if rows:
        hp = tuner.oracle.trials[rows[0]["trial"]].hyperparameters.copy()
        train, builder = hypermodel.resolve(hp)
        best = {"arch": cfg.arch, "trial": rows[0]["trial"], "val_ua": rows[0]["val_ua"],
                "val_wa": rows[0]["val_wa"], "search_values": rows[0]["hparams"], "hparams": {**train, **builder},
                "fit": f"python -m emotf.fit --arch {cfg.arch} --records {cfg.records} --classes {cfg.classes} "
                       f"--split {cfg.split} --fold {cfg.fold} --hparams {out / 'best_hparams.json'}"}
        (out / "best_hparams.json").write_text(json.dumps(best, indent=2))
    return {"rows": rows, "best": best}


def build_parser() -> argparse.ArgumentParser:
    from emotf.fit import add_runtime_arguments

    d, s = TrainConfig(), SearchConfig()
    p = argparse.ArgumentParser(prog="python -m emotf.tune", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--arch", default=d.arch, choices=TRAIN_ARCHS)
    p.add_argument("--records", default="", help="records folder; empty: the embedded synthetic corpus")
    p.add_argument("--out", default="", help="search folder (default tuning/runs/<arch>-<corpus>-<variant>-c<classes>"
                                             "-f<fold>)")
    p.add_argument("--tuner", default=s.tuner, choices=["hyperband", "bayesian", "random"])
    p.add_argument("--max-trials", type=int, default=s.max_trials, help="bayesian / random")
    p.add_argument("--max-epochs", type=int, default=s.max_epochs, help="epochs per trial (hyperband: the most)")
    p.add_argument("--factor", type=int, default=s.factor, help="hyperband reduction factor")
    p.add_argument("--executions-per-trial", type=int, default=s.executions_per_trial)
    p.add_argument("--patience", type=int, default=s.patience, help="early stopping of a trial on val UA (0: off)")
    p.add_argument("--trials-per-process", type=int, default=s.trials_per_process,
                   help="run the search in a series of processes of this many trials each, which bounds memory "
                        "(0: all in this process)")
    p.add_argument("--classes", default=d.classes, choices=["all", "4", "3"])
    p.add_argument("--split", default=d.split, choices=["auto", "loso", "speaker-folds", "actor-folds", "lospo"])
    p.add_argument("--fold", type=int, default=d.fold)
    p.add_argument("--folds", type=int, default=d.folds)
    p.add_argument("--val", default=d.val, choices=["speaker", "session"])
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="av: contrastive pre-training")
    p.add_argument("--audio-arch", default=d.audio_arch, choices=["cnn", "cnn_rnn", "cnn_lstm", "crnn"])
    p.add_argument("--balance", default=d.balance, choices=["resample", "none"])
    p.add_argument("--cache", default=d.cache, choices=["auto", "memory", "off"])
    add_runtime_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="delete a search of another configuration in --out")
    p.add_argument("--quiet", action="store_true")
    return p


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A search process dies with its supervisor (Linux), so a killed search leaves nothing running."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _supervise(argv: list[str]) -> int:
    """Run the search as a series of ``python -m emotf.tune`` processes until one ends with
    anything but EX_RECYCLE. Only the first may ``--overwrite``: the others continue its search."""
    import subprocess

    env = {**os.environ, _CHILD_ENV: "1"}
    part = 1
    while True:
        args = argv if part == 1 else [a for a in argv if a != "--overwrite"]
        rc = subprocess.call([sys.executable, "-m", "emotf.tune", *args], env=env,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        if rc != EX_RECYCLE:
            return rc
        part += 1
        log.info("search process %d", part)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.trials_per_process > 0 and not _distributed_role() and os.environ.get(_CHILD_ENV) != "1":
        return _supervise(list(sys.argv[1:] if argv is None else argv))
    try:
        if not args.records:
            from emotf.fit import ensure_default_records

            args.records = ensure_default_records()
        fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and k != "patience"}
        cfg = TrainConfig(**fields)
        scfg = SearchConfig(tuner=args.tuner, max_trials=args.max_trials, max_epochs=args.max_epochs,
                            factor=args.factor, executions_per_trial=args.executions_per_trial,
                            patience=args.patience, trials_per_process=args.trials_per_process)
        res = run(cfg, scfg, overwrite=args.overwrite, verbose=0 if args.quiet else 1)
    except (ValueError, FileNotFoundError) as e:
        log.error("error: %s", e)
        return 2
    if res.get("recycle"):
        return EX_RECYCLE
    if res["best"] is None:
        return 0
    from tuning.search import format_markdown

    print(format_markdown(res["rows"]))
    print(f"best: trial {res['best']['trial']}, validation UA {res['best']['val_ua']:.4f}; retrain and test with:\n"
          f"  {res['best']['fit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
