"""What a training run and a search share: the records, classes, speaker-independent split and pipeline."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from emotf.config import TrainConfig
from emotf.data import pipeline, splits
from emotf.records.folder import RecordsInfo, load_records

log = logging.getLogger("emotf")


@dataclasses.dataclass
class Experiment:
    """The records, classes and speaker-independent split of one run, and its input pipeline."""

    info: RecordsInfo
    class_names: tuple[str, ...]
    split: splits.Split
    pipeline: pipeline.PipelineConfig
    shapes: Any
    counts: dict[str, dict[str, int]]

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {"class_names": list(self.class_names), "split": self.split.to_dict(), "counts": self.counts,
                "input_shape": self.shapes,
                "records": {"root": info.source or str(info.root), "corpus": info.corpus, "variant": info.variant,
                            "features": info.features, "spec_shape": info.spec_shape,
                            "video_shape": info.video_shape, "digest": info.digest, "preprocess": info.preprocess}}

    def steps_per_epoch(self, cap: int = 0, drop_remainder: bool = False) -> int:
        n = pipeline.steps(self.info, self.split.train, self.pipeline, drop_remainder=drop_remainder)
        return min(n, cap) if cap else n

    def train_dataset(self, **kwargs):
        return pipeline.train_dataset(self.info, self.split.train, self.pipeline, **kwargs)

    def eval_dataset(self, part: str = "val", **kwargs):
        """``part``: "val" or "test"."""
        return pipeline.eval_dataset(self.info, getattr(self.split, part), self.pipeline, **kwargs)


def prepare(cfg: TrainConfig, info: RecordsInfo | None = None) -> Experiment:
    """Classes, split and pipeline settings of a configuration (reads the records' metadata only)."""
    info = info or load_records(cfg.records)
    class_names = info.select_classes(cfg.classes)
    if len(info.corpora) > 1:
        split = splits.make_corpus_split(info.speakers(), cfg.split, cfg.fold, folds=cfg.folds, val=cfg.val,
                                         test_corpus=cfg.test_corpus)
    elif cfg.test_corpus:
        raise ValueError(f"--test-corpus {cfg.test_corpus} leaves one corpus out of several; give --records "
                         f"several records folders joined by commas")
    else:
        split = splits.make_split(info.speakers(), cfg.split, cfg.fold, folds=cfg.folds, val=cfg.val)
    log.info("%s", split.describe())
    pcfg = pipeline.PipelineConfig(class_names=class_names, modality=cfg.modality, batch_size=cfg.batch_size,
                                   cache=cfg.cache, balance=cfg.balance, augment=cfg.augment, seed=cfg.seed,
                                   sample_rate=info.sample_rate, crop_s=cfg.crop_s, wave_audio=cfg.wave_audio)
    counts = {part: info.count(getattr(split, part), class_names) for part in ("train", "val", "test")}
    return Experiment(info, class_names, split, pcfg, info.input_shapes(cfg.modality, cfg.wave_audio), counts)
