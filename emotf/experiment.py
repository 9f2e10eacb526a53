"""What a training run and a search share: records, classes, split, pipeline, the output folder."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shutil
from pathlib import Path
from typing import Any

from emotf import data, splits
from emotf.config import TrainConfig

log = logging.getLogger("emotf")
MODALITY = {"cnn": "audio", "cnn_lstm": "audio", "cnn_rnn": "audio", "crnn": "audio", "video_3dcnn": "video",
            "av": "av"}


@dataclasses.dataclass
class Experiment:
    """The records, classes and speaker-independent split of one run, and its input pipeline."""

    info: data.RecordsInfo
    class_names: tuple[str, ...]
    split: splits.Split
    pipeline: data.PipelineConfig
    shapes: Any
    counts: dict[str, dict[str, int]]

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {"class_names": list(self.class_names), "split": self.split.to_dict(), "counts": self.counts,
                "input_shape": self.shapes,
                "records": {"root": str(info.root), "corpus": info.corpus, "variant": info.variant,
                            "spec_shape": list(info.spec_shape), "video_shape": info.video_shape,
                            "digest": info.digest, "preprocess": info.preprocess}}

    def steps_per_epoch(self, cap: int = 0, drop_remainder: bool = False) -> int:
        n = data.steps(self.info, self.split.train, self.pipeline, drop_remainder=drop_remainder)
        return min(n, cap) if cap else n


def prepare(cfg: TrainConfig, info: data.RecordsInfo | None = None) -> Experiment:
    """Classes, split and pipeline settings of a configuration (reads the records' metadata only)."""
    info = info or data.load_records(cfg.records)
    modality = MODALITY[cfg.arch]
    class_names = data.select_classes(info, cfg.classes)
    split = splits.make_split(data.speaker_table(info), cfg.split, cfg.fold, folds=cfg.folds, val=cfg.val)
    log.info("%s", split.describe())
    pcfg = data.PipelineConfig(class_names=class_names, modality=modality, batch_size=cfg.batch_size,
                               colormap=cfg.colormap, cache=cfg.cache, balance=cfg.balance, augment=cfg.augment,
                               seed=cfg.seed)
    counts = {part: info.count(getattr(split, part), class_names) for part in ("train", "val", "test")}
    return Experiment(info, class_names, split, pcfg, data.input_shapes(info, modality), counts)


def claim_output(out: Path, config: dict[str, Any], overwrite: bool, *, ignore: tuple[str, ...] = ("out",)) -> None:
    """Make ``out`` ready for a run of ``config``.

    The same configuration there resumes; another one is refused unless
    ``overwrite``, which deletes the folder first.

    Raises:
        ValueError: ``out`` holds another configuration and ``overwrite`` is off.
    """
    old = out / "config.json"
    if old.is_file():
        prev = json.loads(old.read_text()).get("config", {})
        diff = sorted(k for k in set(prev) | set(config) if k not in ignore and prev.get(k) != config.get(k))
        if diff and not overwrite:
            raise ValueError(f"{out} holds a run of another configuration (differs in {diff}); "
                             f"choose another --out or pass --overwrite to replace it")
        if diff or overwrite:
            shutil.rmtree(out)
        else:
            log.info("resuming the run in %s", out)
    out.mkdir(parents=True, exist_ok=True)


def versions() -> dict[str, str]:
    import keras
    import numpy as np
    import tensorflow as tf

    from emotf import __version__

    # The same seed retrains bit-identically on one machine (docs/results.md, "Seeds"); on another processor
    # oneDNN may pick other kernels, whose round-off differs, so the CPU is part of a run's identity.
    return {"emotf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "backend": keras.backend.backend(), "numpy": np.__version__, "cpu": cpu_model()}


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")  # the ones oneDNN chooses kernels by


def cpu_model() -> str:
    """The processor's model name and vector extensions, e.g. "AMD EPYC (avx2 fma)"."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    isa = [f for f in ISA_FLAGS if f in flags]
    return f"{name} ({' '.join(isa)})" if isa else name
