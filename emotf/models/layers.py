"""The few custom layers emotf needs, registered so that saved models reload.

Everything else in the models is a stock Keras layer; nothing here uses
TensorFlow directly, so the models run under every Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from emotf.catalog import COLORMAPS

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
