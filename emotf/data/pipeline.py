"""The tf.data input pipeline: records → model inputs (the only tf.data code of emotf).

    shard files → interleave(TFRecordDataset) → parse (parallel) → class filter
    → cache (uint8, in memory where it fits) → [train: shuffle / balanced
    resampling, repeat, augmentation] → batch → [siamese pre-training: pair
    sampling] → prefetch

Batches hold the arrays as records store them (the (H, W, 1) uint8
spectrogram, the (frames, H, W, 3) uint8 face stack): the colour map and the
scaling are the models' first layers, so training, evaluation, prediction and
exported models all feed the same input. Which records exist, their classes
and speakers come from `emotf.records.folder.RecordsInfo`.

Random choices (shuffles, resampling, augmentation, pairs) come from seeded tf
ops, and per-element augmentation seeds from the element's position in the
stream, so a run is reproducible from its seed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from emotf.catalog import AUGMENTATIONS, MODALITIES
from emotf.records import keys, schema
from emotf.records.folder import RecordsInfo

log = logging.getLogger("emotf")
AUTOTUNE = tf.data.AUTOTUNE


# --------------------------------------------------------------------------- datasets

@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How records become batches. ``class_names`` is the classifier's output order."""

    class_names: tuple[str, ...]
    modality: str = "audio"  # "audio", "video" or "av"
    batch_size: int = 64
    cache: str = "auto"  # "auto" (memory where it fits), "memory", "off"
    balance: str = "resample"  # "resample" (equal class counts) or "none"; training only
    augment: tuple[str, ...] = ()  # "crop", "rotate"; training only
    crop_px: int = 10
    rotate_deg: float = 10.0
    seed: int = 0

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}. Received: {self.modality!r}")
        if self.cache not in ("auto", "memory", "off"):
            raise ValueError(f"cache must be auto, memory or off. Received: {self.cache!r}")
        if self.balance not in ("resample", "none"):
            raise ValueError(f"balance must be resample or none. Received: {self.balance!r}")
        bad = [a for a in self.augment if a not in AUGMENTATIONS]
        if bad:
            raise ValueError(f"unknown augmentation {bad}; choose from {AUGMENTATIONS}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {self.batch_size}")


