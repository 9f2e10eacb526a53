"""The named choices of emotf, each listed once: architectures, class sets, split schemes, data variants.

Keras-free and TensorFlow-free, so the configuration, the command lines and
the run-folder readers can all use it without loading a framework. Every
``--arch``, ``--audio-arch``, ``--classes``, ``--split``, ``--variant`` and
``--colormap`` choice of the command lines is generated from these tables.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture: what it reads, how long the reference trained it, and its builder.

    Attributes:
        name: the ``--arch`` key.
        modality: the inputs it reads: "audio" (the spectrogram image), "video", "av" (both), or
            "waveform" (the waveform; the model computes its own features).
        default_epochs: ``--epochs 0``: the reference's epochs (reference-implementation.md §7) for the
            paper's models, emotf's budget for its own (early stopping ends them sooner).
        builder: ``"module:function"`` of its ``build_<arch>(input_shape, num_classes, **kwargs)``.
        audio_branch: whether it can be the audio branch of the ``av`` model (``--audio-arch``). A waveform
            architecture as the branch makes the ``av`` model read waveform records with face stacks, and train
            with the branch's defaults (`trained_as`).
        in_paper: whether the paper has it (the others are emotf's own).
        xla: whether ``--jit-compile auto`` compiles it with XLA when training on a CPU (on a GPU auto is
            on): only where XLA was measured faster there. On the 2-core AMD EPYC (AVX-512) it was slower
            for every architecture measured (cnn and cnn_rnn 1.2x, logmel_cnn 1.6x slower, 0.8-1.9 GB more
            memory; docs/benchmarks.md).
        train_defaults: training settings (TrainConfig fields) the architecture is trained with unless a
            flag (or ``--hparams``) says otherwise; none for the paper's models, which take the paper's.
    """

    name: str
    modality: str
    default_epochs: int
    builder: str
    audio_branch: bool = False
    in_paper: bool = True
    xla: bool = False
    train_defaults: dict = dataclasses.field(default_factory=dict)

    def build_fn(self) -> Callable[..., Any]:
        """The builder function (imports Keras)."""
        module, _, func = self.builder.partition(":")
        return getattr(importlib.import_module(module), func)


# emotf's recipe for the waveform model (docs/training.md): chosen on validation UA of RAVDESS folds 0-1.
RECIPE = {"batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "lr_schedule": "warmup_cosine", "warmup_epochs": 3,
          "patience": 15, "augment": ("gain", "tilt", "noise", "speed", "specaugment", "mixup")}

# The pretrained encoder (docs/training.md): the recipe's augmentations and schedule, fewer epochs (the encoder
# arrives trained; only the layer mix, pooling and head learn from scratch); and, frozen, its head fitted on cached
# pooled states with 4 augmented views of each training utterance, each utterance levelled to -25 dBFS before
# Whisper's front end (more accurate on RAVDESS's folds than the streamed head, 3x faster, and deaf to the
# recording's level: docs/results.md).
WHISPER_RECIPE = {**RECIPE, "patience": 8, "head_fit": "linear", "views": 4, "model": {"level_dbfs": -25.0}}
# How whisper_tiny's own head is fitted, and its own builder arguments: not settings of the av model it is a branch
# of, nor of a search's trials (both train by streaming; a search draws the builder's arguments).
OWN_ONLY = ("head_fit", "views", "model")

ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("cnn", "audio", 50, "emotf.models.audio:build_cnn", audio_branch=True),
    Arch("cnn_rnn", "audio", 50, "emotf.models.audio:build_cnn_rnn", audio_branch=True),
    Arch("cnn_lstm", "audio", 20, "emotf.models.audio:build_cnn_lstm", audio_branch=True),
    Arch("crnn", "audio", 50, "emotf.models.audio:build_crnn", audio_branch=True, in_paper=False),
    Arch("video_3dcnn", "video", 15, "emotf.models.audiovisual:build_video_3dcnn"),
    Arch("av", "av", 15, "emotf.models.audiovisual:build_av"),
    Arch("logmel_cnn", "waveform", 60, "emotf.models.waveform:build_logmel_cnn", in_paper=False,
         train_defaults=RECIPE),
    Arch("whisper_tiny", "waveform", 30, "emotf.models.whisper:build_whisper_tiny", audio_branch=True,
         in_paper=False, train_defaults=WHISPER_RECIPE),
)}
AUDIO_BRANCHES = tuple(a.name for a in ARCHS.values() if a.audio_branch)
MODALITIES = ("audio", "video", "av", "waveform")


