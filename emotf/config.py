"""Frozen configuration dataclasses: preprocessing (audio, video) and training.

Every derived quantity (samples per window, frequency bins of the kept band, ...)
is computed here from the few numbers a user may change, so that the writer, the
parser and the prediction path can never disagree. Every ``TrainConfig`` field
carries its command-line help (and choices) in its metadata: ``emotf.cli``
generates the flags of ``python -m emotf.fit`` and ``python -m emotf.tune``
from them, so the two commands cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from emotf.catalog import (
    ARCHS,
    AUDIO_BRANCHES,
    AUGMENTATIONS,
    CLASS_CHOICES,
    COLORMAPS,
    IMAGE_AUGMENTATIONS,
    SPLIT_SCHEMES,
    VARIANTS,
    WAVE_AUGMENTATIONS,
    train_defaults,
    trained_as,
)
from emotf.catalog import wave_audio as _wave_audio

SCHEMA_VERSION = 1


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# emotf's sample rate, unless preprocessing is told another (--sample-rate): records store it
# (manifest sample_rate_hz) and everything after preprocessing takes the records' own.
SAMPLE_RATE_HZ = 16000
# A waveform model scores an utterance padded to a whole number of these seconds (its audio_length says how much is
# real), in evaluation batches and in prediction alike, so few input shapes occur (each traces the model once).
WAVE_BUCKET_S = 2.0


def bucket_samples(sample_rate: int, bucket_s: float = WAVE_BUCKET_S) -> int:
    """The padding bucket in samples at ``sample_rate``."""
    return max(1, int(round(bucket_s * sample_rate)))


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """How a waveform becomes a spectrogram image.

    The reference computed a 2048-point STFT with hop 512 at 44.1 kHz
    (46.4 ms window, 11.6 ms hop). At the native 16 kHz the same durations are
    743 and 186 samples; the FFT is zero-padded to 1024 points.
    """

    sample_rate_hz: int = SAMPLE_RATE_HZ
    window_ms: float = 2048 / 44.1
    hop_ms: float = 512 / 44.1
    n_fft: int = 1024
    fmin_hz: float = 400.0
    fmax_hz: float = 7800.0
    db_range: float = 60.0  # the image spans [-db_range, +db_range] dB (ref 1.0)
    top_db: float = 80.0  # librosa's default floor below the loudest bin, as in the reference
    # The image is absolute dB, so a corpus recorded 20 dB hotter looks 20 dB "angrier". A constant
    # gain per corpus (measured with --measure-level, no labels used) aligns corpora for cross-corpus
    # tests; 0 keeps the paper's features.
    gain_db: float = 0.0
    # Each utterance scaled so that its speech level (emotf.features.audio.active_level_dbfs) is this many dBFS;
    # None keeps the recorded level. Removes loudness as a cue, which does not carry across corpora
    # recorded or normalised differently (EmoDB is peak-normalised, RAVDESS is not).
    level_dbfs: float | None = None
    # Silence trimmed with a voice-activity detector (WebRTC VAD), so the amount of silence is no cue: leading and
    # trailing non-speech dropped, pauses shortened to max_pause_ms. On for the "wave" variant; an option for images.
    trim_silence: bool = False
    max_pause_ms: float = 300.0
    vad_aggressiveness: int = 2  # WebRTC VAD mode, 0 (least) to 3 (most aggressive in calling frames non-speech)
    # The VAD decides on a copy whose spectral slope is set to this many dB per octave (as it decides on a copy
    # scaled to one level), so a channel's tilt does not change which frames are trimmed; None: as recorded.
    vad_tilt: float | None = None
    # Images: each frequency row's mean over the image subtracted (its 0 dB is the mean), so that neither the
    # recording level nor a fixed channel tilt or EQ is in the image. Off: the paper's absolute dB.
    band_norm: bool = False
    # The "wave" variant: the longest waveform stored, in seconds (a longer utterance keeps its start; 0: whole).
    max_wave_s: float = 0.0
    height: int = 200
    width: int = 300
    clip_s: float = 3.0
    min_tail_s: float = 1.0  # a shorter remainder is dropped (docs/preprocessing.md)
    min_duration_s: float = 0.1
    silence_dbfs: float = -70.0  # peak below this counts as silent audio
    convert: bool = True  # resample / downmix instead of rejecting other formats
    # Audio recorded at a rate below 2 * fmax_hz (e.g. 8-kHz telephone speech) has nothing in the bands above its
    # Nyquist frequency: "accept" resamples it with a warning and counts it in the manifest (band_limited);
    # "reject" skips it as bad input.
    band_limited: str = "accept"

    def __post_init__(self):
        _check(self.sample_rate_hz >= 2 * self.fmax_hz,
               f"sample_rate_hz must be at least 2*fmax_hz. Received: sample_rate_hz={self.sample_rate_hz}")
        _check(0 <= self.fmin_hz < self.fmax_hz,
               f"need 0 <= fmin_hz < fmax_hz. Received: {self.fmin_hz}, {self.fmax_hz}")
        _check(self.win_length <= self.n_fft,
               f"n_fft={self.n_fft} is shorter than the window ({self.win_length} samples)")
        _check(self.height > 0 and self.width > 0, f"bad image size {self.height}x{self.width}")
        _check(self.clip_s > 0, f"clip_s must be positive. Received: {self.clip_s}")
        _check(self.level_dbfs is None or -100 < self.level_dbfs < 0,
               f"level_dbfs must lie in (-100, 0) dBFS. Received: {self.level_dbfs}")
        _check(0 <= self.min_tail_s <= self.clip_s, f"min_tail_s must lie in [0, clip_s]. Received: {self.min_tail_s}")
        _check(self.vad_aggressiveness in (0, 1, 2, 3),
               f"vad_aggressiveness must be 0, 1, 2 or 3. Received: {self.vad_aggressiveness}")
        _check(self.max_pause_ms >= 0 and self.max_wave_s >= 0, "max_pause_ms and max_wave_s must be >= 0")
        _check(self.vad_tilt is None or abs(self.vad_tilt) <= 24,
               f"vad_tilt must lie in [-24, 24] dB per octave. Received: {self.vad_tilt}")
        _check(self.vad_tilt is None or self.trim_silence,
               "vad_tilt sets what the VAD that trims silence decides on: it needs trim_silence (--trim-silence; the "
               "wave variant trims by default)")
        _check(self.band_limited in ("accept", "reject"),
               f"band_limited must be 'accept' or 'reject'. Received: {self.band_limited}")

    @property
    def win_length(self) -> int:
        return int(round(self.window_ms * self.sample_rate_hz / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * self.sample_rate_hz / 1000))

    @property
    def band_bins(self) -> tuple[int, int]:
        """[first, last) STFT bins whose centre frequency lies in [fmin_hz, fmax_hz]."""
        bin_hz = self.sample_rate_hz / self.n_fft
        return math.ceil(self.fmin_hz / bin_hz), math.floor(self.fmax_hz / bin_hz) + 1

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_s * self.sample_rate_hz))


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """How a video span becomes a (frames, height, width, 3) uint8 face stack."""

    frames: int = 20
    height: int = 60
    width: int = 100
    detector: str = "mtcnn"  # "mtcnn" or "fixed" (no detection, fixed box only)
    detect_frames: int = 4  # frames per clip the detector looks at; the box is their median
    face_margin: float = 0.25  # extra height around the detected face box
    # "paper": the face box widened to the stack's aspect (60 x 100: head, shoulders and background, the face a
    # third of the width); "fill": the face box itself (with the margin) stretched to the stack, so the face fills
    # every pixel.
    face_crop: str = "paper"
    min_confidence: float = 0.9
    encoding: str = "jpeg"  # frame-stack encoding in the records: "jpeg" (filmstrip) or "raw"
    jpeg_quality: int = 90
    iemocap_side_rule: str = "mocap-left"
    # A frame whose brightest pixel is below this (of 255) shows nothing (a black lead-in or fade): it is replaced
    # by the nearest frame of its stack that shows something. 0 keeps such frames.
    blank_level: int = 24

    def __post_init__(self):
        _check(self.frames >= 2, f"frames must be >= 2. Received: {self.frames}")
        _check(self.detector in ("mtcnn", "fixed"), f"detector must be 'mtcnn' or 'fixed'. Received: {self.detector}")
        _check(1 <= self.detect_frames <= self.frames,
               f"detect_frames must lie in [1, frames]. Received: {self.detect_frames}")
        _check(self.encoding in ("jpeg", "raw"), f"encoding must be 'jpeg' or 'raw'. Received: {self.encoding}")
        _check(self.face_crop in ("paper", "fill"), f"face_crop must be 'paper' or 'fill'. Received: {self.face_crop}")
        _check(0 <= self.blank_level <= 255, f"blank_level must lie in [0, 255]. Received: {self.blank_level}")
        _check(self.iemocap_side_rule in ("mocap-left", "mocap-right", "left", "right"),
               f"unknown iemocap_side_rule. Received: {self.iemocap_side_rule}")


# The stored arrays at the defaults (the paper's): a spectrogram image (height, width), a face stack
# (frames, height, width); the models' default input shapes add the channels (1 and 3).
SPEC_SHAPE = (AudioConfig.height, AudioConfig.width)
VIDEO_SHAPE = (VideoConfig.frames, VideoConfig.height, VideoConfig.width)


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """One preprocessing run: which corpus, which variant, which labels."""

    corpus: str = "iemocap"
    data: str = ""
    variant: str = "ds2"
    classes: str = "all"  # "all" (every label of the corpus), "4" or "3" (the paper's sets)
    merge_exc: bool = True  # IEMOCAP: excited counts as happy
    video: str = "auto"  # "auto" (where the corpus has video), "on" or "off"
    shard_size: int = 256  # utterances per shard at most
    strict: bool = False
    # more than this share of the inputs skipped (unreadable, unlisted) fails the run (the records are kept)
    max_skipped: float = 0.25
    # a CSV corpus's own label names -> canonical ones (e.g. {"mad": "angry"}); other unknown labels are an error
    label_map: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    audio: AudioConfig = AudioConfig()
    video_config: VideoConfig = VideoConfig()

    def __post_init__(self):
        _check(0.0 <= self.max_skipped <= 1.0, f"max_skipped must be a share in [0, 1]. Received: {self.max_skipped}")
        _check(self.variant in VARIANTS, f"variant must be one of {sorted(VARIANTS)}. Received: {self.variant}")
        _check(self.classes in CLASS_CHOICES, f"classes must be one of {CLASS_CHOICES}. Received: {self.classes}")
        _check(self.video in ("auto", "on", "off"), f"video must be auto, on or off. Received: {self.video}")
        _check(self.shard_size >= 1, f"shard_size must be >= 1. Received: {self.shard_size}")

    @property
    def segment(self) -> str:
        return VARIANTS[self.variant]["segment"]

    @property
    def features(self) -> str:
        """What the records hold: "image" (the paper's spectrogram images) or "wave" (the waveform)."""
        return VARIANTS[self.variant]["features"]

    @property
    def cleanup(self) -> bool:
        return VARIANTS[self.variant]["cleanup"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        d = dict(d)
        audio = AudioConfig(**d.pop("audio", {}))
        video = VideoConfig(**d.pop("video_config", {}))
        d["label_map"] = tuple(tuple(pair) for pair in d.get("label_map", ()))
        return cls(audio=audio, video_config=video, **d)

    def output_fingerprint(self) -> dict[str, Any]:
        """The fields that decide the content of the records (not where the input lives)."""
        d = self.to_dict()
        d.pop("data")
        d.pop("strict")
        d.pop("max_skipped")
        return json.loads(json.dumps(d))  # as it reads back from config.json (lists, not tuples)


# --------------------------------------------------------------------------- training

def option(default: Any, help: str, choices: tuple | None = None, **extra) -> Any:
    """A config field and its command-line flag (``--field-name``): help text and choices (`emotf.cli`)."""
    meta = {"help": help, **({"choices": tuple(choices)} if choices else {}), **extra}
    if isinstance(default, dict | list | tuple):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run (``python -m emotf.fit``) or search (``python -m emotf.tune``); every field is a flag.

    Defaults are the paper's settings: AdamW with lr 1e-4 and weight decay
    0.01, batch 64, ImageNet normalisation, class-balanced resampling of the
    training portion, 5 epochs of contrastive pre-training (margin 1) before
    the ``av`` model. ``model`` holds extra builder arguments (widths,
    dropouts), e.g. from a KerasTuner ``best_hparams.json`` (``--hparams``).
    """

    arch: str = option("cnn_rnn", "architecture", tuple(ARCHS))
    records: str = option("", "records folder (make tfrecords), or several joined by commas (multi-corpus "
                              "training); empty: the embedded synthetic corpus, preprocessed on first use")
    out: str = option("", "output folder (default: see the description above)")
    classes: str = option("all", "'all' (every class of the records) or the paper's set of 4 or 3", CLASS_CHOICES)
    split: str = option("auto", "speaker-independent split scheme (docs/training.md)", SPLIT_SCHEMES)
    test_corpus: str = option("", "several --records: the corpus tested and never trained or validated on "
                                  "(leave-one-corpus-out); empty: every corpus split by speakers")
    fold: int = option(0, "test fold, 0-based")
    folds: int = option(6, "number of speaker folds (speaker-folds)")
    val: str = option("speaker", "loso: hold out one speaker or a whole session for validation",
                     ("speaker", "session"))
    epochs: int = option(0, "0: the arch's default (the paper's epochs for the paper's models)")
    batch_size: int = option(64, "global batch size")
    lr: float = option(1e-4, "learning rate (AdamW)")
    weight_decay: float = option(0.01, "decoupled weight decay (AdamW)")
    lr_schedule: str = option("constant", "learning rate over training: constant (the paper's), or a linear "
                                          "warm-up over --warmup-epochs then a cosine decay to 0",
                              ("constant", "warmup_cosine"))
    warmup_epochs: int = option(0, "warmup_cosine: epochs of linear warm-up from 0 to --lr")
    pretrain_epochs: int = option(5, "av: epochs of contrastive pre-training (0: none)")
    margin: float = option(1.0, "av: contrastive margin")
    hard_fraction: float = option(0.75, "av: share of each batch paired with another emotion's video")
    super_hard_fraction: float = option(0.25, "av: share of each batch paired with another clip of its emotion")
    audio_arch: str = option("cnn_rnn", "av: the audio branch", AUDIO_BRANCHES)
    balance: str = option("resample", "training stream: class-balanced resampling or none", ("resample", "none"))
    augment: tuple[str, ...] = option((), f"training only, comma list: images {','.join(IMAGE_AUGMENTATIONS)}; "
                                          f"waveforms {','.join(WAVE_AUGMENTATIONS)}; all: every one of the "
                                          f"arch's input; none: off", list_of=AUGMENTATIONS)
    crop_s: float = option(3.0, "waveform models: seconds of each training utterance (a random stretch; a shorter "
                                "utterance is padded and masked)")
    head_fit: str = option("stream", "whisper_tiny, frozen: stream (the head trained by AdamW on augmented crops "
                                     "through the encoder, epoch by epoch) or linear (each utterance encoded once, "
                                     "whole; the head a class-balanced L2 softmax regression on its pooled states, the "
                                     "L2 strength chosen on validation UA: emotf.training.linear_head)",
                           ("stream", "linear"))
    refit: str = option("on", "--head-fit linear: after choosing the L2 strength on validation, fit it again on the "
                              "training and validation speakers together (on) or keep the training-only fit (off)",
                        ("on", "off"))
    views: int = option(0, "--head-fit linear: augmented passes of the training stream (--augment, without mixup, "
                           "on --crop-s crops) encoded and fitted beside the whole utterances (0: none)")
    colormap: str = option("seismic", "how the model colours the dB spectrogram", COLORMAPS)
    cache: str = option("auto", "keep the records in memory: auto (where they fit), memory, off",
                       ("auto", "memory", "off"))
    patience: int = option(0, "early stopping on validation UA after this many epochs without progress (0: off)")
    select: str = option("best", "keep the epoch of best validation UA, or the last", ("best", "last"))
    max_steps_per_epoch: int = option(0, "cap on the training steps of an epoch (0: the whole training portion)")
    mixed_precision: str = option("auto", "auto: mixed_float16 on a GPU, float32 on a CPU", ("auto", "on", "off"))
    jit_compile: str = option("auto", "XLA: auto is on in training on one GPU; on a CPU only for an arch it was "
                                      "measured faster for (its xla in emotf.catalog: none so far; "
                                      "docs/benchmarks.md); off in searches (docs/tuning.md)",
                             ("auto", "on", "off"))
    strategy: str = option("default", "tf.distribute strategy", ("default", "mirrored", "multiworker"))
    logical_cpus: int = option(0, "split the CPU into this many logical devices (mirrored on a CPU)")
    seed: int = option(0, "seed of weights, shuffles, resampling and augmentation")
    model: dict = option({}, "builder arguments (widths, dropouts); set by --hparams", cli=False)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            _check(choices is None or getattr(self, f.name) in choices,
                   f"{f.name} must be one of {list(choices or ())}. Received: {getattr(self, f.name)!r}")
        if "all" in self.augment:
            object.__setattr__(self, "augment", self.augmentations)
        fitting = self.augmentations
        bad = [a for a in self.augment if a not in fitting]
        _check(not bad, f"augment takes {list(fitting)} for {self.arch} (its input: {self.modality}). Received: {bad}")
        _check(self.crop_s > 0 and self.warmup_epochs >= 0, "crop_s must be positive and warmup_epochs >= 0")
        _check(self.views >= 0 and (self.views == 0 or self.head_fit == "linear"),
               f"views must be >= 0 and are --head-fit linear's. Received: {self.views}")
        _check(self.head_fit == "stream" or self.arch == "whisper_tiny",
               f"--head-fit linear fits whisper_tiny's head on its frozen encoder's pooled states. Received: "
               f"--arch {self.arch}")
        _check(self.epochs >= 0 and self.pretrain_epochs >= 0, "epochs must be >= 0")
        _check(self.batch_size >= 1, f"batch_size must be >= 1. Received: {self.batch_size}")
        _check(self.lr > 0, f"lr must be positive. Received: {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0. Received: {self.weight_decay}")
        _check(self.margin > 0, f"margin must be positive. Received: {self.margin}")
        _check(0 <= self.hard_fraction <= 1 and 0 <= self.super_hard_fraction <= 1, "pair fractions lie in [0, 1]")

    @property
    def num_epochs(self) -> int:
        return self.epochs or trained_as(self.arch, self.audio_arch).default_epochs

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The augmentations that fit the arch's input (images or waveforms; none for the face video alone)."""
        if self.wave_audio:
            return WAVE_AUGMENTATIONS
        return {"audio": IMAGE_AUGMENTATIONS, "av": IMAGE_AUGMENTATIONS, "waveform": WAVE_AUGMENTATIONS,
                "video": ()}[self.modality]

    @property
    def records_list(self) -> list[str]:
        """The records folders (several: multi-corpus training)."""
        return [r for r in self.records.split(",") if r]

    @property
    def modality(self) -> str:
        return ARCHS[self.arch].modality

    @property
    def wave_audio(self) -> bool:
        """``av`` with a waveform audio branch: it reads waveform records with face stacks."""
        return _wave_audio(self.arch, self.audio_arch)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["augment"] = list(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}}
        d["augment"] = tuple(d.get("augment", ()))
        return cls(**d)

    @classmethod
    def for_arch(cls, arch: str, **fields: Any) -> TrainConfig:
        """The configuration ``python -m emotf.fit --arch ARCH`` makes: the arch's own training defaults
        (`emotf.catalog.ARCHS`; the recipe of ``logmel_cnn``) under ``fields``."""
        defaults = train_defaults(arch, fields.get("audio_arch", "cnn_rnn"), head_fit=fields.get("head_fit"))
        return cls(arch=arch, **{**defaults, **fields})
