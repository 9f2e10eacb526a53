"""The run folder of ``python -m emotf.fit``: every file's name, written and read through `RunDir` only.

    RUN/config.json                   resolved configuration, split, counts, input shapes, runtime, records, versions
    RUN/history.csv                   one row per epoch, appended as training goes (survives a kill)
    RUN/history.json                  the same, one row per epoch, written at the end
    RUN/checkpoints/best.weights.npz  the weights (not the optimizer's) of the best validation UA so far
    RUN/backup/                       what a resume needs: weights and optimizer, the random generators' state and
                                      the epoch (one copy, replaced every epoch; removed at the end)
    RUN/train_done.json               training finished; model.keras holds the selected weights
    RUN/model.keras                   the selected model
    RUN/metrics.json                  test and validation scores: the run is finished
    RUN/confusion_test.png, confusion_val.png, curves.png
    RUN/tensorboard/                  train / validation scalars, hparams/
    RUN/pretrain/                     av: contrastive pre-training, a phase folder of the same layout
                                      (checkpoints/, history.csv, backup/) plus the encoders and done.json
    RUN/eval/<stem>.json, <stem>.png  reports of python -m emotf.evaluate

A search folder of ``python -m emotf.tune`` is claimed the same way (`claim_folder`).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from emotf.catalog import ARCHS
from emotf.catalog import reads_wave as _reads_wave
from emotf.catalog import wave_audio as _wave_audio

log = logging.getLogger("emotf")

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
# What a run's numbers are (no weights): what the results ledger keeps of each run, with eval/*.json.
NUMBERS = (CONFIG, METRICS, HISTORY_JSON)


class _File:
    """A file or folder of the run folder, by its path inside it."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __get__(self, run, owner=None):
        return self if run is None else run.path.joinpath(*self.parts)


