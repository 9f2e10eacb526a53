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

Waveform records (the "waveform" modality) go the same way with their own
steps: training takes a random ``crop_s`` stretch of each utterance (a shorter
one is zero-padded; ``audio_length`` says how much is real) after the waveform
augmentations (speed, gain, spectral tilt, noise at a random SNR), and mixup
mixes pairs of utterances of a batch, with soft labels; evaluation pads each
utterance to a whole number of ``bucket_s`` so that few batch shapes occur.
With records of several corpora, the training stream draws each corpus equally
often, and within a corpus each class.

Random choices (shuffles, resampling, augmentation, pairs) come from seeded tf
ops, and per-element augmentation seeds from the element's position in the
stream, so a run is reproducible from its seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import psutil
import tensorflow as tf

from emotf.catalog import AUGMENTATIONS, IMAGE_AUGMENTATIONS, MODALITIES
from emotf.catalog import reads_wave as _reads_wave
from emotf.config import SAMPLE_RATE_HZ, WAVE_BUCKET_S, bucket_samples
from emotf.records import folder, keys, schema
from emotf.records.folder import RecordsInfo

log = logging.getLogger("emotf")
AUTOTUNE = tf.data.AUTOTUNE
# Each random stream of a run starts from the run's seed plus an offset of its own, so no two draw the same
# numbers: the sampler, augmentations and training pairs take the seed itself, the per-class shuffles
# seed + 1 + 97 * corpus + class (below 4049 for up to 41 corpora), mixup and validation's pairs these primes.
MIXUP_SEED_OFFSET = 4049
EVAL_PAIRS_SEED_OFFSET = 7919


@contextlib.contextmanager
def named_damage(records: str | Callable[[], str]) -> Iterator[None]:
    """Records found damaged while being read (TensorFlow's DataLossError, e.g. mid-epoch) end in one
    `emotf.records.folder.RecordsError` naming the shard, what is wrong and how to repair it.

    Args:
        records: the records folder(s) read inside the block, or a function giving them.
    """
    try:
        yield
    except tf.errors.DataLossError as e:
        raise folder.damage_error(records() if callable(records) else records, e.message) from None


# --------------------------------------------------------------------------- datasets

@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How records become batches. ``class_names`` is the classifier's output order."""

    class_names: tuple[str, ...]
    modality: str = "audio"  # "audio", "video", "av" or "waveform"
    wave_audio: bool = False  # av: the audio branch reads the waveform (waveform records with face stacks)
    batch_size: int = 64
    cache: str = "auto"  # "auto" (memory where it fits), "memory", "off"
    balance: str = "resample"  # "resample" (equal class counts; and corpora) or "none"; training only
    augment: tuple[str, ...] = ()  # emotf.catalog.AUGMENTATIONS of the modality; training only
    crop_px: int = 10
    rotate_deg: float = 10.0
    seed: int = 0
    # waveforms
    sample_rate: int = SAMPLE_RATE_HZ  # the records' (RecordsInfo.sample_rate)
    crop_s: float = 3.0  # training: seconds of each utterance
    bucket_s: float = WAVE_BUCKET_S  # evaluation: utterances padded to a whole number of these
    gain_db: float = 6.0  # gain: uniform in ±gain_db
    tilt_db_per_octave: float = 6.0  # tilt: slope uniform in ±tilt_db_per_octave, about 1 kHz
    snr_db: tuple[float, float] = (5.0, 30.0)  # noise: SNR uniform in this range, white to brown
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # speed: one of these factors (tempo and pitch)
    mixup_alpha: float = 0.4  # mixup: weight of the partner from Beta(alpha, alpha), the larger kept first
    probability: float = 0.5  # of each of gain, tilt, noise

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

    @property
    def reads_wave(self) -> bool:
        """Whether batches carry the waveform (the waveform models, and ``av`` with a waveform audio branch)."""
        return _reads_wave(self.modality, self.wave_audio)


