"""The paper's audio models, and a recurrent model over the real time axis.

All take the stored spectrogram, (height, width, 1) uint8 (row 0 the highest
frequency, columns are time), colour it inside the model (the paper's seismic
map, `emotf.models.layers.SpectrogramColors`; no weights) and return class
probabilities, or a linear embedding when ``num_classes`` is None (the audio
branch of the ``av`` model).

``cnn_rnn`` and ``cnn_lstm`` reproduce the reference exactly, including its
oddity: the flattened conv features become a sequence of length one, so the
"recurrent" layers never see time. ``crnn`` is the model the paper meant: the
recurrent layers run over the time columns of the conv feature map.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from emotf.config import SPEC_SHAPE
from emotf.models.blocks import apply_birnn, apply_conv2d_stack, apply_head, spectrogram_input

PAPER_FILTERS = (16, 24, 32)
PAPER_KERNELS = ((12, 16), (8, 12), (5, 7))


def _audio_model(input_shape, num_classes, trunk, *, filters, kernels, batch_norm, fc_units, dropout, normalize,
                 colormap, name) -> keras.Model:
    inputs, x = spectrogram_input(input_shape, colormap=colormap, normalize=normalize)
    x = apply_conv2d_stack(x, filters=filters, kernels=kernels, batch_norm=batch_norm)
    x = trunk(x)
    outputs = apply_head(x, num_classes, units=fc_units, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


def build_cnn(input_shape=(*SPEC_SHAPE, 1), num_classes: int | None = 4, *, filters: Sequence[int] = PAPER_FILTERS,
              kernels: Sequence[Sequence[int]] = PAPER_KERNELS, fc_units: int = 64, dropout: float = 0.2,
              normalize: bool = True, colormap: str | None = "seismic", name: str = "cnn") -> keras.Model:
    """The paper's CNN: conv stack → flatten → FC 64 (ReLU) → dropout → classes.

    Args:
        input_shape: (height, width, 1), the stored uint8 spectrogram; (height, width, channels) in [0, 1]
            with ``colormap=None``.
        num_classes: classes of the output; None gives the 64-d linear embedding.
        filters, kernels: the three conv layers (each followed by 2×2 max-pooling).
        fc_units: width of the fully connected layer.
        dropout: dropout after it.
        normalize: ImageNet mean/std normalisation inside the model.
        colormap: "seismic" (the paper's) or "gray": the colour map applied inside the model; None takes an
            image already coloured.

    Returns:
        A model (batch, *input_shape) → (batch, num_classes) probabilities.
        1,967,756 parameters at the defaults on (200, 300, 1).
    """
    return _audio_model(input_shape, num_classes, layers.Flatten(name="flatten"), filters=filters, kernels=kernels,
                        batch_norm=False, fc_units=fc_units, dropout=dropout, normalize=normalize, colormap=colormap,
                        name=name)


def _length_one_rnn(cell, units, num_layers, rnn_dropout, batch_norm):
    def trunk(x):
        x = layers.Flatten(name="flatten")(x)
        if batch_norm:
            x = layers.BatchNormalization(name="flatten_bn")(x)
        x = layers.Reshape((1, x.shape[-1]), name="as_length_one_sequence")(x)
        x = apply_birnn(x, cell=cell, units=units, num_layers=num_layers, dropout=rnn_dropout, unroll=True)
        if batch_norm:
            x = layers.BatchNormalization(name="rnn_bn")(x)
        return x
    return trunk


def build_cnn_rnn(input_shape=(*SPEC_SHAPE, 1), num_classes: int | None = 4, *,
                  filters: Sequence[int] = PAPER_FILTERS, kernels: Sequence[Sequence[int]] = PAPER_KERNELS,
                  rnn_units: int = 128, rnn_layers: int = 2, rnn_dropout: float = 0.1, fc_units: int = 64,
                  dropout: float = 0.2, normalize: bool = True, colormap: str | None = "seismic",
                  name: str = "cnn_rnn") -> keras.Model:
    """The paper's CNN+RNN, faithfully: the flat conv features as a length-1 sequence.

    conv stack → flatten (29,600) → 2 bidirectional SimpleRNN(128) layers with
    dropout 0.1 between them (256) → FC 64 (ReLU) → dropout 0.2 → classes.

    Args:
        input_shape, num_classes, filters, kernels, fc_units, dropout, normalize, colormap: as ``build_cnn``.
        rnn_units, rnn_layers, rnn_dropout: the recurrent stack.

    Returns:
        A model (batch, *input_shape) → (batch, num_classes); 7,798,924 parameters
        at the defaults (the reference's PyTorch count is 512 higher: two biases per cell).
    """
    trunk = _length_one_rnn("rnn", rnn_units, rnn_layers, rnn_dropout, batch_norm=False)
    return _audio_model(input_shape, num_classes, trunk, filters=filters, kernels=kernels, batch_norm=False,
                        fc_units=fc_units, dropout=dropout, normalize=normalize, colormap=colormap, name=name)


def build_cnn_lstm(input_shape=(*SPEC_SHAPE, 1), num_classes: int | None = 4, *,
                   filters: Sequence[int] = PAPER_FILTERS, kernels: Sequence[Sequence[int]] = PAPER_KERNELS,
                   rnn_units: int = 128, rnn_layers: int = 2, rnn_dropout: float = 0.3, fc_units: int = 64,
                   dropout: float = 0.5, normalize: bool = True, colormap: str | None = "seismic",
                   name: str = "cnn_lstm") -> keras.Model:
    """The reference's CNN+LSTM: batch norm after every conv, on the flat features and after the LSTM.

    conv(+BN) stack → flatten → BN → 2 bidirectional LSTM(128) on a length-1
    sequence, dropout 0.3 between → BN → FC 64 (ReLU) → dropout 0.5 → classes.

    Returns:
        A model (batch, *input_shape) → (batch, num_classes); 30,986,332 trainable
        parameters at the defaults (plus 59,856 batch-norm moving statistics).
    """
    trunk = _length_one_rnn("lstm", rnn_units, rnn_layers, rnn_dropout, batch_norm=True)
    return _audio_model(input_shape, num_classes, trunk, filters=filters, kernels=kernels, batch_norm=True,
                        fc_units=fc_units, dropout=dropout, normalize=normalize, colormap=colormap, name=name)


def build_crnn(input_shape=(*SPEC_SHAPE, 1), num_classes: int | None = 4, *,
               filters: Sequence[int] = PAPER_FILTERS, kernels: Sequence[Sequence[int]] = PAPER_KERNELS,
               cell: str = "lstm", rnn_units: int = 128, rnn_layers: int = 2, rnn_dropout: float = 0.1,
               pooling: str = "mean", fc_units: int = 64, dropout: float = 0.2, normalize: bool = True,
               colormap: str | None = "seismic", name: str = "crnn") -> keras.Model:
    """Not in the paper: the recurrent layers run over time.

    conv stack → (freq, time, ch) feature map → one step per time column with
    freq×ch features (37 steps of 800 at the defaults) → 2 bidirectional
    ``cell`` layers → mean over time (or the last states) → FC 64 → classes.

    Args:
        cell: "lstm", "gru" or "rnn".
        pooling: "mean" (average of the per-step outputs) or "last" (the final states).
        Others as ``build_cnn_rnn``.

    Returns:
        A model (batch, *input_shape) → (batch, num_classes).
    """
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last'. Received: {pooling!r}")

    def trunk(x):
        freq, steps, ch = x.shape[1:]
        x = layers.Permute((2, 1, 3), name="time_major")(x)
        x = layers.Reshape((steps, freq * ch), name="time_steps")(x)
        x = apply_birnn(x, cell=cell, units=rnn_units, num_layers=rnn_layers, dropout=rnn_dropout,
                        return_sequences=pooling == "mean")
        if pooling == "mean":
            x = layers.GlobalAveragePooling1D(name="time_mean")(x)
        return x

    return _audio_model(input_shape, num_classes, trunk, filters=filters, kernels=kernels, batch_norm=False,
                        fc_units=fc_units, dropout=dropout, normalize=normalize, colormap=colormap, name=name)