class RunDir:
    """One run folder (or a phase of one, e.g. ``RUN/pretrain``): its paths, and reading and writing its files."""

    config_file = _File(CONFIG)
    metrics_file = _File(METRICS)
    history_csv = _File(HISTORY_CSV)
    checkpoints = _File("checkpoints")
    best_weights = _File("checkpoints", "best.weights.npz")
    backup = _File("backup")
    model_file = _File("model.keras")
    tensorboard = _File("tensorboard")
    eval_dir = _File("eval")

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def eval_file(self, stem: str, suffix: str = ".json") -> Path:
        return self.eval_dir / f"{stem}{suffix}"

    def figure(self, name: str) -> Path:
        """``confusion_test``, ``confusion_val``, ``curves``."""
        return self.path / f"{name}.png"

    @property
    def pretrain(self) -> RunDir:
        """The contrastive pre-training phase of an ``av`` run."""
        return RunDir(self.path / "pretrain")

    def encoder_weights(self, which: str) -> Path:
        """A pre-training phase's saved encoder: ``which`` is "audio" or "video"."""
        return self.path / f"{which}_encoder.weights.h5"

    @property
    def done_file(self) -> Path:
        """Training (or a pre-training phase) finished: ``train_done.json`` / ``pretrain/done.json``."""
        return self.path / ("done.json" if self.path.name == "pretrain" else "train_done.json")

    # ---------------------------------------------------------------- state
    @property
    def is_trained(self) -> bool:
        return self.done_file.is_file()

    @property
    def is_finished(self) -> bool:
        return self.metrics_file.is_file()

    def done_info(self) -> dict[str, Any]:
        """What finished training recorded (``mark_done``); {} before that."""
        return json.loads(self.done_file.read_text()) if self.done_file.is_file() else {}

    # ---------------------------------------------------------------- writing
    def claim(self, config: dict[str, Any], overwrite: bool, *, ignore: tuple[str, ...] = ("out",),
              defaults: dict[str, Any] | None = None) -> None:
        """Make the folder ready for a run of ``config`` (see `claim_folder`)."""
        claim_folder(self.path, config, overwrite, ignore=ignore, defaults=defaults)

    def write_config(self, resolved: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(resolved, indent=2, default=list))
        self.__dict__.pop("config", None)

    def write_history(self, history: list[dict[str, float]]) -> None:
        (self.path / HISTORY_JSON).write_text(json.dumps(history, indent=2))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self.metrics_file.write_text(json.dumps(metrics, indent=2))

    def write_eval(self, stem: str, report: dict[str, Any]) -> Path:
        self.eval_dir.mkdir(exist_ok=True)
        path = self.eval_file(stem)
        path.write_text(json.dumps(report, indent=2))
        return path

    def mark_done(self, info: dict[str, Any]) -> None:
        self.done_file.write_text(json.dumps(info, indent=2))

    def clear_backup(self) -> None:
        shutil.rmtree(self.backup, ignore_errors=True)

    # ---------------------------------------------------------------- reading
    @functools.cached_property
    def config(self) -> dict[str, Any]:
        """The resolved configuration (``config.json``)."""
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.config_file}: not a run folder of python -m emotf.fit (no config.json)")
        try:
            return json.loads(self.config_file.read_text())
        except ValueError as e:
            raise ValueError(f"{self.config_file}: damaged ({e})") from None

    @property
    def train_config(self) -> dict[str, Any]:
        """The TrainConfig fields the run was made with."""
        return self.config["config"]

    @property
    def arch(self) -> str:
        return self.train_config["arch"]

    @property
    def modality(self) -> str:
        return ARCHS[self.arch].modality

    @property
    def wave_audio(self) -> bool:
        """``av`` with a waveform audio branch: it reads waveform records with face stacks."""
        return _wave_audio(self.arch, self.train_config.get("audio_arch", "cnn_rnn"))

    @property
    def reads_wave(self) -> bool:
        """Whether the model reads the waveform: a waveform model, or ``av`` with a waveform audio branch."""
        return _reads_wave(self.modality, self.wave_audio)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.config["class_names"])

    @property
    def colormap(self) -> str:
        return self.train_config.get("colormap", "seismic")

    @property
    def preprocess(self) -> dict[str, Any]:
        """The preprocessing config of the records the model was trained on (predict makes the same features)."""
        return self.config["records"]["preprocess"]

    @property
    def records_root(self) -> str:
        return self.config["records"]["root"]

    @property
    def split(self) -> dict[str, Any]:
        return self.config["split"]

    def metrics(self) -> dict[str, Any]:
        """``metrics.json`` of a finished run."""
        if not self.is_finished:
            raise FileNotFoundError(f"{self.metrics_file}: the run has not finished")
        return json.loads(self.metrics_file.read_text())

    def history(self) -> list[dict[str, float]]:
        """One dict per finished epoch, from history.csv (a row repeated by a resumed run keeps its last copy)."""
        return read_history(self.history_csv)

    def evals(self) -> dict[str, dict[str, Any]]:
        """The reports of ``python -m emotf.evaluate`` on this run, by file stem."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.eval_dir.glob("*.json"))}

    def load_model(self):
        """The selected model (``model.keras``), uncompiled, taking the stored uint8 arrays.

        A model saved before the colour map was a layer takes RGB images; it is wrapped
        (`emotf.models.with_stored_inputs`) with the run's own colour map, so every run folder
        loads with the same input contract.
        """
        import keras

        from emotf import models  # registers every custom object (layers, losses, metrics)

        if not self.model_file.is_file():
            raise FileNotFoundError(f"{self.model_file}: no model; the run has not finished training")
        try:
            model = keras.saving.load_model(str(self.model_file), compile=False)
        except Exception as e:  # a damaged or foreign file: Keras's own error does not say which file
            raise ValueError(f"{self.model_file}: cannot be loaded ({type(e).__name__}: {str(e)[:200]}); it is "
                             f"damaged or not an emotf model: restore it, or train the run again (python -m emotf.fit "
                             f"with its settings, in config.json, and --overwrite)") from None
        upgraded = models.with_stored_inputs(model, self.colormap)
        if upgraded is not model:
            log.info("%s: the model predates the colour-map layer (it takes RGB images); wrapped with the run's "
                     "%s colour map so it takes the stored uint8 spectrogram", self.model_file, self.colormap)
        return upgraded


def open_run(path: str | Path) -> RunDir:
    """A run folder written by ``python -m emotf.fit``.

    Raises:
        FileNotFoundError: not a run folder (no config.json).
    """
    run = RunDir(path)
    run.config  # noqa: B018  (raises the clear error now)
    return run


def claim_folder(out: Path, config: dict[str, Any], overwrite: bool, *, ignore: tuple[str, ...] = ("out",),
                 defaults: dict[str, Any] | None = None) -> None:
    """Make ``out`` ready for a run (or search) of ``config``.

    The same configuration there resumes; another one is refused unless
    ``overwrite``, which deletes the folder first. A field the folder's config.json
    does not have (added to the configuration since) counts as its ``defaults`` value.

    Raises:
        ValueError: ``out`` holds another configuration and ``overwrite`` is off.
    """
    out = Path(out)
    old = out / CONFIG
    if old.is_file():
        try:
            written = json.loads(old.read_text())
        except ValueError as e:
            if not overwrite:
                raise ValueError(f"{old}: damaged ({e}), so what {out} holds is unknown: restore it, or pass "
                                 f"--overwrite to start again there") from None
            written = {}
        prev = {**(defaults or {}), **written.get("config", {})}
        diff = sorted(k for k in set(prev) | set(config) if k not in ignore and prev.get(k) != config.get(k))
        if diff and not overwrite:
            raise ValueError(f"{out} holds a run of another configuration (differs in {diff}); "
                             f"choose another --out or pass --overwrite to replace it")
        if diff or overwrite:
            shutil.rmtree(out)
        else:
            log.info("resuming the run in %s", out)
    out.mkdir(parents=True, exist_ok=True)


def read_history(csv_path: Path) -> list[dict[str, float]]:
    """history.csv → one dict per epoch; a row repeated by a resumed run keeps its last copy."""
    if not Path(csv_path).is_file():
        return []
    by_epoch: dict[int, dict[str, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                by_epoch[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v not in ("", None)}
            except (KeyError, ValueError):
                continue
    return [by_epoch[e] for e in sorted(by_epoch)]