def train_dataset(info: RecordsInfo, units: Iterable[str], cfg: PipelineConfig, *, pairs: Mapping | None = None,
                  drop_remainder: bool = False) -> tf.data.Dataset:
    """An endless, shuffled (and by default class-balanced) stream of training batches.

    Use with ``steps_per_epoch = steps(info, units, cfg)``: one epoch then draws
    as many samples as the training speakers hold.

    Args:
        pairs: for contrastive pre-training, {"hard": fraction, "super_hard":
            fraction}: each batch then becomes ({"audio", "video", "partner"},
            pair labels, pair weights) (see ``sample_pairs``).

    Yields:
        (x, y): y the class index (batch,), or with mixup the soft labels (batch, classes).
    """
    units = list(units)
    counts = info.count(units, cfg.class_names)
    base = _cached(_parsed(info, units, cfg), info, sum(counts.values()), cfg)
    if cfg.balance == "resample":
        missing = [name for name in cfg.class_names if counts[name] == 0]
        if missing:
            log.warning("no training records of %s: balanced sampling covers the other classes only", missing)
        ds = _balanced(base, info, units, cfg)
    else:
        ds = base.shuffle(min(max(sum(counts.values()), 1), 4096), seed=cfg.seed,
                          reshuffle_each_iteration=True).repeat()
    if cfg.reads_wave:
        ds = ds.enumerate().map(lambda i, ex: _train_wave(ex, i, cfg), num_parallel_calls=AUTOTUNE)
    elif cfg.augment and cfg.modality != "video":
        ds = ds.enumerate().map(lambda i, ex: _augment(ex, i, cfg), num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda ex: _to_inputs(ex, cfg), num_parallel_calls=AUTOTUNE)
    ds = ds.batch(cfg.batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if "mixup" in cfg.augment and pairs is None:  # contrastive pairs are drawn by each clip's own label
        n = len(cfg.class_names)
        ds = ds.enumerate().map(lambda i, b: mixup(b, [cfg.seed + MIXUP_SEED_OFFSET, i], n, cfg.mixup_alpha),
                                num_parallel_calls=AUTOTUNE)
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
    if cfg.reads_wave:
        bucket = bucket_samples(info.sample_rate, cfg.bucket_s)
        base = base.map(lambda ex: _padded_to_bucket(ex, bucket), num_parallel_calls=AUTOTUNE)
    ds = base.map(lambda ex: _to_inputs(ex, cfg), num_parallel_calls=AUTOTUNE)
    # The filter hides the length from tf.data; the shard summaries know it (and Keras then knows
    # where an epoch of validation ends).
    batched = ds.padded_batch(cfg.batch_size) if cfg.reads_wave else ds.batch(cfg.batch_size)
    ds = batched.apply(tf.data.experimental.assert_cardinality(math.ceil(n / cfg.batch_size)))
    if pairs is not None:
        ds = ds.enumerate().map(lambda i, b: _with_pairs(b, [cfg.seed + EVAL_PAIRS_SEED_OFFSET, i], pairs))
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
    # raises the clear error where the records do not hold what the model reads
    info.input_shapes(cfg.modality, cfg.wave_audio)
    wave = cfg.reads_wave

    def parse(raw):
        ex = schema.parse_example(raw, spec_shape=None if info.features == "wave" else info.spec_shape,
                                  video_shape=info.video_shape or (1, 1, 1), with_video=with_video, with_wave=wave)
        out = {"label": table.lookup(ex[keys.LABEL_NAME]), "utt_id": ex[keys.UTT_ID],
               "clip": tf.cast(ex[keys.CLIP_INDEX], tf.int32), "label_name": ex[keys.LABEL_NAME],
               "corpus": ex[keys.CORPUS]}
        if cfg.modality in ("audio", "av") and not wave:
            out["spec"] = ex["spec"]
        if with_video:
            out["video"] = ex["video"]
        if wave:
            out["wave"] = ex["wave"]
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
        # A waveform record: about 4 s of float32 (the corpora here hold 1.5-8 s utterances).
        per = (4 * 4 * info.sample_rate if cfg.reads_wave else
               info.spec_shape[0] * info.spec_shape[1] if cfg.modality != "video" else 0)
        if cfg.modality not in ("audio", "waveform") and info.video_shape:
            per += int(np.prod(info.video_shape)) * 3
        budget = _available_bytes() // 4
        if n * per > budget:
            log.info("not caching %d records (%.0f MB > a quarter of free memory)", n, n * per / 1e6)
            return ds
    return ds.cache()


def _available_bytes() -> int:
    try:
        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unsupported platform: assume a small machine
        return 4 << 30


def _to_inputs(ex: dict, cfg: PipelineConfig):
    x = {}
    if "spec" in ex:
        x["audio"] = ex["spec"]
    if "video" in ex:
        x["video"] = ex["video"]
    if "wave" in ex:
        x = {**x, "audio": ex["wave"], "audio_length": ex["length"]}  # and the face stack, for av
    elif cfg.modality != "av":
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


def augment_spectrogram(spec_u8: tf.Tensor, seed, *, ops: Sequence[str] = IMAGE_AUGMENTATIONS, crop_px: int = 10,
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


# --------------------------------------------------------------------------- corpora

def _balanced(base: tf.data.Dataset, info: RecordsInfo, units: list[str], cfg: PipelineConfig) -> tf.data.Dataset:
    """Each class drawn equally often; with several corpora, each corpus equally often and within a corpus each
    of the classes it holds. Every (corpus, class) stream is shuffled with its own seed."""
    corpora = sorted({info.corpus_of(u) for u in units})
    streams, weights = [], []
    for k, corpus in enumerate(corpora):
        counts = info.count([u for u in units if info.corpus_of(u) == corpus], cfg.class_names)
        present = [c for c, name in enumerate(cfg.class_names) if counts[name] > 0]
        for c in present:
            def wanted(ex, c=c, corpus=corpus):
                same_class = tf.equal(ex["label"], c)
                return tf.logical_and(same_class, tf.equal(ex["corpus"], corpus)) if len(corpora) > 1 else same_class

            streams.append(base.filter(wanted).shuffle(min(counts[cfg.class_names[c]], 4096),
                                                       seed=cfg.seed + 1 + 97 * k + c,
                                                       reshuffle_each_iteration=True).repeat())
            weights.append(1.0 / (len(corpora) * len(present)))
    return tf.data.Dataset.sample_from_datasets(streams, weights=weights, seed=cfg.seed,
                                                rerandomize_each_iteration=True)


# --------------------------------------------------------------------------- waveforms

def _padded_to_bucket(ex: dict, bucket: int) -> dict:
    ex = dict(ex)
    n = tf.shape(ex["wave"])[0]
    ex["length"] = n
    ex["wave"] = tf.pad(ex["wave"], [[0, (-n) % bucket]])
    return ex


def _train_wave(ex: dict, index: tf.Tensor, cfg: PipelineConfig) -> dict:
    """One training utterance: [speed] → a random ``crop_s`` stretch → [gain] [tilt] [noise] (seeded per element)."""
    seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(cfg.seed, tf.int64), index]), 8)
    x = ex["wave"]
    if "speed" in cfg.augment:
        x = change_speed(x, tf.gather(tf.constant(cfg.speeds, tf.float32),
                                      tf.random.stateless_uniform([], seeds[0], 0, len(cfg.speeds), tf.int32)))
    x, length = random_crop(x, int(round(cfg.crop_s * cfg.sample_rate)), seeds[1])
    p = cfg.probability
    if "gain" in cfg.augment:
        x = _maybe(x, seeds[2], p, lambda: x * 10.0 ** (tf.random.stateless_uniform(
            [], seeds[3], -cfg.gain_db, cfg.gain_db) / 20.0))
    if "tilt" in cfg.augment:
        x = _maybe(x, seeds[4], p, lambda: spectral_tilt(x, tf.random.stateless_uniform(
            [], seeds[5], -cfg.tilt_db_per_octave, cfg.tilt_db_per_octave), sample_rate=cfg.sample_rate))
    if "noise" in cfg.augment:
        x = _maybe(x, seeds[6], p, lambda: add_noise(x, length, seeds[7], cfg.snr_db, sample_rate=cfg.sample_rate))
    ex = dict(ex)
    ex["wave"], ex["length"] = x, length
    return ex