def train_dataset(info: RecordsInfo, units: Iterable[str], cfg: PipelineConfig, *, pairs: Mapping | None = None,
                  drop_remainder: bool = False) -> tf.data.Dataset:
    """An endless, shuffled (and by default class-balanced) stream of training batches.

    Use with ``steps_per_epoch = steps(info, units, cfg)``: one epoch then draws
    as many samples as the training speakers hold.

    Args:
        pairs: for contrastive pre-training, {"hard": fraction, "super_hard":
            fraction}: each batch then becomes ({"audio", "video", "partner"},
            pair labels, pair weights) (see ``sample_pairs``).
    """
    units = list(units)
    counts = info.count(units, cfg.class_names)
    base = _cached(_parsed(info, units, cfg), info, sum(counts.values()), cfg)
    if cfg.balance == "resample":
        present = [i for i, name in enumerate(cfg.class_names) if counts[name] > 0]
        missing = [name for name in cfg.class_names if counts[name] == 0]
        if missing:
            log.warning("no training records of %s: balanced sampling covers the other classes only", missing)
        streams = [base.filter(lambda ex, c=c: tf.equal(ex["label"], c))
                   .shuffle(min(counts[cfg.class_names[c]], 4096), seed=cfg.seed + 1 + c,
                            reshuffle_each_iteration=True).repeat() for c in present]
        ds = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(streams)] * len(streams),
                                                  seed=cfg.seed, rerandomize_each_iteration=True)
    else:
        ds = base.shuffle(min(max(sum(counts.values()), 1), 4096), seed=cfg.seed,
                          reshuffle_each_iteration=True).repeat()
    if cfg.augment and cfg.modality != "video":
        ds = ds.enumerate().map(lambda i, ex: _augment(ex, i, cfg), num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda ex: _to_inputs(ex, cfg), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(cfg.batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if pairs is not None:
        ds = ds.enumerate().map(lambda i, b: _with_pairs(b, [cfg.seed, i], pairs), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(lambda x, y, meta: (x, y))
    return ds.prefetch(AUTOTUNE)


def eval_dataset(info: RecordsInfo, units: Iterable[str], cfg: PipelineConfig, *, with_meta: bool = False,
                 pairs: Mapping | None = None) -> tf.data.Dataset:
    """One deterministic pass over the records of ``units`` (no resampling, no augmentation).

    Yields (x, y), or (x, y, {"utt_id", "clip", "label_name"}) with ``with_meta``.
    """
    units = list(units)
    n = sum(info.count(units, cfg.class_names).values())
    base = _cached(_parsed(info, units, cfg), info, n, cfg)
    ds = base.map(lambda ex: _to_inputs(ex, cfg), num_parallel_calls=AUTOTUNE)
    # The filter hides the length from tf.data; the shard summaries know it (and Keras then knows
    # where an epoch of validation ends).
    ds = ds.batch(cfg.batch_size).apply(tf.data.experimental.assert_cardinality(math.ceil(n / cfg.batch_size)))
    if pairs is not None:
        ds = ds.enumerate().map(lambda i, b: _with_pairs(b, [cfg.seed + 7919, i], pairs))
    elif not with_meta:
        ds = ds.map(lambda x, y, meta: (x, y))
    return ds.prefetch(AUTOTUNE)


def steps(info: RecordsInfo, units: Iterable[str], cfg: PipelineConfig, drop_remainder: bool = False) -> int:
    n = sum(info.count(units, cfg.class_names).values())
    return max(1, n // cfg.batch_size if drop_remainder else math.ceil(n / cfg.batch_size))


def _parsed(info: RecordsInfo, units: list[str], cfg: PipelineConfig) -> tf.data.Dataset:
    files = info.files(units)
    if not files:
        raise ValueError(f"{info.root}: no records for speakers {units}")
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(cfg.class_names)),
                                            tf.range(len(cfg.class_names), dtype=tf.int32)), default_value=-1)
    with_video = cfg.modality in ("video", "av")
    if with_video and not info.with_video:
        info.input_shapes(cfg.modality)  # raises the clear error

    def parse(raw):
        ex = schema.parse_example(raw, spec_shape=info.spec_shape, video_shape=info.video_shape or (1, 1, 1),
                                  with_video=with_video)
        out = {"label": table.lookup(ex[keys.LABEL_NAME]), "utt_id": ex[keys.UTT_ID],
               "clip": tf.cast(ex[keys.CLIP_INDEX], tf.int32), "label_name": ex[keys.LABEL_NAME]}
        if cfg.modality in ("audio", "av"):
            out["spec"] = ex["spec"]
        if with_video:
            out["video"] = ex["video"]
        return out

    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 16), num_parallel_calls=AUTOTUNE,
                       deterministic=True)
    ds = ds.map(parse, num_parallel_calls=AUTOTUNE)
    return ds.filter(lambda ex: ex["label"] >= 0)


def _cached(ds: tf.data.Dataset, info: RecordsInfo, n: int, cfg: PipelineConfig) -> tf.data.Dataset:
    if cfg.cache == "off":
        return ds
    if cfg.cache == "auto":
        per = info.spec_shape[0] * info.spec_shape[1]
        if cfg.modality != "audio" and info.video_shape:
            per += int(np.prod(info.video_shape)) * 3
        budget = _available_bytes() // 4
        if n * per > budget:
            log.info("not caching %d records (%.0f MB > a quarter of free memory)", n, n * per / 1e6)
            return ds
    return ds.cache()


def _available_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unsupported platform: assume a small machine
        return 4 << 30


def _to_inputs(ex: dict, cfg: PipelineConfig):
    x = {}
    if "spec" in ex:
        x["audio"] = ex["spec"]
    if "video" in ex:
        x["video"] = ex["video"]
    if cfg.modality != "av":
        x = x[cfg.modality]
    meta = {"utt_id": ex["utt_id"], "clip": ex["clip"], "label_name": ex["label_name"]}
    return x, ex["label"], meta


# --------------------------------------------------------------------------- augmentation

def _augment(ex: dict, index: tf.Tensor, cfg: PipelineConfig) -> dict:
    if "spec" not in ex:
        return ex
    seed = tf.stack([tf.cast(cfg.seed, tf.int64), index])
    ex = dict(ex)
    ex["spec"] = augment_spectrogram(ex["spec"], seed, ops=cfg.augment, crop_px=cfg.crop_px,
                                     max_degrees=cfg.rotate_deg)
    return ex


