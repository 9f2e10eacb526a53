"""The tf.data input pipeline: records → model inputs (the only tf.data code of emotf).

    shard files → interleave(TFRecordDataset) → parse (parallel) → class filter
    → cache (uint8, in memory where it fits) → [train: shuffle / balanced
    resampling, repeat, augmentation] → colour map and scaling → batch
    → [siamese pre-training: pair sampling] → prefetch

Random choices (shuffles, resampling, augmentation, pairs) come from seeded tf
ops, and per-element augmentation seeds from the element's position in the
stream, so a run is reproducible from its seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from emotf import records

log = logging.getLogger("emotf")
AUTOTUNE = tf.data.AUTOTUNE
AUGMENTATIONS = ("crop", "rotate")
COLORMAPS = ("seismic", "gray")


@dataclasses.dataclass(frozen=True)
class Shard:
    file: Path
    unit: str
    records: int
    per_label: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class RecordsInfo:
    """What a records folder holds, from its manifest.json and shard summaries."""

    root: Path
    corpus: str
    variant: str
    class_names: tuple[str, ...]
    with_video: bool
    spec_shape: tuple[int, int]
    video_shape: tuple[int, int, int] | None
    shards: tuple[Shard, ...]
    preprocess: Mapping
    digest: str | None = None  # SHA-256 of every record (None for records written before it was kept)

    @property
    def units(self) -> list[str]:
        return sorted({s.unit for s in self.shards})

    @property
    def present_classes(self) -> tuple[str, ...]:
        """The classes with at least one record, in the manifest's order."""
        held = {name for s in self.shards for name, n in s.per_label.items() if n}
        return tuple(c for c in self.class_names if c in held)

    def files(self, units: Iterable[str]) -> list[str]:
        units = set(units)
        return [str(s.file) for s in self.shards if s.unit in units]

    def count(self, units: Iterable[str], class_names: Sequence[str]) -> dict[str, int]:
        """Records per class over the given speakers."""
        units, out = set(units), dict.fromkeys(class_names, 0)
        for s in self.shards:
            if s.unit in units:
                for name in class_names:
                    out[name] += int(s.per_label.get(name, 0))
        return out


def load_records(path: str | Path) -> RecordsInfo:
    """Read a records folder written by ``python -m emotf.preprocess``.

    Raises:
        FileNotFoundError: no manifest.json there.
        ValueError: the preprocessing run did not finish, or a shard is missing.
    """
    root = Path(path)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: no manifest.json; write records with `make tfrecords` "
                                f"(python -m emotf.preprocess) first")
    m = json.loads(mpath.read_text())
    if not m.get("complete", False):
        raise ValueError(f"{mpath}: preprocessing did not finish; run the same preprocess command again to resume")
    shards = []
    for s in m["shards"]:
        f = root / s["file"]
        if not f.is_file():
            raise ValueError(f"{f}: listed in manifest.json but missing")
        side = root / ".shards" / f"{s['file']}.json"
        per_label = json.loads(side.read_text())["per_label"] if side.is_file() else {}
        shards.append(Shard(f, s["unit"], int(s["records"]), per_label))
    return RecordsInfo(root=root, corpus=m.get("corpus", ""), variant=m.get("variant", ""),
                       class_names=tuple(m["class_names"]), with_video=bool(m["with_video"]),
                       spec_shape=tuple(m["spec_shape"]),
                       video_shape=tuple(m["video_shape"]) if m.get("video_shape") else None,
                       shards=tuple(shards), preprocess=m.get("config", {}), digest=m.get("digest"))


def select_classes(info: RecordsInfo, classes: str) -> tuple[str, ...]:
    """The classifier's classes: every class present in the records ("all"), or one of the paper's sets."""
    from emotf.corpora import CLASS_SETS

    if classes == "all":
        return info.present_classes
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be all, 4 or 3. Received: {classes!r}")
    wanted = CLASS_SETS[classes]
    missing = [c for c in wanted if c not in info.present_classes]
    if missing:
        raise ValueError(f"{info.root}: --classes {classes} needs {list(wanted)} but the records hold no "
                         f"{missing} (they hold {list(info.present_classes)})")
    return wanted


def speaker_table(info: RecordsInfo) -> dict[str, dict[str, str]]:
    """{speaker: {"session", "gender"}} from the first record of each speaker's first shard."""
    out: dict[str, dict[str, str]] = {}
    for s in info.shards:
        if s.unit in out or s.records == 0:
            continue
        raw = next(iter(tf.data.TFRecordDataset(str(s.file)).take(1)))
        ex = records.parse_example(raw, spec_shape=info.spec_shape)
        out[s.unit] = {"session": ex[records.SESSION].numpy().decode(),
                       "gender": ex[records.GENDER].numpy().decode()}
    return out


def input_shapes(info: RecordsInfo, modality: str) -> dict | tuple:
    """The model input shape(s) of these records: (h, w, 3), (frames, h, w, 3) or a dict of both."""
    audio = (*info.spec_shape, 3)
    if modality == "audio":
        return audio
    if not info.with_video:
        raise ValueError(f"{info.root}: these records hold no video (preprocess a corpus with video, "
                         f"--video on) but the model needs it")
    video = (*info.video_shape, 3)
    return video if modality == "video" else {"audio": audio, "video": video}


# --------------------------------------------------------------------------- datasets

@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How records become batches. ``class_names`` is the classifier's output order."""

    class_names: tuple[str, ...]
    modality: str = "audio"  # "audio", "video" or "av"
    batch_size: int = 64
    colormap: str = "seismic"
    cache: str = "auto"  # "auto" (memory where it fits), "memory", "off"
    balance: str = "resample"  # "resample" (equal class counts) or "none"; training only
    augment: tuple[str, ...] = ()  # "crop", "rotate"; training only
    crop_px: int = 10
    rotate_deg: float = 10.0
    seed: int = 0

    def __post_init__(self):
        if self.modality not in ("audio", "video", "av"):
            raise ValueError(f"modality must be audio, video or av. Received: {self.modality!r}")
        if self.colormap not in COLORMAPS:
            raise ValueError(f"colormap must be one of {COLORMAPS}. Received: {self.colormap!r}")
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
        input_shapes(info, cfg.modality)  # raises the clear error

    def parse(raw):
        ex = records.parse_example(raw, spec_shape=info.spec_shape, video_shape=info.video_shape or (1, 1, 1),
                                   with_video=with_video)
        out = {"label": table.lookup(ex[records.LABEL_NAME]), "utt_id": ex[records.UTT_ID],
               "clip": tf.cast(ex[records.CLIP_INDEX], tf.int32), "label_name": ex[records.LABEL_NAME]}
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
        x["audio"] = colorize(ex["spec"], cfg.colormap)
    if "video" in ex:
        x["video"] = tf.cast(ex["video"], tf.float32) / 255.0
    if cfg.modality != "av":
        x = x[cfg.modality]
    meta = {"utt_id": ex["utt_id"], "clip": ex["clip"], "label_name": ex["label_name"]}
    return x, ex["label"], meta


def colorize(spec_u8: tf.Tensor, colormap: str = "seismic") -> tf.Tensor:
    """(..., H, W, 1) uint8 spectrogram → (..., H, W, 3) float32 in [0, 1] (seismic map, or grey ×3)."""
    if colormap == "seismic":
        return records.apply_seismic(spec_u8)
    return tf.repeat(tf.cast(spec_u8, tf.float32) / 255.0, 3, axis=-1)


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
