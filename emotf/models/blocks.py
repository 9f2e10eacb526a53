"""Reusable pieces of the emotf networks: each ``apply_*`` takes and returns tensors."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from emotf.models.layers import SpectrogramColors

# The reference normalised spectrograms and frames with the ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RNN_CELLS = {"rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


def apply_input_normalization(x, *, normalize: bool, name: str):
    """ImageNet mean/std per channel for 3-channel [0, 1] inputs; identity when off.

    A stock ``Normalization`` layer with fixed statistics: no weights, so the
    parameter counts stay those of the paper.
    """
    if not normalize:
        return x
    channels = x.shape[-1]
    mean = IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,) * channels
    std = IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,) * channels
    return layers.Normalization(axis=-1, mean=list(mean), variance=[s * s for s in std], name=name)(x)


def apply_conv2d_stack(x, *, filters: Sequence[int], kernels: Sequence[Sequence[int]], pool: int = 2,
                       batch_norm: bool = False, name: str = "conv"):
    """Conv2D (same padding) → [BatchNorm] → ReLU → MaxPool, once per entry of ``filters``.

    With the paper's (16, 24, 32) filters and (12×16, 8×12, 5×7) kernels, a
    (200, 300, 3) input gives (25, 37, 32), i.e. 29,600 features.
    """
    if len(filters) != len(kernels):
        raise ValueError(f"filters and kernels differ in length. Received: {list(filters)}, {list(kernels)}")
    for i, (f, k) in enumerate(zip(filters, kernels, strict=True), start=1):
        x = layers.Conv2D(int(f), tuple(k), padding="same", name=f"{name}{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}{i}_bn")(x)
        x = layers.Activation("relu", name=f"{name}{i}_relu")(x)
        x = layers.MaxPooling2D(pool, name=f"{name}{i}_pool")(x)
    return x


def apply_birnn(x, *, cell: str, units: int, num_layers: int, dropout: float, return_sequences: bool = False,
                unroll: bool = False, name: str = "rnn"):
    """Stacked bidirectional recurrent layers with dropout between them (PyTorch ``nn.RNN(dropout=)``).

    ``unroll`` replaces the time loop by straight-line ops: right for the
    reference's length-1 sequences (no loop for XLA or TFLite to lower).
    """
    if cell not in RNN_CELLS:
        raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}. Received: {cell!r}")
    for i in range(num_layers):
        last = i == num_layers - 1
        rnn = RNN_CELLS[cell](int(units), return_sequences=return_sequences or not last, unroll=unroll,
                              name=f"{name}{i + 1}_{cell}")
        x = layers.Bidirectional(rnn, name=f"{name}{i + 1}")(x)
        if not last and dropout:
            x = layers.Dropout(dropout, name=f"{name}{i + 1}_dropout")(x)
    return x


def apply_head(x, num_classes: int | None, *, units: int, dropout: float, name: str = "head"):
    """The classifier, or the embedding when ``num_classes`` is None.

    Classifier: Dense(units, ReLU) → Dropout → Dense(num_classes) → softmax in
    float32 (safe under mixed precision). Embedding: a linear Dense(units), as
    the branches of the audio+video model end.
    """
    if num_classes is None:
        return layers.Dense(int(units), name=f"{name}_embedding")(x)
    x = layers.Dense(int(units), activation="relu", name=f"{name}_fc")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return apply_classifier(x, num_classes, name=name)


def apply_classifier(x, num_classes: int, *, name: str = "head"):
    x = layers.Dense(int(num_classes), name=f"{name}_logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)


def make_input(shape, name: str, dtype: str = "float32"):
    return keras.Input(shape=tuple(int(s) for s in shape), name=name, dtype=dtype)


def spectrogram_input(input_shape, *, colormap: str | None, normalize: bool, name: str = "audio"):
    """The audio input, and what the layers after it see: (inputs, x).

    With a ``colormap`` (the default of every builder) the input is the stored
    (H, W, 1) uint8 dB image, coloured inside the model (`SpectrogramColors`)
    to (H, W, 3) in [0, 1]; with None it is an image in [0, 1] with any number of
    channels (the input of models made before the colour map was a layer).
    """
    if colormap is None:
        inputs = make_input(input_shape, name)
        return inputs, apply_input_normalization(inputs, normalize=normalize, name=f"{name}_norm")
    if int(input_shape[-1]) != 1:
        raise ValueError(f"the stored spectrogram has one channel, (height, width, 1); the model colours it. "
                         f"Received: input_shape={tuple(input_shape)}")
    inputs = make_input(input_shape, name, "uint8")
    x = SpectrogramColors(colormap, name=f"{name}_colors")(inputs)
    return inputs, apply_input_normalization(x, normalize=normalize, name=f"{name}_norm")


def frames_input(input_shape, *, normalize: bool, name: str = "video"):
    """The stored (frames, H, W, 3) uint8 face stack, scaled to [0, 1] inside the model: (inputs, x)."""
    inputs = make_input(input_shape, name, "uint8")
    x = layers.Rescaling(1.0 / 255.0, name=f"{name}_scale")(inputs)
    return inputs, apply_input_normalization(x, normalize=normalize, name=f"{name}_norm")
