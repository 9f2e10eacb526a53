"""Model builders: ``build_<arch>(input_shape, num_classes, **kwargs) -> keras.Model``.

Models use only Keras layers and ``keras.ops``, so they run under the
TensorFlow, JAX and PyTorch backends; TensorFlow appears only in the data
pipeline. Every model takes the arrays records store: the (H, W, 1) uint8
spectrogram (coloured inside the model) and the (frames, H, W, 3) uint8 face
stack. Which builder belongs to which ``--arch`` is `emotf.catalog.ARCHS`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras

from emotf.catalog import arch as _arch
from emotf.catalog import wave_audio
from emotf.models import losses, metrics  # noqa: F401  (registered: a saved, compiled model reloads after this import)
from emotf.models.audio import build_cnn, build_cnn_lstm, build_cnn_rnn, build_crnn
from emotf.models.audiovisual import build_av, build_encoders, build_siamese, build_video_3dcnn
from emotf.models.layers import SpectrogramColors
from emotf.models.waveform import build_logmel_cnn
from emotf.models.whisper import build_whisper_tiny  # registers the encoder's layers, so its models reload

log = logging.getLogger("emotf")


def get_builder(arch: str):
    """The builder of an architecture key; a clear error for an unknown one."""
    return _arch(arch).build_fn()


def split_branch_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """Flat ``av`` builder arguments → (audio branch's, video branch's, the fusion's).

    ``audio_<k>`` goes to the audio branch as ``<k>``, ``video_<k>`` to the video
    branch; the rest (e.g. ``fusion_units``) stays with ``build_av``. This is
    how ``--hparams`` files and the ``av`` search space name branch arguments.
    """
    audio = {k[len("audio_"):]: v for k, v in kwargs.items() if k.startswith("audio_") and k != "audio_arch"}
    video = {k[len("video_"):]: v for k, v in kwargs.items() if k.startswith("video_")}
    rest = {k: v for k, v in kwargs.items() if not k.startswith(("audio_", "video_"))}
    return audio, video, rest


def build(arch: str, input_shape, num_classes: int, *, audio_arch: str = "cnn_rnn", colormap: str = "seismic",
          augment: tuple[str, ...] = (), sample_rate: int | None = None,
          **kwargs) -> tuple[keras.Model, tuple[keras.Model, keras.Model] | None]:
    """Any architecture from flat builder arguments, as ``fit`` and the search spaces build it.

    Args:
        arch: an ``emotf.catalog.ARCHS`` key.
        input_shape: the stored arrays' shapes (a dict for ``av`` and waveform models).
        audio_arch: ``av`` only: its audio branch.
        colormap: the colour map of the audio input (spectrogram models).
        augment: the run's augmentations; waveform models apply "specaugment" themselves.
        sample_rate: waveform models: the records' sample rate, which their front end is built for (None: the
            builder's default, `emotf.config.SAMPLE_RATE_HZ`).
        **kwargs: builder arguments; for ``av`` with ``audio_``/``video_`` prefixes (`split_branch_kwargs`).

    Returns:
        (model, encoders): for ``av`` its (audio, video) encoders, which contrastive
        pre-training trains; otherwise None.
    """
    spec = _arch(arch)
    if spec.modality == "av":
        audio_kw, video_kw, rest = split_branch_kwargs(kwargs)
        audio_kw = (_waveform_kwargs(audio_kw, augment, sample_rate) if wave_audio(arch, audio_arch)
                    else {"colormap": colormap, **audio_kw})
        encoders = build_encoders(input_shape, audio_arch=audio_arch, audio_kwargs=audio_kw, video_kwargs=video_kw)
        return build_av(input_shape, num_classes, encoders=encoders, **rest), encoders
    if spec.modality == "waveform":
        kwargs = _waveform_kwargs(kwargs, augment, sample_rate)
        return spec.build_fn()(input_shape["audio"], num_classes, **kwargs), None
    extra = {"colormap": colormap} if spec.modality == "audio" else {}
    return spec.build_fn()(input_shape, num_classes, **extra, **kwargs), None


def _waveform_kwargs(kwargs: Mapping[str, Any], augment: tuple[str, ...], sample_rate: int | None) -> dict:
    """A waveform model's builder arguments: SpecAugment inside it where the run augments so, the records' rate."""
    kwargs = {"spec_augment": "specaugment" in augment, **kwargs}
    if sample_rate is not None:
        kwargs["sample_rate"] = int(sample_rate)
    return kwargs


def with_stored_inputs(model: keras.Model, colormap: str = "seismic") -> keras.Model:
    """A model that takes the stored uint8 arrays: ``model`` itself, or an older one wrapped.

    Models saved before the colour map was a layer (emotf ≤ 0.1 run folders)
    take a coloured (H, W, 3) spectrogram and (frames, H, W, 3) frames in
    [0, 1]. They are wrapped: a uint8 (H, W, 1) input → `SpectrogramColors`
    (``colormap``: the run's own) → the old model, and a uint8 frames input →
    ÷255 → the old model; the weights are the old model's, unchanged.
    """
    structure = model.input
    tensors = structure if isinstance(structure, dict) else {"": structure}

    def old_image(t):  # a float (H, W, 3) image or a float (frames, H, W, 3) stack; not a waveform's input
        return "float" in str(t.dtype) and len(t.shape) in (4, 5) and t.shape[-1] == 3

    if not any(old_image(t) for t in tensors.values()):
        return model
    new, fed = {}, {}
    for key, t in tensors.items():
        shape, name = tuple(t.shape[1:]), key or t.name
        if not old_image(t):
            new[key] = fed[key] = keras.Input(shape=shape, dtype=t.dtype, name=name)
        elif len(shape) == 3:  # a spectrogram image
            new[key] = keras.Input(shape=(*shape[:2], 1), dtype="uint8", name=name)
            fed[key] = SpectrogramColors(colormap, name=f"{name}_colors")(new[key])
        else:  # a frame stack
            new[key] = keras.Input(shape=shape, dtype="uint8", name=name)
            fed[key] = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_scale")(new[key])
    if "" in new:
        return keras.Model(new[""], model(fed[""]), name=model.name)
    return keras.Model(new, model(fed), name=model.name)


__all__ = ["SpectrogramColors", "build", "build_av", "build_cnn", "build_cnn_lstm", "build_cnn_rnn", "build_crnn",
           "build_encoders", "build_logmel_cnn", "build_siamese", "build_video_3dcnn", "build_whisper_tiny",
           "get_builder", "split_branch_kwargs", "with_stored_inputs"]