def _maybe(x: tf.Tensor, seed, probability: float, op) -> tf.Tensor:
    return tf.cond(tf.random.stateless_uniform([], seed) < probability, op, lambda: x)


def change_speed(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Play ``x`` ``factor`` times as fast (tempo and pitch, as Kaldi's speed perturbation): linear interpolation
    at ``factor``-spaced positions. (n,) → (round(n / factor),)."""
    n = tf.shape(x)[0]
    m = tf.maximum(tf.cast(tf.round(tf.cast(n, tf.float32) / factor), tf.int32), 1)
    pos = tf.minimum(tf.range(m, dtype=tf.float32) * factor, tf.cast(n - 1, tf.float32))
    i0 = tf.cast(tf.floor(pos), tf.int32)
    i1 = tf.minimum(i0 + 1, n - 1)
    w = pos - tf.cast(i0, tf.float32)
    return tf.gather(x, i0) * (1.0 - w) + tf.gather(x, i1) * w


def random_crop(x: tf.Tensor, size: int, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """A random ``size``-sample stretch of ``x`` (a shorter ``x`` is zero-padded at the end): (stretch, valid)."""
    n = tf.shape(x)[0]
    start = tf.random.stateless_uniform([], seed, 0, tf.maximum(n - size, 0) + 1, tf.int32)
    piece = x[start:start + size]
    valid = tf.shape(piece)[0]
    return tf.ensure_shape(tf.pad(piece, [[0, size - valid]]), [size]), valid


def _frequencies(n: int, sample_rate: int) -> tf.Tensor:
    return tf.linspace(0.0, sample_rate / 2.0, n // 2 + 1)


def spectral_tilt(x: tf.Tensor, db_per_octave: tf.Tensor, *, pivot_hz: float = 1000.0,
                  sample_rate: int) -> tf.Tensor:
    """``x`` through a filter of ``db_per_octave`` slope about ``pivot_hz`` (flat below 100 Hz): a channel's tilt.

    Args:
        x: (n,) waveform with a static n.
    """
    n = int(x.shape[0])
    octaves = tf.math.log(tf.maximum(_frequencies(n, sample_rate), 100.0) / pivot_hz) / tf.math.log(2.0)
    gain = tf.cast(10.0 ** (db_per_octave * octaves / 20.0), tf.complex64)
    return tf.signal.irfft(tf.signal.rfft(x) * gain, fft_length=[n])


def add_noise(x: tf.Tensor, length: tf.Tensor, seed, snr_db: tuple[float, float], *,
              sample_rate: int) -> tf.Tensor:
    """``x`` plus coloured noise (white to brown, a random slope) at an SNR uniform in ``snr_db`` over the valid
    ``length`` samples; the padding stays silent.

    Args:
        x: (n,) waveform with a static n.
    """
    n = int(x.shape[0])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    white = tf.random.stateless_normal([n], seeds[0])
    beta = tf.random.stateless_uniform([], seeds[1], 0.0, 2.0)  # power ∝ f^-beta
    shape = tf.cast(tf.maximum(_frequencies(n, sample_rate), 20.0) ** (-beta / 2.0), tf.complex64)
    noise = tf.signal.irfft(tf.signal.rfft(white) * shape, fft_length=[n])
    valid = tf.cast(tf.range(n) < length, tf.float32)
    count = tf.maximum(tf.reduce_sum(valid), 1.0)
    p_signal = tf.reduce_sum(tf.square(x) * valid) / count
    p_noise = tf.maximum(tf.reduce_sum(tf.square(noise) * valid) / count, 1e-12)
    snr = tf.random.stateless_uniform([], seeds[2], snr_db[0], snr_db[1])
    return x + noise * tf.sqrt(p_signal / p_noise * 10.0 ** (-snr / 10.0)) * valid


def mixup(batch, seed, num_classes: int, alpha: float = 0.4):
    """Mixup of a waveform batch: each utterance mixed with the batch's reverse, at equal speech power, with
    weight λ ≥ 0.5 for itself (λ from Beta(alpha, alpha)); labels become the mixed one-hot vectors. Face stacks
    (``av`` with a waveform audio branch) are mixed with the same weights.

    ((x, y, meta) → (x, soft y (batch, classes), meta).)
    """
    x, y, meta = batch
    wave, length = x["audio"], x["audio_length"]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    b = tf.shape(wave)[0]
    g1 = tf.random.stateless_gamma([b], seeds[0], alpha)
    g2 = tf.random.stateless_gamma([b], seeds[1], alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    lam = tf.maximum(lam, 1.0 - lam)
    valid = tf.cast(tf.range(tf.shape(wave)[1])[None, :] < length[:, None], tf.float32)
    rms = tf.sqrt(tf.reduce_sum(tf.square(wave) * valid, 1) / tf.maximum(tf.reduce_sum(valid, 1), 1.0))
    level = wave / tf.maximum(rms, 1e-6)[:, None] * tf.reduce_mean(rms)
    mixed = lam[:, None] * level + (1.0 - lam[:, None]) * tf.reverse(level, [0])
    onehot = tf.one_hot(y, num_classes)
    soft = lam[:, None] * onehot + (1.0 - lam[:, None]) * tf.reverse(onehot, [0])
    out = {"audio": mixed, "audio_length": tf.maximum(length, tf.reverse(length, [0]))}
    if "video" in x:
        v = tf.cast(x["video"], tf.float32)
        w = lam[:, None, None, None, None]
        out["video"] = tf.cast(tf.round(w * v + (1.0 - w) * tf.reverse(v, [0])), tf.uint8)
    return out, soft, meta


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
    return {**x, "partner": partner}, y, w
