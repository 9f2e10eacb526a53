"""The few custom layers emotf needs, registered so that saved models reload.

Everything else in the models is a stock Keras layer; nothing here uses
TensorFlow directly, so the models run under every Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from emotf.catalog import COLORMAPS
from emotf.config import SAMPLE_RATE_HZ

# matplotlib's "seismic": dark blue → blue → white → red → dark red, piecewise linear.
_SEISMIC_ANCHORS = np.array([
    [0.00, 0.0, 0.0, 0.3],
    [0.25, 0.0, 0.0, 1.0],
    [0.50, 1.0, 1.0, 1.0],
    [0.75, 1.0, 0.0, 0.0],
    [1.00, 0.5, 0.0, 0.0],
])


def seismic_lut() -> np.ndarray:
    """(256, 3) float32 RGB in [0, 1]: the seismic diverging map, 0 dB white at the centre."""
    t = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(t, _SEISMIC_ANCHORS[:, 0], _SEISMIC_ANCHORS[:, c]) for c in (1, 2, 3)],
                    axis=1).astype(np.float32)


def colormap_lut(colormap: str) -> np.ndarray:
    """(256, 3) float32: the RGB of each stored uint8 level under ``colormap`` ("seismic" or "gray")."""
    if colormap == "seismic":
        return seismic_lut()
    if colormap == "gray":
        return np.repeat(np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None], 3, axis=1)
    raise ValueError(f"colormap must be one of {list(COLORMAPS)}. Received: {colormap!r}")


@keras.saving.register_keras_serializable(package="emotf")
class SpectrogramColors(keras.layers.Layer):
    """The stored dB spectrogram → the paper's colour image, as the first layer of every audio model.

    Input: (batch, H, W, 1) uint8 levels (0 ↔ −60 dB, 255 ↔ +60 dB, as records
    store them). Output: (batch, H, W, 3) in [0, 1], each level looked up in a
    256-entry table (the seismic map, or grey in all three channels). The table
    is a constant, not a weight, so parameter counts are unchanged; because it
    is inside the model, training, evaluation, prediction, SavedModel and
    TFLite all feed the same uint8 array.

    Args:
        colormap: "seismic" (the paper's) or "gray".
    """

    def __init__(self, colormap: str = "seismic", **kwargs):
        super().__init__(**kwargs)
        self.colormap = colormap
        self._lut = colormap_lut(colormap)

    def call(self, inputs):
        levels = ops.cast(inputs[..., 0], "int32")
        return ops.take(ops.convert_to_tensor(self._lut, dtype=self.compute_dtype), levels, axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self):
        return {**super().get_config(), "colormap": self.colormap}


@keras.saving.register_keras_serializable(package="emotf")
class PairDistance(keras.layers.Layer):
    """Euclidean distance between each audio embedding and K chosen video embeddings.

    Inputs ``[audio, video, partner]``: ``audio`` and ``video`` are (batch, dim)
    embeddings of the same batch of clips; ``partner`` is (batch, K) int, the
    row of ``video`` paired with each audio row. Output: (batch, K) distances
    ``||audio_i - video_partner[i, k]||_2``, computed in float32.
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        audio, video, partner = inputs
        audio = ops.cast(audio, "float32")
        video = ops.cast(video, "float32")
        chosen = ops.take(video, ops.cast(partner, "int32"), axis=0)  # (batch, K, dim)
        sq = ops.sum(ops.square(ops.expand_dims(audio, 1) - chosen), axis=-1)
        # The floor keeps the gradient of sqrt finite when a pair coincides.
        return ops.sqrt(ops.maximum(sq, self.epsilon))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[2][1])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# --------------------------------------------------------------------------- the waveform front end

def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32: triangular filters, equally spaced on the HTK mel scale, unit peak."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None, :] - lower) / (centre - lower)
    down = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(up, down)).T.astype(np.float32)


