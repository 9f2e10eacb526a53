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
        modality: the inputs it reads: "audio", "video" or "av" (both).
        paper_epochs: the reference's epochs (reference-implementation.md §7); ``--epochs 0`` uses them.
        builder: ``"module:function"`` of its ``build_<arch>(input_shape, num_classes, **kwargs)``.
        audio_branch: whether it can be the audio branch of the ``av`` model (``--audio-arch``).
        in_paper: whether the paper has it (the others are emotf's own).
    """

    name: str
    modality: str
    paper_epochs: int
    builder: str
    audio_branch: bool = False
    in_paper: bool = True

    def build_fn(self) -> Callable[..., Any]:
        """The builder function (imports Keras)."""
        module, _, func = self.builder.partition(":")
        return getattr(importlib.import_module(module), func)


ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("cnn", "audio", 50, "emotf.models.audio:build_cnn", audio_branch=True),
    Arch("cnn_rnn", "audio", 50, "emotf.models.audio:build_cnn_rnn", audio_branch=True),
    Arch("cnn_lstm", "audio", 20, "emotf.models.audio:build_cnn_lstm", audio_branch=True),
    Arch("crnn", "audio", 50, "emotf.models.audio:build_crnn", audio_branch=True, in_paper=False),
    Arch("video_3dcnn", "video", 15, "emotf.models.audiovisual:build_video_3dcnn"),
    Arch("av", "av", 15, "emotf.models.audiovisual:build_av"),
)}
AUDIO_BRANCHES = tuple(a.name for a in ARCHS.values() if a.audio_branch)
MODALITIES = ("audio", "video", "av")


def arch(name: str) -> Arch:
    """The architecture called ``name``; a clear error for an unknown one."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHS)}") from None


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

# How the one-channel dB spectrogram becomes the three channels the paper's models read
# (emotf.models.layers.SpectrogramColors, inside every model).
COLORMAPS = ("seismic", "gray")

# The paper's spectrogram augmentations (emotf.data.pipeline.augment_spectrogram).
AUGMENTATIONS = ("crop", "rotate")