def augment_spectrogram(spec_u8: tf.Tensor, seed, *, ops: Sequence[str] = AUGMENTATIONS, crop_px: int = 10,
                        max_degrees: float = 10.0, probability: float = 0.5) -> tf.Tensor:
    """The paper's spectrogram augmentations, each applied with ``probability``.

    "crop": drop ``crop_px`` rows from the top (the highest frequencies) and
    resize back, a small upward frequency shift. "rotate": rotate by an angle
    uniform in ±``max_degrees``. No horizontal flip: it reverses time.

    Args:
        spec_u8: (H, W, 1) uint8.
        seed: shape-(2,) int seed of the stateless random ops.

    Returns:
        (H, W, 1) uint8.
    """
    h, w = spec_u8.shape[0], spec_u8.shape[1]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    img = tf.cast(spec_u8, tf.float32)
    if "crop" in ops:
        cropped = tf.image.resize(img[crop_px:], [h, w], method="bilinear")
        img = tf.where(tf.random.stateless_uniform([], seeds[0]) < probability, cropped, img)
    if "rotate" in ops:
        angle = tf.random.stateless_uniform([], seeds[1], -max_degrees, max_degrees) * (math.pi / 180.0)
        angle = tf.where(tf.random.stateless_uniform([], seeds[2]) < probability, angle, 0.0)
        img = _rotate(img, angle)
    return tf.cast(tf.clip_by_value(tf.round(img), 0.0, 255.0), tf.uint8)


def _rotate(img: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    h, w = float(img.shape[0]), float(img.shape[1])
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    c, s = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples the input at the inverse rotation about the centre.
    transform = tf.stack([c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=img[None], transforms=transform[None], output_shape=tf.constant([int(h), int(w)]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    return out[0]


# --------------------------------------------------------------------------- contrastive pairs

def sample_pairs(labels: tf.Tensor, keys: tf.Tensor, seed, *, hard: float = 0.75, super_hard: float = 0.25):
    """Pairs of one batch for contrastive pre-training, as the paper defines them.

    Column 0 pairs each audio clip with its own video (positive, label 1).
    Column 1 pairs the first ``hard`` fraction of the batch with the video of a
    random clip of a *different* emotion (hard negative, label 0). Column 2
    pairs the first ``super_hard`` fraction with a random *other* clip of the
    *same* emotion (super-hard negative, label 0). A row with no valid partner
    gets weight 0.

    Args:
        labels: (batch,) int emotion indices.
        keys: (batch,) string clip identifiers (utterance and clip index).
        seed: shape-(2,) int seed.

    Returns:
        partner (batch, 3) int32, pair labels (batch, 3) float32 and weights
        (batch, 3) float32. The weights make the mean-reduced loss the mean
        over the three groups of each group's mean.
    """
    b = tf.shape(labels)[0]
    rows = tf.range(b)
    same_label = tf.equal(labels[:, None], labels[None, :])
    same_clip = tf.equal(keys[:, None], keys[None, :])
    scores = tf.random.stateless_uniform(tf.stack([b, b]), tf.cast(seed, tf.int64))

    def pick(ok):
        return tf.argmax(tf.where(ok, scores, -1.0), axis=1, output_type=tf.int32), tf.reduce_any(ok, axis=1)

    hard_j, hard_ok = pick(tf.logical_not(same_label))
    super_j, super_ok = pick(tf.logical_and(same_label, tf.logical_not(same_clip)))
    bf = tf.cast(b, tf.float32)
    hard_ok = tf.logical_and(hard_ok, tf.cast(rows, tf.float32) < tf.round(hard * bf))
    super_ok = tf.logical_and(super_ok, tf.cast(rows, tf.float32) < tf.round(super_hard * bf))
    partner = tf.stack([rows, hard_j, super_j], axis=1)
    valid = tf.cast(tf.stack([tf.ones_like(hard_ok), hard_ok, super_ok], axis=1), tf.float32)
    weights = valid * bf / tf.maximum(tf.reduce_sum(valid, axis=0, keepdims=True), 1.0)
    y = tf.tile(tf.constant([[1.0, 0.0, 0.0]]), [b, 1])
    return partner, y, weights


def _with_pairs(batch, seed, pairs: Mapping):
    x, labels, meta = batch
    keys = tf.strings.join([meta["utt_id"], tf.strings.as_string(meta["clip"])], separator="#")
    partner, y, w = sample_pairs(labels, keys, seed, hard=pairs.get("hard", 0.75),
                                 super_hard=pairs.get("super_hard", 0.25))
    return {"audio": x["audio"], "video": x["video"], "partner": partner}, y, w