@keras.saving.register_keras_serializable(package="emotf")
class LogMel(keras.layers.Layer):
    """Waveform → log-mel spectrogram in dB, floored ``floor_db`` below each utterance's own maximum.

    Input ``[wave, length]``: (batch, samples) float in [-1, 1], zero-padded, and
    (batch,) int valid samples. Output: (batch, frames, n_mels) float32, frames
    1 + samples // hop (centred, Hann window); the valid ones (`valid_frames`) are
    those whose window ends inside the utterance, so padding never reaches them. The
    floor is relative, so a gain change shifts every value by the same number of dB
    and nothing else. No weights.

    Args:
        sample_rate, frame_ms, hop_ms, n_fft: the STFT (``n_fft`` None: the power of two that holds a frame;
            512 at 16 kHz).
        n_mels, fmin_hz, fmax_hz: the mel filters (``fmax_hz`` None: 0.4875 of the rate; 7.8 kHz at 16 kHz).
        floor_db: the dynamic range kept below the utterance's loudest mel bin.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE_HZ, frame_ms: float = 25.0, hop_ms: float = 10.0,
                 n_fft: int | None = None, n_mels: int = 64, fmin_hz: float = 50.0, fmax_hz: float | None = None,
                 floor_db: float = 80.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Scaled with the rate, so that records at another rate see the same band and frame in time.
        n_fft = n_fft or 1 << (int(round(frame_ms * sample_rate / 1000)) - 1).bit_length()
        fmax_hz = fmax_hz or 0.4875 * sample_rate
        self.sample_rate, self.frame_ms, self.hop_ms, self.n_fft = int(sample_rate), frame_ms, hop_ms, int(n_fft)
        self.n_mels, self.fmin_hz, self.fmax_hz, self.floor_db = int(n_mels), fmin_hz, fmax_hz, floor_db
        self.frame = int(round(frame_ms * sample_rate / 1000))
        self.hop = int(round(hop_ms * sample_rate / 1000))
        if self.frame > self.n_fft or not 0 <= fmin_hz < fmax_hz <= sample_rate / 2:
            raise ValueError(f"need frame <= n_fft and 0 <= fmin < fmax <= rate/2. Received: frame {self.frame}, "
                             f"n_fft {n_fft}, fmin {fmin_hz}, fmax {fmax_hz}")
        self._mel = mel_filterbank(self.n_fft, self.sample_rate, self.n_mels, fmin_hz, fmax_hz)

    def call(self, inputs):
        wave, length = inputs
        wave = ops.cast(wave, "float32")
        re, im = ops.stft(wave, self.frame, self.hop, self.n_fft, window="hann", center=True)
        mel = ops.matmul(re * re + im * im, ops.convert_to_tensor(self._mel))  # (batch, frames, n_mels) power
        valid = time_mask(valid_frames(length, self.frame, self.hop), ops.shape(mel)[1])
        valid = ops.expand_dims(ops.cast(valid, "float32"), -1)
        peak = ops.max(mel * valid, axis=(1, 2), keepdims=True)
        floor = ops.maximum(peak, 1e-20) * (10.0 ** (-self.floor_db / 10.0))
        return 10.0 * ops.log(ops.maximum(mel, floor)) / np.log(10.0)

    def compute_output_shape(self, input_shapes):
        samples = input_shapes[0][1]
        return (input_shapes[0][0], None if samples is None else 1 + samples // self.hop, self.n_mels)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "frame_ms": self.frame_ms,
                "hop_ms": self.hop_ms, "n_fft": self.n_fft, "n_mels": self.n_mels, "fmin_hz": self.fmin_hz,
                "fmax_hz": self.fmax_hz, "floor_db": self.floor_db}


def time_mask(valid, steps):
    """(batch, steps) bool: step t < valid."""
    return ops.expand_dims(ops.arange(steps), 0) < ops.expand_dims(ops.cast(valid, "int32"), 1)


def valid_frames(length, frame: int, hop: int):
    """The frames of a centred STFT whose window ends inside ``length`` samples (at least 1)."""
    return ops.maximum(1 + ops.floor_divide(ops.cast(length, "int32") - frame // 2, hop), 1)


@keras.saving.register_keras_serializable(package="emotf")
class FrameCount(keras.layers.Layer):
    """Valid steps (batch,) int32 of ``length`` samples after a front end of this ``frame`` and ``hop`` and
    ``stride`` frames of pooling: `valid_frames` // stride, at least 1."""

    def __init__(self, frame: int = 400, hop: int = 160, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.frame, self.hop, self.stride = int(frame), int(hop), int(stride)

    def call(self, length):
        return ops.maximum(ops.floor_divide(valid_frames(length, self.frame, self.hop), self.stride), 1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "frame": self.frame, "hop": self.hop, "stride": self.stride}


@keras.saving.register_keras_serializable(package="emotf")
class TimeMask(keras.layers.Layer):
    """Zeroes the time steps past each utterance's valid ones: ``[x, steps]`` → x, x (batch, time, ...).

    After every block of a model of variable-length input, so that what lies beyond an
    utterance is exactly what zero padding would be, and an utterance scores the same
    alone or padded in a batch. No weights.
    """

    def call(self, inputs):
        x, steps = inputs
        mask = ops.cast(time_mask(steps, ops.shape(x)[1]), x.dtype)
        return x * ops.reshape(mask, (ops.shape(x)[0], ops.shape(x)[1]) + (1,) * (len(x.shape) - 2))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="emotf")
