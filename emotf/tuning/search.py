"""A KerasTuner search of one architecture on one speaker-independent fold (the work of ``python -m emotf.tune``).

The objective is validation UA on the fold's validation speakers; the test
speakers are never read. The search folder (default
``tuning/runs/<arch>-<corpus>-<variant>-c<classes>-f<fold>``) receives the
KerasTuner project (``search/``), ``config.json``, ``results.csv``/``results.md``
(trials ranked by validation UA), ``best_hparams.json`` and TensorBoard logs
with the hparams view. The same call again continues an interrupted search.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from emotf.config import TrainConfig, option
from emotf.records.folder import load_records
from emotf.runs import RunDir, claim_folder
from emotf.training import runtime

log = logging.getLogger("emotf")
TUNERS = ("hyperband", "bayesian", "random")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The search itself; the data, split and runtime fields come from a TrainConfig (early stopping of a
    trial is its ``patience``)."""

    tuner: str = option("hyperband", "KerasTuner tuner", TUNERS)
    max_trials: int = option(10, "trials (bayesian, random)")
    max_epochs: int = option(9, "epochs per trial (hyperband: the most)")
    factor: int = option(3, "hyperband reduction factor")
    executions_per_trial: int = option(1, "trainings averaged per trial")
    trials_per_process: int = option(10, "run the search in a series of processes of this many trials each, which "
                                         "bounds memory (0: all in this process)")

    def __post_init__(self):
        if self.tuner not in TUNERS:
            raise ValueError(f"tuner must be one of {list(TUNERS)}. Received: {self.tuner!r}")
        if min(self.max_trials, self.max_epochs, self.executions_per_trial) < 1 or self.factor < 2:
            raise ValueError("max_trials, max_epochs and executions_per_trial must be >= 1, factor >= 2")
        if self.trials_per_process < 0:
            raise ValueError("trials_per_process must be >= 0")


# TrainConfig fields that are not flags of a search: the space chooses these (a trial's learning rate is
# constant), and a trial's epochs and checkpoint are the tuner's.
NOT_SEARCH_FLAGS = ("lr", "weight_decay", "margin", "lr_schedule", "warmup_epochs", "epochs", "select")


def default_out(cfg: TrainConfig, corpus: str, variant: str) -> str:
    return os.path.join("tuning", "runs", f"{cfg.arch}-{corpus}-{variant}-c{cfg.classes}-f{cfg.fold}")


def distributed_role() -> str:
    """"chief", "worker" or "" (not distributed), from the KERASTUNER_* variables."""
    tid = os.environ.get("KERASTUNER_TUNER_ID", "")
    if not tid or "KERASTUNER_ORACLE_IP" not in os.environ:
        return ""
    return "chief" if tid == "chief" else "worker"


