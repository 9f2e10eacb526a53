"""KerasTuner search spaces, one HyperModel per architecture family.

Each HyperModel takes the fixed facts (architecture, input shapes, number of
classes) in its constructor and reads ``hp`` only in ``resolve``/``build``; the
model itself comes from the ``emotf.models`` builders, so no model code lives
here. Every default equals the paper's setting (``tests/test_tuning.py`` pins
the full default ``hp.values``):

* dropout 0.2 after the FC layer (0.5 in the reference's CNN+LSTM), recurrent
  dropout 0.1 (0.3 in the CNN+LSTM);
* weight decay 0.01 and learning rate 1e-4 (the paper tried 1e-3, 1e-4, 1e-5);
* conv widths 16/24/32 (video 16/32/64/128) times a width multiplier of 1 (the
  paper tried doubling and quadrupling), FC 64, recurrent 128, video FC 256,
  fusion 64, contrastive margin 1.

``resolve(hp)`` turns the values into two dicts, the ``TrainConfig`` fields
(``lr``, ``weight_decay``, ``margin``: `SEARCHED`) and the builder arguments,
which is also what ``best_hparams.json`` holds and ``python -m emotf.fit
--hparams`` reads.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import keras_tuner

from emotf import models
from emotf.catalog import ARCHS, AUDIO_BRANCHES
from emotf.config import TrainConfig
from emotf.training import contrastive, runtime
from emotf.training.objectives import compile_classifier

OBJECTIVE = keras_tuner.Objective("val_ua", direction="max")
# The TrainConfig fields a search chooses (so python -m emotf.tune does not take them as flags).
SEARCHED = ("lr", "weight_decay", "margin")


def _scaled(filters: Sequence[int], width: float) -> list[int]:
    return [max(1, int(round(f * width))) for f in filters]


@functools.cache
def builder_defaults(arch: str) -> dict[str, Any]:
    """The default arguments of an architecture's builder: every search space's defaults (one home, the builder)."""
    params = inspect.signature(ARCHS[arch].build_fn()).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _train_default(arch: str, field: str) -> Any:
    """A training setting's default for the arch: its own (``catalog`` train_defaults), else TrainConfig's."""
    return ARCHS[arch].train_defaults.get(field, getattr(TrainConfig, field))


def _optimizer_space(hp, arch: str, lrs: Sequence[float] = (1e-3, 1e-4, 1e-5),
                     decays: Sequence[float] = (0.0, 1e-3, 1e-2, 1e-1)) -> dict[str, float]:
    return {"lr": hp.Choice("lr", list(lrs), default=_train_default(arch, "lr")),
            "weight_decay": hp.Choice("weight_decay", list(decays), default=_train_default(arch, "weight_decay"))}


def _audio_space(hp, arch: str, prefix: str = "", head: bool = True) -> dict[str, Any]:
    d = builder_defaults(arch)
    kw: dict[str, Any] = {
        "filters": _scaled(d["filters"], hp.Choice(f"{prefix}width", [0.5, 1.0, 2.0, 4.0], default=1.0)),
    }
    if "rnn_units" in d:
        kw["rnn_units"] = hp.Choice(f"{prefix}rnn_units", [64, 128, 256], default=d["rnn_units"])
        kw["rnn_dropout"] = hp.Float(f"{prefix}rnn_dropout", 0.0, 0.5, step=0.1, default=d["rnn_dropout"])
    if head:
        kw["fc_units"] = hp.Choice(f"{prefix}fc_units", [32, 64, 128, 256], default=d["fc_units"])
        kw["dropout"] = hp.Float(f"{prefix}dropout", 0.0, 0.6, step=0.1, default=d["dropout"])
    return kw


def _video_space(hp, prefix: str = "") -> dict[str, Any]:
    d = builder_defaults("video_3dcnn")
    return {
        "filters": _scaled(d["filters"], hp.Choice(f"{prefix}width", [0.5, 1.0, 2.0], default=1.0)),
        "fc_units": hp.Choice(f"{prefix}fc_units", [128, 256, 512], default=d["fc_units"]),
        "dropout": hp.Float(f"{prefix}dropout", 0.0, 0.6, step=0.1, default=d["dropout"]),
    }


class EmotionHyperModel(keras_tuner.HyperModel):
    """Common part: fixed facts in the constructor, a compiled classifier from ``build``.

    Args:
        arch: the emotf architecture key.
        input_shape: as the builder takes it (a dict for ``av``).
        num_classes: classes of the output.
        jit_compile: XLA for the compiled model.
        colormap: the colour map of the audio input (``--colormap``).
        augment: the run's augmentations (``--augment``): waveform models apply SpecAugment themselves, and
            mixup's soft labels need the loss that takes them.
        sample_rate: the records' sample rate (waveform models' front end; `emotf.models.build`).
    """

    archs: tuple[str, ...] = ()
    last_params: int | None = None  # parameters of the model ``build`` made last
    audio_arch = "cnn_rnn"

    def __init__(self, arch: str, input_shape, num_classes: int, *, jit_compile: bool = True,
                 colormap: str = "seismic", augment: tuple[str, ...] = (), sample_rate: int | None = None,
                 **kwargs):
        if arch not in self.archs:
            raise ValueError(f"{type(self).__name__} covers {list(self.archs)}. Received: arch={arch!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2. Received: {num_classes}")
        super().__init__(name=arch, **kwargs)
        self.arch = arch
        self.input_shape = input_shape
        self.num_classes = int(num_classes)
        self.jit_compile = jit_compile
        self.colormap = colormap
        self.augment = tuple(augment)
        self.sample_rate = sample_rate

    def resolve(self, hp) -> tuple[dict[str, Any], dict[str, Any]]:
        """hp → (TrainConfig fields, builder arguments)."""
        raise NotImplementedError

    def fit(self, hp, model, *args, **kwargs):
        # the datasets as the model's strategy needs them, as in training (unchanged but under multiworker)
        train, kwargs["validation_data"] = runtime.prepare_fit(model, args[0], kwargs.get("validation_data"))
        return model.fit(train, *args[1:], **kwargs)

    def build(self, hp) -> keras.Model:
        if not _in_strategy_scope():  # the tuner's end of trial clears it too (emotf.tuning.tuners)
            keras.backend.clear_session()  # a trial's graph must not outlive it (keras-tuner #395, #873)
        train, kwargs = self.resolve(hp)
        model, _ = models.build(self.arch, self.input_shape, self.num_classes, audio_arch=self.audio_arch,
                                colormap=self.colormap, augment=self.augment, sample_rate=self.sample_rate,
                                **kwargs)
        self.last_params = model.count_params()
        return compile_classifier(model, num_classes=self.num_classes, lr=train["lr"],
                                  weight_decay=train["weight_decay"], jit_compile=self.jit_compile,
                                  soft_labels="mixup" in self.augment)


class AudioHyperModel(EmotionHyperModel):
    """``cnn``, ``cnn_rnn``, ``cnn_lstm``, ``crnn``: conv width, FC and RNN units, dropouts, lr, weight decay."""

    archs = tuple(name for name, a in ARCHS.items() if a.modality == "audio")

    def resolve(self, hp):
        return _optimizer_space(hp, self.arch), _audio_space(hp, self.arch)


class VideoHyperModel(EmotionHyperModel):
    """``video_3dcnn``: Conv3D width, FC units, dropout, lr, weight decay (the paper could not widen it)."""

    archs = tuple(name for name, a in ARCHS.items() if a.modality == "video")

    def resolve(self, hp):
        return _optimizer_space(hp, self.arch), _video_space(hp)


class WaveformHyperModel(EmotionHyperModel):
    """``logmel_cnn``: conv width, per-utterance normalisation, FC units, dropout, lr, weight decay.

    Defaults are the recipe's (docs/training.md): lr 1e-3, weight decay 0.05, the builder's defaults.
    """

    archs = ("logmel_cnn",)

    def resolve(self, hp):
        d = builder_defaults(self.arch)
        return _optimizer_space(hp, self.arch, (3e-4, 1e-3, 3e-3), (1e-3, 1e-2, 5e-2, 1e-1)), {
            "channels": _scaled(d["channels"], hp.Choice("width", [0.5, 1.0, 2.0], default=1.0)),
            "norm": hp.Choice("norm", ["mean", "meanvar"], default=d["norm"]),
            "fc_units": hp.Choice("fc_units", [64, 128, 256], default=d["fc_units"]),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=d["dropout"]),
        }


class WhisperHyperModel(EmotionHyperModel):
    """``whisper_tiny``: the head's widths and dropout, how many top encoder blocks are fine-tuned and at what share
    of the learning rate, lr, weight decay. Defaults are the builder's and the arch's training defaults."""

    archs = ("whisper_tiny",)

    def resolve(self, hp):
        d = builder_defaults(self.arch)
        return _optimizer_space(hp, self.arch, (3e-4, 1e-3, 3e-3), (1e-2, 5e-2, 1e-1)), {
            "projection": hp.Choice("projection", [128, 256, 384], default=d["projection"]),
            "fc_units": hp.Choice("fc_units", [0, 128, 256], default=d["fc_units"]),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=d["dropout"]),
            "finetune_blocks": hp.Choice("finetune_blocks", [0, 1, 2], default=d["finetune_blocks"]),
            "finetune_lr_scale": hp.Choice("finetune_lr_scale", [0.03, 0.1, 0.3], default=d["finetune_lr_scale"]),
        }


class AVHyperModel(EmotionHyperModel):
    """``av``: both branches' widths, the fusion width, lr, weight decay and the contrastive margin.

    ``fit`` pre-trains the two encoders contrastively (with the trial's margin)
    when given ``pretrain=(dataset, steps_per_epoch, epochs)``, then fine-tunes
    the whole model, as ``emotf.fit`` does.
    """

    archs = tuple(name for name, a in ARCHS.items() if a.modality == "av")

    def __init__(self, arch: str, input_shape, num_classes: int, *, audio_arch: str = "cnn_rnn", **kwargs):
        super().__init__(arch, input_shape, num_classes, **kwargs)
        if audio_arch not in AUDIO_BRANCHES:
            raise ValueError(f"audio_arch must be one of {list(AUDIO_BRANCHES)}. Received: {audio_arch!r}")
        if ARCHS[audio_arch].modality != "audio":
            raise ValueError(f"the av search space covers the spectrogram audio branches "
                             f"{[a for a in AUDIO_BRANCHES if ARCHS[a].modality == 'audio']}; train av with "
                             f"--audio-arch {audio_arch} by python -m emotf.fit (its branch's own recipe)")
        self.audio_arch = audio_arch

    def resolve(self, hp):
        train = _optimizer_space(hp, self.arch)
        train["margin"] = hp.Float("margin", 0.25, 2.0, step=0.25, default=_train_default(self.arch, "margin"))
        audio = _audio_space(hp, self.audio_arch, prefix="audio_", head=False)
        audio["fc_units"] = hp.Choice("embed_dim", [32, 64, 128],  # both branches embed to this
                                      default=builder_defaults("video_3dcnn")["embed_dim"])
        video = _video_space(hp, prefix="video_")
        video["embed_dim"] = audio["fc_units"]
        kwargs = {f"audio_{k}": v for k, v in audio.items()}
        kwargs.update({f"video_{k}": v for k, v in video.items()})
        kwargs["fusion_units"] = hp.Choice("fusion_units", [32, 64, 128], default=builder_defaults(self.arch)[
            "fusion_units"])
        return train, kwargs

    def fit(self, hp, model, *args, pretrain: tuple | None = None, **kwargs):
        if pretrain is not None:
            dataset, steps, epochs = pretrain
            train, _ = self.resolve(hp)
            encoders = (model.get_layer("audio_encoder"), model.get_layer("video_encoder"))
            siamese = contrastive.siamese(encoders, self.input_shape, margin=train["margin"], lr=train["lr"],
                                          weight_decay=train["weight_decay"], jit_compile=self.jit_compile)
            dataset, _ = runtime.prepare_fit(siamese, dataset)
            siamese.fit(dataset, steps_per_epoch=steps, epochs=epochs, verbose=0)
        return super().fit(hp, model, *args, **kwargs)


def _in_strategy_scope() -> bool:
    """KerasTuner builds a trial's model inside ``strategy.scope()`` when given a distribution strategy;
    ``clear_session`` there empties the graph's strategy stack and the scope's exit fails ("pop from empty
    list")."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


# The search space of each architecture, by what it reads.
_BY_MODALITY: Mapping[str, type[EmotionHyperModel]] = {"audio": AudioHyperModel, "video": VideoHyperModel,
                                                        "av": AVHyperModel, "waveform": WaveformHyperModel}
FAMILIES: Mapping[str, type[EmotionHyperModel]] = {
    name: next((h for h in (WaveformHyperModel, WhisperHyperModel) if name in h.archs), _BY_MODALITY[a.modality])
    for name, a in ARCHS.items()}


def get_hypermodel(arch: str, input_shape, num_classes: int, **kwargs) -> EmotionHyperModel:
    """The search space of an architecture."""
    if arch not in FAMILIES:
        raise ValueError(f"no search space for {arch!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[arch](arch, input_shape, num_classes, **kwargs)