class WaveLevel(keras.layers.Layer):
    """Each waveform scaled to one RMS level over its valid samples: ``[wave, length]`` → (batch, samples).

    ``level_dbfs`` is the RMS level in dB relative to full scale (a full-scale sine is -3 dBFS). A gain applied
    to the input changes nothing after it (up to float round-off), so a model whose features are absolute
    levels (Whisper's log-mel) stops hearing how loud the recording was. Padding stays 0. No weights.
    """

    def __init__(self, level_dbfs: float = -25.0, epsilon: float = 1e-8, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.level_dbfs, self.epsilon = float(level_dbfs), float(epsilon)

    def call(self, inputs):
        wave, length = inputs
        wave = ops.cast(wave, "float32") * ops.cast(time_mask(length, ops.shape(wave)[1]), "float32")
        n = ops.maximum(ops.cast(length, "float32"), 1.0)
        rms = ops.sqrt(ops.sum(ops.square(wave), axis=1, keepdims=True) / ops.expand_dims(n, -1) + self.epsilon ** 2)
        return wave * (10.0 ** (self.level_dbfs / 20.0) / rms)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "level_dbfs": self.level_dbfs, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="emotf")
class UtteranceNorm(keras.layers.Layer):
    """Per-utterance normalisation of each feature over the valid frames; padded frames become 0.

    Input ``[x, frames]``: (batch, time, features) and (batch,) valid frames.
    ``mode``: "mean" subtracts each feature's mean (in dB: removes the level and any
    fixed filter of the channel), "meanvar" also divides by its standard deviation,
    "none" only zeroes the padding. No weights.
    """

    MODES = ("mean", "meanvar", "none")

    def __init__(self, mode: str = "mean", epsilon: float = 1e-3, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}. Received: {mode!r}")
        self.mode, self.epsilon = mode, float(epsilon)

    def call(self, inputs):
        x, frames = inputs
        x = ops.cast(x, "float32")
        valid = ops.expand_dims(ops.cast(time_mask(frames, ops.shape(x)[1]), "float32"), -1)
        n = ops.maximum(ops.sum(valid, axis=1, keepdims=True), 1.0)
        if self.mode != "none":
            mean = ops.sum(x * valid, axis=1, keepdims=True) / n
            x = x - mean
            if self.mode == "meanvar":
                var = ops.sum(ops.square(x) * valid, axis=1, keepdims=True) / n
                x = x / ops.sqrt(var + self.epsilon)
        return x * valid

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="emotf")
class SpecAugment(keras.layers.Layer):
    """SpecAugment masks in training: ``freq_masks`` bands of up to ``freq_width`` features and ``time_masks``
    stretches of up to ``time_fraction`` of each utterance's valid frames, set to 0 (the mean, after
    `UtteranceNorm`). The identity in inference. Seeded (``seed``; Keras's global seed where None).

    Input ``[x, frames]``: (batch, time, features) and (batch,) valid frames.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_fraction: float = 0.1,
                 seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_fraction = int(time_masks), float(time_fraction)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        x, frames = inputs
        if not training:
            return x
        batch, steps, feats = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        keep = ops.ones_like(x)
        valid = ops.expand_dims(ops.cast(frames, "float32"), 1)
        for _ in range(self.freq_masks):
            width = ops.floor(keras.random.uniform((batch, 1), 0, self.freq_width + 1, seed=self.generator))
            start = ops.floor(keras.random.uniform((batch, 1), 0, 1, seed=self.generator) * (feats - width + 1))
            f = ops.expand_dims(ops.cast(ops.arange(feats), "float32"), 0)
            band = ops.logical_and(f >= start, f < start + width)  # (batch, features)
            keep = keep * ops.expand_dims(ops.cast(ops.logical_not(band), "float32"), 1)
        for _ in range(self.time_masks):
            width = ops.floor(keras.random.uniform((batch, 1), 0, 1, seed=self.generator) * valid * self.time_fraction)
            start = ops.floor(keras.random.uniform((batch, 1), 0, 1, seed=self.generator) * (valid - width + 1))
            t = ops.expand_dims(ops.cast(ops.arange(steps), "float32"), 0)
            stretch = ops.logical_and(t >= start, t < start + width)  # (batch, time)
            keep = keep * ops.expand_dims(ops.cast(ops.logical_not(stretch), "float32"), -1)
        return x * keep

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "freq_masks": self.freq_masks, "freq_width": self.freq_width,
                "time_masks": self.time_masks, "time_fraction": self.time_fraction, "seed": self.seed}


@keras.saving.register_keras_serializable(package="emotf")
class AttentiveStatsPooling(keras.layers.Layer):
    """Attention-weighted mean and standard deviation over the valid time steps: (batch, time, ch) → (batch, 2 ch).

    Input ``[h, steps]``: the features and (batch,) valid steps. The attention is a
    small MLP (``units`` tanh → 1 logit per step), softmax over the valid steps only,
    so padding and the utterance's length carry no weight.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shapes):
        channels = int(input_shapes[0][-1])
        self.hidden = keras.layers.Dense(self.units, activation="tanh", name="attention_hidden")
        self.hidden.build((None, None, channels))
        self.score = keras.layers.Dense(1, name="attention_score")
        self.score.build((None, None, self.units))

    def call(self, inputs):
        h, steps = inputs
        valid = ops.expand_dims(time_mask(steps, ops.shape(h)[1]), -1)
        logits = ops.cast(self.score(self.hidden(h)), "float32")
        logits = ops.where(valid, logits, -1e9)
        alpha = ops.softmax(logits, axis=1)
        h = ops.cast(h, "float32")
        mean = ops.sum(alpha * h, axis=1)
        var = ops.sum(alpha * ops.square(h), axis=1) - ops.square(mean)
        return ops.cast(ops.concatenate([mean, ops.sqrt(ops.maximum(var, 1e-6))], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 2 * input_shapes[0][-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="emotf")
class StatsPooling(keras.layers.Layer):
    """Mean and standard deviation over the valid time steps, each step weighted alike: ``[h, steps]`` → (batch,
    2 ch), computed in float32. No weights; padding carries no weight."""

    def call(self, inputs):
        h, steps = inputs
        valid = ops.expand_dims(ops.cast(time_mask(steps, ops.shape(h)[1]), "float32"), -1)
        h = ops.cast(h, "float32")
        n = ops.maximum(ops.sum(valid, axis=1), 1.0)
        mean = ops.sum(h * valid, axis=1) / n
        var = ops.sum(ops.square(h) * valid, axis=1) / n - ops.square(mean)
        return ops.cast(ops.concatenate([mean, ops.sqrt(ops.maximum(var, 1e-6))], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 2 * input_shapes[0][-1])
