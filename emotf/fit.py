"""``python -m emotf.fit``: train one model on one speaker-independent fold, then test it once.

    python -m emotf.fit --arch cnn_rnn --records records/ravdess/ds2 --classes 4 --fold 0

The run directory (``--out``) receives ``config.json`` (the resolved
configuration, the split and the runtime), ``history.json``/``history.csv``,
``checkpoints/`` (best and last weights), ``model.keras`` (the selected
weights), ``metrics.json`` (test and validation WA, UA, macro-F1, per-class
figures and confusion matrices, per clip and per utterance),
``confusion_test.png``, ``curves.png`` and ``tensorboard/`` (scalars and the
hparams view). Validation speakers choose the checkpoint and stop early; the
test speakers are scored once, at the end.

Run the same command again after a kill and it resumes from the last finished
epoch (``BackupAndRestore``); a finished run is not retrained.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from emotf.config import TRAIN_ARCHS, TrainConfig

log = logging.getLogger("emotf")

# --------------------------------------------------------------------------- configuration

def default_out(cfg: TrainConfig, corpus: str, variant: str) -> str:
    return os.path.join("runs", f"{cfg.arch}-{corpus}-{variant}-c{cfg.classes}-{cfg.split}-f{cfg.fold}")


def _load_hparams(path: str) -> dict[str, Any]:
    try:
        hp = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read hyperparameters: {e}") from None
    return hp.get("hparams", hp) if isinstance(hp, dict) else {}


def config_from_args(args: argparse.Namespace, argv: list[str] | None = None) -> TrainConfig:
    """CLI flags → TrainConfig; ``--hparams`` values fill fields they name, the rest become builder arguments.

    A flag given explicitly in ``argv`` wins over the same key in ``--hparams``.
    """
    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    fields["augment"] = tuple(a for a in (args.augment or "").split(",") if a and a != "none")
    model: dict[str, Any] = {}
    if args.hparams:
        explicit = {a.split("=")[0] for a in (sys.argv[1:] if argv is None else argv) if a.startswith("--")}
        for k, v in _load_hparams(args.hparams).items():
            if k in TrainConfig.__dataclass_fields__ and k not in ("model", "arch"):
                if f"--{k.replace('_', '-')}" not in explicit:  # a flag on the command line wins
                    fields[k] = v
            elif k != "arch":
                model[k] = v
    fields["model"] = model
    return TrainConfig(**fields)


# --------------------------------------------------------------------------- callbacks

def _best_so_far(csv_path: Path, key: str, mode: str) -> float | None:
    rows = read_history(csv_path)
    vals = [float(r[key]) for r in rows if key in r and r[key] not in ("", "nan")]
    if not vals:
        return None
    return max(vals) if mode == "max" else min(vals)


def read_history(csv_path: Path) -> list[dict[str, float]]:
    """history.csv → one dict per epoch; a row repeated by a resumed run keeps its last copy."""
    if not csv_path.is_file():
        return []
    by_epoch: dict[int, dict[str, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                by_epoch[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v not in ("", None)}
            except (KeyError, ValueError):
                continue
    return [by_epoch[e] for e in sorted(by_epoch)]


def _fit_phase(model, train_ds, val_ds, *, epochs: int, steps_per_epoch: int, workdir: Path, monitor: str,
               mode: str, batch_size: int, patience: int = 0, tensorboard: Path | None = None, verbose: int = 2):
    """model.fit with resume (BackupAndRestore), best/last checkpoints and a CSV history that survives kills."""
    import keras

    from emotf.callbacks import AtomicBackupAndRestore, AtomicModelCheckpoint, Throughput

    ckpt = workdir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    history_csv = workdir / "history.csv"
    callbacks = [
        Throughput(batch_size),
        AtomicModelCheckpoint(str(ckpt / "best.weights.h5"), monitor=monitor, mode=mode,
                              save_best_only=True, save_weights_only=True,
                              initial_value_threshold=_best_so_far(history_csv, monitor, mode)),
        AtomicModelCheckpoint(str(ckpt / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        AtomicBackupAndRestore(str(workdir / "backup")),
    ]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    if tensorboard is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard), write_graph=False, profile_batch=0))
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
              callbacks=callbacks, verbose=verbose, shuffle=False)
    return read_history(history_csv)


# --------------------------------------------------------------------------- the run

def run(cfg: TrainConfig, *, overwrite: bool = False, verbose: int = 2) -> dict[str, Any]:
    """Train, select on validation speakers, test once; returns the metrics dict (also metrics.json).

    Raises:
        ValueError: bad records, an impossible split, or ``out`` holding a run of another configuration.
    """
    from emotf import data, experiment

    info = data.load_records(cfg.records)
    out = Path(cfg.out or default_out(cfg, info.corpus, info.variant))
    experiment.claim_output(out, cfg.to_dict(), overwrite)
    if (out / "metrics.json").is_file():
        log.info("%s is a finished run; its metrics.json stands (--overwrite retrains)", out)
        return json.loads((out / "metrics.json").read_text())

    import keras

    from emotf import runtime

    rt = runtime.configure(mixed_precision=cfg.mixed_precision, strategy=cfg.strategy, jit_compile=cfg.jit_compile,
                           logical_cpus=cfg.logical_cpus)
    keras.utils.set_random_seed(cfg.seed)
    ex = experiment.prepare(cfg, info)
    split, pcfg, shapes, class_names, counts = ex.split, ex.pipeline, ex.shapes, ex.class_names, ex.counts
    resolved = {"out": str(out), "config": cfg.to_dict(), "num_epochs": cfg.num_epochs, **ex.describe(),
                "runtime": rt.describe(), "versions": experiment.versions()}
    (out / "config.json").write_text(json.dumps(resolved, indent=2, default=list))
    steps = ex.steps_per_epoch(cfg.max_steps_per_epoch)
    done_marker = out / "train_done.json"
    with rt.strategy.scope():
        model, encoders = _build(cfg, shapes, len(class_names))
        if not done_marker.is_file():
            if cfg.arch == "av" and cfg.pretrain_epochs:
                _pretrain(cfg, info, split, pcfg, shapes, encoders, out, rt, verbose)
            _compile(model, cfg, len(class_names), rt)
            history = _fit_phase(
                model, data.train_dataset(info, split.train, pcfg), data.eval_dataset(info, split.val, pcfg),
                epochs=cfg.num_epochs, steps_per_epoch=steps, workdir=out, monitor="val_ua", mode="max",
                batch_size=cfg.batch_size, patience=cfg.patience, tensorboard=out / "tensorboard", verbose=verbose)
            best = out / "checkpoints" / "best.weights.h5"
            if cfg.select == "best" and best.is_file():
                model.load_weights(str(best))
            model.save(str(out / "model.keras"))
            done_marker.write_text(json.dumps({"epochs_run": len(history), "select": cfg.select}))
        else:
            model = keras.saving.load_model(str(out / "model.keras"), compile=False)
            _compile(model, cfg, len(class_names), rt)
    history = read_history(out / "history.csv")
    (out / "history.json").write_text(json.dumps(history, indent=2))
    result = _evaluate_and_report(model, cfg, info, split, pcfg, class_names, history, out, counts)
    shutil.rmtree(out / "backup", ignore_errors=True)
    return result


def _build(cfg: TrainConfig, shapes, num_classes: int):
    from emotf import models

    kwargs = dict(cfg.model)
    if cfg.arch == "av":
        audio_kw = {k[len("audio_"):]: v for k, v in kwargs.items() if k.startswith("audio_") and k != "audio_arch"}
        video_kw = {k[len("video_"):]: v for k, v in kwargs.items() if k.startswith("video_")}
        rest = {k: v for k, v in kwargs.items() if not k.startswith(("audio_", "video_"))}
        encoders = models.build_encoders(shapes, audio_arch=cfg.audio_arch, audio_kwargs=audio_kw,
                                         video_kwargs=video_kw)
        return models.build_av(shapes, num_classes, encoders=encoders, **rest), encoders
    return models.get_builder(cfg.arch)(shapes, num_classes, **kwargs), None


def _compile(model, cfg: TrainConfig, num_classes: int, rt) -> None:
    from emotf.training import compile_classifier

    compile_classifier(model, num_classes=num_classes, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       jit_compile=rt.jit_compile)


def _pretrain(cfg, info, split, pcfg, shapes, encoders, out: Path, rt, verbose: int) -> None:
    """Contrastive pre-training of the two encoders (the siamese graph); resumable, done once."""
    from emotf import data, models
    from emotf.training import compile_siamese

    work = out / "pretrain"
    done = work / "done.json"
    audio_w, video_w = work / "audio_encoder.weights.h5", work / "video_encoder.weights.h5"
    if done.is_file():
        encoders[0].load_weights(str(audio_w))
        encoders[1].load_weights(str(video_w))
        log.info("contrastive pre-training already done; encoders loaded from %s", work)
        return
    work.mkdir(parents=True, exist_ok=True)
    siamese = models.build_siamese(shapes, encoders=encoders)
    compile_siamese(siamese, margin=cfg.margin, lr=cfg.lr, weight_decay=cfg.weight_decay, jit_compile=rt.jit_compile)
    pairs = {"hard": cfg.hard_fraction, "super_hard": cfg.super_hard_fraction}
    steps = data.steps(info, split.train, pcfg, drop_remainder=True)
    steps = min(steps, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else steps
    log.info("contrastive pre-training: %d epochs of %d steps, margin %.2f", cfg.pretrain_epochs, steps, cfg.margin)
    history = _fit_phase(
        siamese, data.train_dataset(info, split.train, pcfg, pairs=pairs, drop_remainder=True),
        data.eval_dataset(info, split.val, pcfg, pairs=pairs), epochs=cfg.pretrain_epochs, steps_per_epoch=steps,
        workdir=work, monitor="val_loss", mode="min", batch_size=cfg.batch_size, verbose=verbose)
    best = work / "checkpoints" / "best.weights.h5"
    if best.is_file():
        siamese.load_weights(str(best))
    encoders[0].save_weights(str(audio_w))
    encoders[1].save_weights(str(video_w))
    shutil.rmtree(work / "backup", ignore_errors=True)
    done.write_text(json.dumps({"epochs": len(history), "history": history}, indent=2))


def _evaluate_and_report(model, cfg, info, split, pcfg, class_names, history, out: Path, counts) -> dict[str, Any]:
    from emotf import data, evaluation, plots

    result: dict[str, Any] = {"arch": cfg.arch, "records": str(info.root), "corpus": info.corpus,
                              "variant": info.variant, "split": split.to_dict(), "class_names": list(class_names),
                              "counts": counts}
    for part in ("val", "test"):
        pred = evaluation.predict_records(model, data.eval_dataset(info, getattr(split, part), pcfg, with_meta=True))
        rep = evaluation.score(pred, class_names)
        result["validation" if part == "val" else "test"] = rep
        log.info("%s", evaluation.summary_line("validation" if part == "val" else "test", rep))
    speeds = [h["train_samples_per_s"] for h in history if "train_samples_per_s" in h]
    result["train_samples_per_s"] = float(sorted(speeds)[len(speeds) // 2]) if speeds else None
    result["epochs_run"] = len(history)
    if history and cfg.select == "best" and "val_ua" in history[0]:
        best = max(history, key=lambda h: h["val_ua"])
        result["selected_epoch"] = int(best["epoch"]) + 1
    else:
        result["selected_epoch"] = len(history)
    result["params"] = int(model.count_params())
    title = f"{cfg.arch} · {info.corpus}/{info.variant} · {split.scheme} fold {split.fold + 1}"
    plots.confusion_png(result["test"]["confusion_matrix"], class_names, out / "confusion_test.png",
                        title=f"{title} · test UA {result['test']['ua']:.3f}")
    plots.confusion_png(result["validation"]["confusion_matrix"], class_names, out / "confusion_val.png",
                        title=f"{title} · validation UA {result['validation']['ua']:.3f}")
    if history:
        plots.curves_png(history, out / "curves.png", title=title)
    _hparams_summary(cfg, result, out / "tensorboard" / "hparams")
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _hparams_summary(cfg: TrainConfig, result: dict, logdir: Path) -> None:
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
        hp.hparams(values, trial_id=str(logdir.parent.parent.name))
        for k, v in scalars.items():
            if not math.isnan(v):
                tf.summary.scalar(k, v, step=0)


# --------------------------------------------------------------------------- CLI

def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """The runtime flags that fit and tune share (TrainConfig fields)."""
    d = TrainConfig()
    p.add_argument("--max-steps-per-epoch", type=int, default=d.max_steps_per_epoch)
    p.add_argument("--mixed-precision", default=d.mixed_precision, choices=["auto", "on", "off"])
    p.add_argument("--jit-compile", default=d.jit_compile, choices=["auto", "on", "off"])
    p.add_argument("--strategy", default=d.strategy, choices=["default", "mirrored", "multiworker"])
    p.add_argument("--logical-cpus", type=int, default=d.logical_cpus)
    p.add_argument("--seed", type=int, default=d.seed)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m emotf.fit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--arch", default=d.arch, choices=TRAIN_ARCHS)
    p.add_argument("--records", default="", help="records folder (make tfrecords); empty: the embedded synthetic "
                                                 "corpus, preprocessed on first use")
    p.add_argument("--out", default="", help="run folder (default runs/<arch>-<corpus>-<variant>-c<classes>-"
                                             "<split>-f<fold>)")
    p.add_argument("--classes", default=d.classes, choices=["all", "4", "3"])
    p.add_argument("--split", default=d.split, choices=["auto", "loso", "speaker-folds", "actor-folds", "lospo"])
    p.add_argument("--fold", type=int, default=d.fold, help="test fold, 0-based")
    p.add_argument("--folds", type=int, default=d.folds, help="number of speaker folds (speaker-folds)")
    p.add_argument("--val", default=d.val, choices=["speaker", "session"], help="loso: validation speaker or session")
    p.add_argument("--epochs", type=int, default=d.epochs, help="0: the paper's epochs for the arch")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="av: contrastive pre-training")
    p.add_argument("--margin", type=float, default=d.margin, help="contrastive margin")
    p.add_argument("--hard-fraction", type=float, default=d.hard_fraction)
    p.add_argument("--super-hard-fraction", type=float, default=d.super_hard_fraction)
    p.add_argument("--audio-arch", default=d.audio_arch, choices=["cnn", "cnn_rnn", "cnn_lstm", "crnn"],
                   help="av: the audio branch")
    p.add_argument("--balance", default=d.balance, choices=["resample", "none"])
    p.add_argument("--augment", default="none", help="comma list of crop,rotate (training only)")
    p.add_argument("--colormap", default=d.colormap, choices=["seismic", "gray"])
    p.add_argument("--cache", default=d.cache, choices=["auto", "memory", "off"])
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping on validation UA (0: off)")
    p.add_argument("--select", default=d.select, choices=["best", "last"])
    add_runtime_arguments(p)
    p.add_argument("--hparams", default="", help="JSON of hyperparameters (e.g. a tuner's best_hparams.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a run of another configuration in --out")
    p.add_argument("--quiet", action="store_true")
    return p


def ensure_default_records(root: str = "records") -> str:
    """The embedded default: the synthetic IEMOCAP-layout corpus, preprocessed (DS2) on first use."""
    path = Path(root) / "synth_iemocap" / "ds2"
    if not (path / "manifest.json").is_file():
        from emotf import preprocess

        log.info("No --records given: preprocessing the embedded synthetic corpus into %s", path)
        if preprocess.main(["--out", root, "--no-progress"]) != 0:
            raise ValueError("could not build the embedded synthetic records")
    else:
        log.info("No --records given: using the embedded synthetic records in %s", path)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if not args.records:
            args.records = ensure_default_records()
        cfg = config_from_args(args, argv)
        result = run(cfg, overwrite=args.overwrite, verbose=0 if args.quiet else 2)
    except (ValueError, FileNotFoundError) as e:
        log.error("error: %s", e)
        return 2
    print(json.dumps({"test": {k: result["test"][k] for k in ("wa", "ua", "macro_f1", "n")},
                      "validation": {k: result["validation"][k] for k in ("wa", "ua", "macro_f1", "n")},
                      "train_samples_per_s": result.get("train_samples_per_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
