"""A compact model of the waveform, built to hold across speakers, corpora and recording channels.

    waveform (batch, samples) + valid samples (batch,)
      → log-mel, 64 bands, 25 ms / 10 ms, floored 80 dB under the utterance's peak (`LogMel`)
      → per-utterance mean per band over the valid frames (`UtteranceNorm`): no level, no channel tilt
      → [training: SpecAugment masks]
      → 4 × (Conv 3×3, batch norm, ReLU, max-pool 2×2), 16/32/64/128 channels, each followed by a mask
        of the steps past the utterance (`TimeMask`)
      → the frequency axis folded into 128 features per time step
      → attention-weighted mean and standard deviation over the valid steps (`AttentiveStatsPooling`)
      → FC 128 (ReLU) → dropout → classes

The features are computed inside the model, so training, evaluation, predict,
SavedModel and TFLite share one path; the model takes any length (padding and
silence carry no weight: the pooling and the normalisation see the valid frames
only, and an utterance scores the same alone or zero-padded in a batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from emotf.config import SAMPLE_RATE_HZ
from emotf.models.blocks import apply_classifier
from emotf.models.layers import AttentiveStatsPooling, FrameCount, LogMel, SpecAugment, TimeMask, UtteranceNorm


def build_logmel_cnn(input_shape=(None,), num_classes: int = 4, *, sample_rate: int = SAMPLE_RATE_HZ, n_mels: int = 64,
                     norm: str = "mean", channels: Sequence[int] = (16, 32, 64, 128), fold_units: int = 128,
                     attention_units: int = 64, fc_units: int = 128, dropout: float = 0.3, spec_augment: bool = True,
                     freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_fraction: float = 0.1,
                     name: str = "logmel_cnn") -> keras.Model:
    """The log-mel CNN with attentive statistics pooling (emotf's own; not in the paper).

    Args:
        input_shape: (samples,): None for any length.
        num_classes: classes of the output.
        sample_rate, n_mels: the log-mel front end.
        norm: per-utterance normalisation of each band: "mean" (level and channel out), "meanvar"
            (also its spread), "none" (absolute dB, as the paper's features).
        channels: the conv blocks' widths.
        fold_units: features per time step after folding the frequency axis.
        attention_units, fc_units, dropout: the pooling's attention and the head.
        spec_augment: SpecAugment masks in training (``freq_masks`` of up to ``freq_width`` bands,
            ``time_masks`` of up to ``time_fraction`` of the frames).

    Returns:
        A model {"audio": (batch, samples) float32 in [-1, 1], "audio_length": (batch,) int32}
        → (batch, num_classes); 215,108 parameters at the defaults with 4 classes.
    """
    wave = keras.Input(shape=tuple(input_shape), name="audio")
    length = keras.Input(shape=(), dtype="int32", name="audio_length")
    front = LogMel(sample_rate=sample_rate, n_mels=n_mels, name="logmel")

    def steps(stride, name):  # the valid time steps after `stride` frames of pooling
        return FrameCount(front.frame, front.hop, stride, name=name)(length)

    frames = steps(1, "frames")
    x = UtteranceNorm(norm, name="utterance_norm")([front([wave, length]), frames])
    if spec_augment:
        x = SpecAugment(freq_masks, freq_width, time_masks, time_fraction, name="spec_augment")([x, frames])
    x = layers.Reshape((-1, n_mels, 1), name="as_image")(x)  # (batch, time, mel, 1)
    for i, c in enumerate(channels, start=1):
        x = layers.Conv2D(int(c), 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"conv{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"conv{i}_pool")(x)
        x = TimeMask(name=f"conv{i}_mask")([x, steps(2 ** i, f"conv{i}_steps")])
    stride = 2 ** len(channels)
    x = layers.Reshape((-1, (n_mels // stride) * int(channels[-1])), name="fold_frequency")(x)
    x = layers.Dense(int(fold_units), activation="relu", name="fold")(x)
    x = AttentiveStatsPooling(attention_units, name="pooling")([x, steps(stride, "steps")])
    x = layers.Dense(int(fc_units), activation="relu", name="head_fc")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model({"audio": wave, "audio_length": length}, apply_classifier(x, num_classes), name=name)