def run(cfg: TrainConfig, scfg: SearchConfig, *, overwrite: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Search; returns {"rows": ranked trials, "best": best hparams or None} (the chief or a lone tuner).

    After ``scfg.trials_per_process`` trials (0: no limit; ignored in a distributed
    search) it returns {"recycle": True, ...} instead: the search is saved, and the
    same call in a new process continues it (``python -m emotf.tune`` does this).
    """
    if cfg.head_fit != "stream":
        raise ValueError("a search trains each trial's head by streaming (--head-fit stream); --head-fit linear "
                         "chooses its own L2 strength on validation: train it with python -m emotf.fit")
    import keras

    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.training import contrastive, experiment, runtime
    from emotf.tuning import hypermodels, tuners

    info = load_records(cfg.records)
    out = Path(cfg.out or default_out(cfg, info.corpus, info.variant))
    tuner_role = distributed_role()
    place = runtime.worker_role(cfg.strategy)
    if not place.chief:  # a worker of a multi-worker trial: the same search, in a private mirror of the chief's folder
        out = _private_mirror(out, place.index)
    config = {**cfg.to_dict(), **{f"search.{k}": v for k, v in dataclasses.asdict(scfg).items()}}
    if tuner_role != "worker":  # workers share the chief's folder and never delete it
        # More trials extend a search; any other change is another search.
        claim_folder(out, config, overwrite, ignore=("out", "search.max_trials", "search.trials_per_process"))
    rt = runtime.configure(mixed_precision=cfg.mixed_precision, strategy=cfg.strategy, jit_compile=cfg.jit_compile,
                           logical_cpus=cfg.logical_cpus, search=True)
    keras.utils.set_random_seed(cfg.seed)
    exp = experiment.prepare(cfg, info)
    if tuner_role != "worker":
        RunDir(out).write_config({"out": str(out), "config": config, **exp.describe(), "runtime": rt.describe(),
                                  "versions": runtime.versions()})
    extra = {"audio_arch": cfg.audio_arch} if cfg.modality == "av" else {}
    hypermodel = hypermodels.get_hypermodel(cfg.arch, exp.shapes, len(exp.class_names), jit_compile=rt.jit_compile,
                                            colormap=cfg.colormap, augment=cfg.augment,
                                            sample_rate=info.sample_rate, **extra)
    try:  # KerasTuner reloads a search's state here, from JSON files a kill or a full disk may have cut short
        tuner = tuners.make_tuner(scfg.tuner, hypermodel, out, max_trials=scfg.max_trials,
                                  max_epochs=scfg.max_epochs, factor=scfg.factor,
                                  executions_per_trial=scfg.executions_per_trial, overwrite=False, seed=cfg.seed,
                                  distribution_strategy=rt.strategy if cfg.strategy != "default" else None,
                                  trials_per_process=0 if tuner_role else scfg.trials_per_process)
    except (ValueError, KeyError) as e:
        damaged = damaged_state(out)
        if not damaged:
            raise
        path, why = damaged[0]
        raise ValueError(f"{path}: damaged ({why}), so the search in {out} cannot resume"
                         f"{f' (and {len(damaged) - 1} more file(s))' if len(damaged) > 1 else ''}: restore it, or "
                         f"start the search again with --overwrite (its finished trials are lost)") from e
    fit_kwargs: dict[str, Any] = {}
    if cfg.modality == "av" and cfg.pretrain_epochs:
        pairs = contrastive.pair_streams(exp, cfg)
        fit_kwargs["pretrain"] = (pairs["train"], pairs["steps"], cfg.pretrain_epochs)
    callbacks = [keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)]
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_ua", mode="max", patience=cfg.patience))
    try:
        tuner.search(exp.train_dataset(), steps_per_epoch=exp.steps_per_epoch(cfg.max_steps_per_epoch),
                     validation_data=exp.eval_dataset("val"), epochs=scfg.max_epochs, callbacks=callbacks,
                     verbose=verbose, shuffle=False, **fit_kwargs)
    except tuners.ProcessRecycle as e:
        log.info("%s; the search continues in a new process", e)
        return {"rows": [], "best": None, "recycle": True}
    if tuner_role == "worker":
        return {"rows": [], "best": None}
    if not place.chief:
        shutil.rmtree(out, ignore_errors=True)
        return {"rows": [], "best": None}
    return write_results(tuner, hypermodel, cfg, out)


def _private_mirror(chief: Path, index: int) -> Path:
    """A multi-worker search's folder for a non-chief worker (`runtime.worker_folder`), with a copy of the
    chief's search state (its trials, so that a restarted search resumes every worker at the same trial); every
    worker runs the same trials in step (the same seed), only the chief's folder is the search's."""
    for _ in range(5):  # the chief may be writing a JSON file as it is copied: copy again until all parse
        mine = runtime.worker_folder(chief, index)
        if chief.is_dir():
            shutil.copytree(chief, mine, ignore=shutil.ignore_patterns("tensorboard", "*.tmp"))
        if not damaged_state(mine):
            break
        time.sleep(1)
    mine.mkdir(parents=True, exist_ok=True)
    log.info("worker %d: search state mirrored from %s into %s", index, chief, mine)
    return mine


def damaged_state(out: Path) -> list[tuple[Path, str]]:
    """The JSON files of a search folder that do not parse: (path, why)."""
    bad = []
    for path in sorted(Path(out).rglob("*.json")):
        try:
            json.loads(path.read_text())
        except (ValueError, OSError) as e:
            bad.append((path, str(e)))
    return bad


def write_results(tuner, hypermodel, cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """results.csv, results.md and best_hparams.json from the tuner's completed trials."""
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.tuning import tuners

    rows = tuners.results_table(tuner)
    tuners.write_csv(rows, out / "results.csv")
    (out / "results.md").write_text(tuners.format_markdown(rows))
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
