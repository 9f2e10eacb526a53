"""The few custom layers emotf needs, registered so that saved models reload.

Everything else in the models is a stock Keras layer; nothing here uses
TensorFlow directly, so the models run under every Keras backend.
"""

from __future__ import annotations

import keras
from keras import ops


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