def arch(name: str) -> Arch:
    """The architecture called ``name``; a clear error for an unknown one."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHS)}") from None


def wave_audio(name: str, audio_arch: str) -> bool:
    """Whether a model reads the waveform beside the face stack: ``av`` with a waveform audio branch."""
    return arch(name).modality == "av" and arch(audio_arch).modality == "waveform"


def reads_wave(modality: str, wave_audio: bool) -> bool:
    """Whether a model of ``modality`` reads the waveform: the waveform models, and ``av`` with a waveform audio
    branch (``wave_audio``, `wave_audio`)."""
    return modality == "waveform" or (modality == "av" and wave_audio)


def trained_as(name: str, audio_arch: str) -> Arch:
    """The architecture whose training defaults and epochs a run of ``name`` takes: its own, except ``av`` with a
    waveform audio branch, which trains as that branch does (the pretrained encoder's recipe, the face stream
    added), so that the audio-visual model and its audio branch alone differ only by the face."""
    return arch(audio_arch) if wave_audio(name, audio_arch) else arch(name)


def train_defaults(name: str, audio_arch: str = "cnn_rnn", *, search: bool = False,
                   head_fit: str | None = None) -> dict[str, Any]:
    """The training settings a run of ``name`` takes unless a flag says otherwise (`trained_as`'s; "model": default
    builder arguments, under an ``--hparams`` file's), without ``OWN_ONLY`` where the run streams (the av model
    with the branch, a search). ``head_fit``: the run's where a flag chose it; a streamed head takes no views."""
    own = trained_as(name, audio_arch)
    streams = search or own.name != name
    out = {k: v for k, v in own.train_defaults.items() if not (streams and k in OWN_ONLY)}
    if (head_fit or out.get("head_fit", "stream")) == "stream":
        out.pop("views", None)
    return out


# The paper's 4 classes, in its index order (hap=0, sad=1, ang=2, neu=3), and its 3. "all" keeps every class.
CLASS_SETS: dict[str, tuple[str, ...]] = {
    "4": ("happy", "sad", "angry", "neutral"),
    "3": ("sad", "angry", "neutral"),
}
CLASS_CHOICES = ("all", *CLASS_SETS)

# Speaker-independent split schemes (emotf.data.splits); "actor-folds" is another name for "speaker-folds".
SPLIT_SCHEMES = ("auto", "loso", "speaker-folds", "actor-folds", "lospo")

# What preprocessing stores. The paper's data segmentations (Table 1) are spectrogram images: whole utterance or
# 3-s clips, each without or with noise cleanup. "wave" stores each utterance's waveform, silence trimmed, for the
# models that compute their own features (the waveform modality).
VARIANTS: dict[str, dict[str, Any]] = {
    "ds1": {"segment": "utterance", "cleanup": False, "features": "image"},
    "ds2": {"segment": "clips", "cleanup": False, "features": "image"},
    "ds3": {"segment": "utterance", "cleanup": True, "features": "image"},
    "ds4": {"segment": "clips", "cleanup": True, "features": "image"},
    "wave": {"segment": "utterance", "cleanup": False, "features": "wave"},
}

# The embedded default corpus (synthetic, IEMOCAP layout): the corpus name its records carry, so they never pass
# for a real IEMOCAP's.
SYNTHETIC_CORPUS = "synth_iemocap"

# How the one-channel dB spectrogram becomes the three channels the paper's models read
# (emotf.models.layers.SpectrogramColors, inside every model).
COLORMAPS = ("seismic", "gray")

# Training augmentations, by what they act on (emotf.data.pipeline): the paper's on spectrogram images, and
# on waveforms (gain, spectral tilt, noise at a random SNR, speed 0.9/1.0/1.1, SpecAugment masks inside the model,
# mixup of pairs of utterances). "--augment all" takes every one the architecture's input has.
IMAGE_AUGMENTATIONS = ("crop", "rotate")
WAVE_AUGMENTATIONS = ("gain", "tilt", "noise", "speed", "specaugment", "mixup")
AUGMENTATIONS = IMAGE_AUGMENTATIONS + WAVE_AUGMENTATIONS
