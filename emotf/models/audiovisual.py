"""The video 3D CNN, the two-stream audio+video model and its siamese pre-training graph.

The video input is the stored (frames, height, width, 3) uint8 face stack,
scaled to [0, 1] inside the model. Unlike the reference, whose video branch was
fed a spectrogram crop by mistake, these models receive the frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import layers

from emotf.catalog import ARCHS, AUDIO_BRANCHES
from emotf.config import SPEC_SHAPE, VIDEO_SHAPE
from emotf.models.blocks import apply_classifier, frames_input
from emotf.models.layers import PairDistance

DEFAULT_SHAPES = {"audio": (*SPEC_SHAPE, 1), "video": (*VIDEO_SHAPE, 3)}


def build_video_3dcnn(input_shape=DEFAULT_SHAPES["video"], num_classes: int | None = None, *,
                      filters: Sequence[int] = (16, 32, 64, 128), kernel: int = 3, fc_units: int = 256,
                      dropout: float = 0.2, embed_dim: int = 64, head_units: int = 64, normalize: bool = True,
                      name: str = "video_3dcnn") -> keras.Model:
    """The paper's video branch: four valid Conv3D (3×3×3), three MaxPool3D (1×3×3, stride 1×2×2).

    conv3d stack → flatten (21,504) → FC 256 (ReLU) → dropout 0.2 → FC 64 (linear).

    Args:
        input_shape: (frames, height, width, 3) of the stored uint8 face stack.
        num_classes: None gives the 64-d embedding (the branch of ``av``:
            5,813,568 parameters at the defaults); a number adds the ``av``
            fusion head over this one branch (FC ``head_units`` ReLU → classes),
            the video-only classifier.
        filters: the four Conv3D widths.
        kernel: the cubic kernel size.
        fc_units, dropout: the first fully connected layer and its dropout.
        embed_dim: the embedding width.
        normalize: ImageNet mean/std normalisation inside the model.

    Returns:
        A model (batch, *input_shape) → (batch, embed_dim) or (batch, num_classes).
    """
    inputs, x = frames_input(input_shape, normalize=normalize)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv3D(int(f), int(kernel), padding="valid", activation="relu", name=f"conv3d{i}")(x)
        if i < len(filters):
            x = layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), name=f"conv3d{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(int(fc_units), activation="relu", name="fc")(x)
    if dropout:
        x = layers.Dropout(dropout, name="fc_dropout")(x)
    x = layers.Dense(int(embed_dim), name="embedding")(x)
    if num_classes is not None:
        x = layers.Dense(int(head_units), activation="relu", name="head_fc")(x)
        x = apply_classifier(x, num_classes)
    return keras.Model(inputs, x, name=name)


def build_encoders(input_shape: Mapping[str, Sequence[int]], *, audio_arch: str = "cnn_rnn",
                   audio_kwargs: Mapping | None = None, video_kwargs: Mapping | None = None):
    """The two 64-d encoders of the two-stream model: (audio_encoder, video_encoder).

    Args:
        input_shape: {"audio": (h, w, 1), "video": (frames, h, w, 3)}, the stored arrays; with a waveform audio
            branch {"audio": (samples,), "audio_length": (), "video": ...}.
        audio_arch: which audio model is the audio branch ("cnn_rnn" in the paper; a waveform one, e.g.
            "whisper_tiny", reads {"audio", "audio_length"} and embeds to its ``fc_units``, 64 unless given).
        audio_kwargs, video_kwargs: builder arguments of each branch (widths, dropouts, the colour map).
    """
    if audio_arch not in AUDIO_BRANCHES:
        raise ValueError(f"audio_arch must be one of {sorted(AUDIO_BRANCHES)}. Received: {audio_arch!r}")
    audio_kwargs = dict(audio_kwargs or {})
    if ARCHS[audio_arch].modality == "waveform":
        audio_kwargs.setdefault("fc_units", int((video_kwargs or {}).get("embed_dim", 64)))
    audio = ARCHS[audio_arch].build_fn()(input_shape["audio"], None, name="audio_encoder", **audio_kwargs)
    video_kwargs = dict(video_kwargs or {})
    # Both branches embed into one space (the siamese distance needs it): the audio width sets it.
    video_kwargs.setdefault("embed_dim", int(audio.output.shape[-1]))
    video = build_video_3dcnn(input_shape["video"], None, name="video_encoder", **video_kwargs)
    if video.output.shape[-1] != audio.output.shape[-1]:
        raise ValueError(f"the audio and video embeddings differ in width ({audio.output.shape[-1]} vs "
                         f"{video.output.shape[-1]}); set video embed_dim equal to the audio fc_units")
    return audio, video


def build_av(input_shape: Mapping[str, Sequence[int]] | None = None, num_classes: int = 4, *,
             audio_arch: str = "cnn_rnn", audio_kwargs: Mapping | None = None, video_kwargs: Mapping | None = None,
             fusion_units: int = 64, encoders=None, name: str = "av") -> keras.Model:
    """The paper's (CNN+RNN)+3DCNN: audio 64 ‖ video 64 → FC 64 (ReLU) → classes.

    Args:
        input_shape: {"audio": (200, 300, 1), "video": (20, 60, 100, 3)} by default.
        num_classes: classes of the output.
        audio_arch, audio_kwargs, video_kwargs: as ``build_encoders``.
        fusion_units: width of the fusion layer.
        encoders: an (audio_encoder, video_encoder) pair to reuse, e.g. after
            contrastive pre-training; all their layers stay trainable.

    Returns:
        A model {"audio": (batch, h, w, 1) uint8, "video": (batch, frames, h, w, 3) uint8}
        → (batch, num_classes); 13,620,748 parameters at the defaults. With a waveform audio branch the audio
        input is {"audio": (batch, samples) float32, "audio_length": (batch,) int32} beside "video".
    """
    input_shape = input_shape or DEFAULT_SHAPES
    audio_enc, video_enc = encoders or build_encoders(input_shape, audio_arch=audio_arch,
                                                      audio_kwargs=audio_kwargs, video_kwargs=video_kwargs)
    a_in, v_in = _inputs_of(audio_enc, "audio"), _inputs_of(video_enc, "video")
    x = layers.Concatenate(name="fusion_concat")([audio_enc(a_in), video_enc(v_in)])
    x = layers.Dense(int(fusion_units), activation="relu", name="fusion_fc")(x)
    outputs = apply_classifier(x, num_classes, name="fusion")
    return keras.Model(_named(a_in, "audio") | {"video": v_in}, outputs, name=name)


def build_siamese(input_shape: Mapping[str, Sequence[int]] | None = None, num_pairs: int = 3, *,
                  audio_arch: str = "cnn_rnn", audio_kwargs: Mapping | None = None,
                  video_kwargs: Mapping | None = None, encoders=None, name: str = "siamese") -> keras.Model:
    """The contrastive pre-training graph: both encoders → Euclidean distances of chosen pairs.

    Each audio clip of the batch is paired with ``num_pairs`` video clips of the
    same batch, chosen by the pair sampler (``emotf.data.sample_pairs``): the
    clip's own video (positive), and negatives. Train it with
    ``emotf.losses.ContrastiveLoss``.

    Args:
        input_shape: as ``build_av``.
        num_pairs: pairs per audio clip (3: positive, hard, super-hard negative).
        encoders: an (audio_encoder, video_encoder) pair to train (shared with
            the ``av`` model that is fine-tuned afterwards).

    Returns:
        A model {"audio": (batch, h, w, 1) uint8, "video": (batch, frames, h, w, 3) uint8,
        "partner": (batch, num_pairs) int32} → (batch, num_pairs) distances.
    """
    input_shape = input_shape or DEFAULT_SHAPES
    audio_enc, video_enc = encoders or build_encoders(input_shape, audio_arch=audio_arch,
                                                      audio_kwargs=audio_kwargs, video_kwargs=video_kwargs)
    a_in, v_in = _inputs_of(audio_enc, "audio"), _inputs_of(video_enc, "video")
    p_in = keras.Input(shape=(int(num_pairs),), dtype="int32", name="partner")
    d = PairDistance(name="distance")([audio_enc(a_in), video_enc(v_in), p_in])
    return keras.Model(_named(a_in, "audio") | {"video": v_in, "partner": p_in}, d, name=name)


def _inputs_of(encoder: keras.Model, name: str):
    """The inputs of the two-stream graphs that feed ``encoder``, shaped and typed as it takes them: one input
    called ``name``, or the encoder's own dict of them (a waveform branch: "audio" and "audio_length")."""
    if isinstance(encoder.input, dict):
        return {key: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=key) for key, t in encoder.input.items()}
    (spec,) = encoder.inputs
    return keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=name)


def _named(inputs, name: str) -> dict:
    return dict(inputs) if isinstance(inputs, dict) else {name: inputs}
