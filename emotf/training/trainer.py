"""Train one model on one speaker-independent fold, then test it once (the work of ``python -m emotf.fit``).

The run folder (`emotf.runs`) receives the resolved configuration,
the history, checkpoints, the selected model, the test and validation metrics,
figures and TensorBoard logs. Validation speakers choose the checkpoint and
stop early; the test speakers are scored once, at the end.

Run the same configuration again after a kill and it resumes from the last
finished epoch (``BackupAndRestore``); a finished run is not retrained.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from emotf.config import TrainConfig
from emotf.records.folder import load_records
from emotf.runs import RunDir
from emotf.training import contrastive, runtime

log = logging.getLogger("emotf")


def default_out(cfg: TrainConfig, corpus: str, variant: str) -> str:
    return os.path.join("runs", f"{cfg.arch}-{corpus}-{variant}-c{cfg.classes}-{cfg.split}-f{cfg.fold}")


def _best_of(history: list[dict], key: str, mode: str) -> float | None:
    vals = [float(r[key]) for r in history if key in r and not math.isnan(r[key])]
    if not vals:
        return None
    return max(vals) if mode == "max" else min(vals)


def fit_phase(model, train_ds, val_ds, *, phase: RunDir, epochs: int, steps_per_epoch: int, monitor: str, mode: str,
              batch_size: int, patience: int = 0, tensorboard: bool = False, verbose: int = 2):
    """``model.fit`` with resume, the best epoch's weights and a CSV history that survives kills.

    A resumed phase continues exactly where the killed one stopped (weights, optimizer,
    random generators, early stopping's count and the position in ``train_ds``, an endless
    stream of batches: the epochs already run are skipped in it), so its history and
    metrics equal an uninterrupted run's on the same machine.

    Returns:
        The phase's history, one dict per epoch.
    """
    import keras

    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.training.callbacks import (
        AtomicBackupAndRestore,
        BestWeights,
        Interruptible,
        ResumableEarlyStopping,
        Throughput,
        resume_epoch,
    )

    phase.checkpoints.mkdir(parents=True, exist_ok=True)
    start = resume_epoch(phase.backup)
    past = [r for r in phase.history() if int(r["epoch"]) < start]
    if start:
        log.info("resuming %s at epoch %d of %d", phase.path, start + 1, epochs)
        # Keras keeps one iterator over the stream for all epochs: epoch k begins at batch k * steps
        train_ds = train_ds.skip(start * steps_per_epoch)
    callbacks = [
        Interruptible(),
        Throughput(batch_size),
        BestWeights(phase.best_weights, monitor, mode, initial_value=_best_of(past, monitor, mode)),
        keras.callbacks.CSVLogger(str(phase.history_csv), append=True),
        AtomicBackupAndRestore(str(phase.backup)),
    ]
    if patience:
        callbacks.append(ResumableEarlyStopping(monitor=monitor, mode=mode, patience=patience, history=past))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(phase.tensorboard), write_graph=False, profile_batch=0))
    train_ds, val_ds = runtime.prepare_fit(model, train_ds, val_ds)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
              callbacks=callbacks, verbose=verbose, shuffle=False)
    return phase.history()


def run(cfg: TrainConfig, *, overwrite: bool = False, verbose: int = 2) -> dict[str, Any]:
    """Train, select on validation speakers, test once; returns the metrics dict (also metrics.json).

    Raises:
        ValueError: bad records, an impossible split, or ``out`` holding a run of another configuration.
    """
    info = load_records(cfg.records)
    run_dir = RunDir(cfg.out or default_out(cfg, info.corpus, info.variant))
    place = runtime.worker_role(cfg.strategy)
    if not place.chief:
        # Every worker trains; only the chief writes the run folder. This one works in a private mirror of it.
        if run_dir.is_finished:
            return run_dir.metrics()
        run_dir = _private_mirror(run_dir, place.index)
    run_dir.claim(cfg.to_dict(), overwrite, defaults=TrainConfig().to_dict())
    if run_dir.is_finished:
        log.info("%s is a finished run; its metrics.json stands (--overwrite retrains)", run_dir.path)
        return run_dir.metrics()

    import keras

    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf import models
    from emotf.training import experiment
    from emotf.training.callbacks import load_weights_file

    rt = runtime.configure(mixed_precision=cfg.mixed_precision, strategy=cfg.strategy, jit_compile=cfg.jit_compile,
                           logical_cpus=cfg.logical_cpus, arch=cfg.arch)
    keras.utils.set_random_seed(cfg.seed)
    exp = experiment.prepare(cfg, info)
    num_classes = len(exp.class_names)
    run_dir.write_config({"out": str(run_dir.path), "config": cfg.to_dict(), "num_epochs": cfg.num_epochs,
                          **exp.describe(), "runtime": rt.describe(), "versions": runtime.versions()})
    with rt.strategy.scope():
        model, encoders = models.build(cfg.arch, exp.shapes, num_classes, audio_arch=cfg.audio_arch,
                                       colormap=cfg.colormap, augment=cfg.augment, sample_rate=info.sample_rate,
                                       **cfg.model)
        steps = exp.steps_per_epoch(cfg.max_steps_per_epoch)
        if not run_dir.is_trained and cfg.head_fit == "linear":
            from emotf.training import linear_head  # imports Keras: deferred, as above

            head = linear_head.fit(model, exp, refit=cfg.refit == "on", views=cfg.views)
            _compile(model, cfg, num_classes, rt, steps)
            model.save(str(run_dir.model_file))
            run_dir.mark_done({"epochs_run": 0, "head_fit": head})
        elif not run_dir.is_trained:
            if encoders is not None and cfg.pretrain_epochs:
                _pretrain(cfg, exp, encoders, run_dir.pretrain, rt, verbose)
            _compile(model, cfg, num_classes, rt, steps)
            history = fit_phase(model, exp.train_dataset(), exp.eval_dataset("val"), phase=run_dir,
                                epochs=cfg.num_epochs, steps_per_epoch=steps, monitor="val_ua", mode="max",
                                batch_size=cfg.batch_size, patience=cfg.patience, tensorboard=True, verbose=verbose)
            if cfg.select == "best" and run_dir.best_weights.is_file():
                load_weights_file(model, run_dir.best_weights)
            model.save(str(run_dir.model_file))
            run_dir.mark_done({"epochs_run": len(history), "select": cfg.select})
        else:
            model = keras.saving.load_model(str(run_dir.model_file), compile=False)
            _compile(model, cfg, num_classes, rt, steps)
    history = run_dir.history()
    run_dir.write_history(history)
    result = _evaluate_and_report(model, cfg, exp, history, run_dir)
    run_dir.clear_backup()
    if not place.chief:
        shutil.rmtree(run_dir.path, ignore_errors=True)
    return result


def _private_mirror(chief: RunDir, index: int) -> RunDir:
    """A non-chief worker's run folder (`runtime.worker_folder`), holding a copy of the chief's training state
    (backups, histories, a finished pre-training), so that a restarted cluster resumes every worker from the
    same epoch. Copied before the first step, when the chief cannot be writing them (it waits for this worker
    at every step)."""
    mine = RunDir(runtime.worker_folder(chief.path, index))
    mine.path.mkdir(parents=True)
    for src, dst in ((chief, mine), (chief.pretrain, mine.pretrain)):
        for name in (src.backup, src.history_csv, src.done_file, src.model_file, src.encoder_weights("audio"),
                     src.encoder_weights("video")):
            target = dst.path / Path(name).relative_to(src.path)
            if Path(name).is_dir():
                shutil.copytree(name, target)
            elif Path(name).is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(name, target)
    log.info("worker %d: training state mirrored from %s into %s", index, chief.path, mine.path)
    return mine


def _compile(model, cfg: TrainConfig, num_classes: int, rt, steps_per_epoch: int) -> None:
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.training.objectives import compile_classifier, learning_rate

    lr = learning_rate(cfg.lr, cfg.lr_schedule, epochs=cfg.num_epochs, warmup_epochs=cfg.warmup_epochs,
                       steps_per_epoch=steps_per_epoch)
    compile_classifier(model, num_classes=num_classes, lr=lr, weight_decay=cfg.weight_decay,
                       jit_compile=rt.jit_compile, soft_labels="mixup" in cfg.augment)


def _pretrain(cfg: TrainConfig, exp, encoders, phase: RunDir, rt, verbose: int) -> None:
    """Contrastive pre-training of the two encoders, resumable, done once (``RUN/pretrain``)."""
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.training.callbacks import load_weights_file

    if phase.is_trained:
        encoders[0].load_weights(str(phase.encoder_weights("audio")))
        encoders[1].load_weights(str(phase.encoder_weights("video")))
        log.info("contrastive pre-training already done; encoders loaded from %s", phase.path)
        return
    phase.path.mkdir(parents=True, exist_ok=True)
    siamese = contrastive.siamese(encoders, exp.shapes, margin=cfg.margin, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  jit_compile=rt.jit_compile)
    data = contrastive.pair_streams(exp, cfg)
    log.info("contrastive pre-training: %d epochs of %d steps, margin %.2f", cfg.pretrain_epochs, data["steps"],
             cfg.margin)
    history = fit_phase(siamese, data["train"], data["val"], phase=phase, epochs=cfg.pretrain_epochs,
                        steps_per_epoch=data["steps"], monitor="val_loss", mode="min", batch_size=cfg.batch_size,
                        verbose=verbose)
    if phase.best_weights.is_file():
        load_weights_file(siamese, phase.best_weights)
    encoders[0].save_weights(str(phase.encoder_weights("audio")))
    encoders[1].save_weights(str(phase.encoder_weights("video")))
    phase.clear_backup()
    phase.mark_done({"epochs": len(history), "history": history})


def _evaluate_and_report(model, cfg: TrainConfig, exp, history, run_dir: RunDir) -> dict[str, Any]:
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.evaluation import adaptation, plots, scoring

    info, split, class_names = exp.info, exp.split, exp.class_names
    result: dict[str, Any] = {"arch": cfg.arch, "records": str(info.root), "corpus": info.corpus,
                              "variant": info.variant, "split": split.to_dict(), "class_names": list(class_names),
                              "counts": exp.counts}
    head = run_dir.done_info().get("head_fit")
    if head:  # the linear head: its choice of L2 strength on validation, and that fit's validation score
        result["head_fit"] = {k: v for k, v in head.items() if k != "validation"}
    for part, name in (("val", "validation"), ("test", "test")):
        if part == "val" and head and head["refit"]:  # refitted on these speakers: their score before the refit
            result[name] = head["validation"]
        else:
            result[name] = scoring.score(scoring.predict_records(model, exp.eval_dataset(part, with_meta=True)),
                                         class_names)
        log.info("%s", scoring.summary_line(name, result[name]))
    # where the model allows it, the test speakers also scored with speaker adaptation (no label used; not the headline)
    adapted = adaptation.adapted_score(model, info, split.test, exp.pipeline, class_names)
    if adapted is not None:
        result["test_speaker_adapted"] = adapted
        log.info("%s", scoring.summary_line("test, speaker-adapted", adapted))
    speeds = [h["train_samples_per_s"] for h in history if "train_samples_per_s" in h]
    result["train_samples_per_s"] = float(sorted(speeds)[len(speeds) // 2]) if speeds else None
    result["epochs_run"] = len(history)
    if history and cfg.select == "best" and "val_ua" in history[0]:
        best = max(history, key=lambda h: h["val_ua"])
        result["selected_epoch"] = int(best["epoch"]) + 1
    else:
        result["selected_epoch"] = len(history)
    result["params"] = int(model.count_params())
    title = f"{cfg.arch} · {info.corpus}/{info.variant} · {split.scheme} --fold {split.fold}"
    plots.confusion_png(result["test"]["confusion_matrix"], class_names, run_dir.figure("confusion_test"),
                        title=f"{title} · test UA {result['test']['ua']:.3f}")
    plots.confusion_png(result["validation"]["confusion_matrix"], class_names, run_dir.figure("confusion_val"),
                        title=f"{title} · validation UA {result['validation']['ua']:.3f}")
    if history:
        plots.curves_png(history, run_dir.figure("curves"), title=title)
    _hparams_summary(cfg, result, run_dir.tensorboard / "hparams", trial_id=run_dir.path.name)
    run_dir.write_metrics(result)
    return result


def _hparams_summary(cfg: TrainConfig, result: dict, logdir: Path, trial_id: str) -> None:
    """One TensorBoard hparams session: the run's settings and its selected-epoch figures."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = {"arch": cfg.arch, "classes": cfg.classes, "fold": cfg.fold, "lr": cfg.lr,
              "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "balance": cfg.balance,
              "augment": ",".join(cfg.augment) or "none", "pretrain_epochs": cfg.pretrain_epochs,
              **{f"model.{k}": (v if isinstance(v, int | float | str | bool) else json.dumps(v))
                 for k, v in cfg.model.items()}}
    scalars = {"test/wa": result["test"]["wa"], "test/ua": result["test"]["ua"],
               "test/macro_f1": result["test"]["macro_f1"], "validation/wa": result["validation"]["wa"],
               "validation/ua": result["validation"]["ua"]}
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in values], metrics=[hp.Metric(k) for k in scalars])
        hp.hparams(values, trial_id=trial_id)
        for k, v in scalars.items():
            if not math.isnan(v):
                tf.summary.scalar(k, v, step=0)
