"""Model builders: ``build_<arch>(input_shape, num_classes, **kwargs) -> keras.Model``.

Models use only Keras layers and ``keras.ops``, so they run under the
TensorFlow, JAX and PyTorch backends; TensorFlow appears only in the data
pipeline.
"""

from emotf.models.audio import build_cnn, build_cnn_lstm, build_cnn_rnn, build_crnn
from emotf.models.audiovisual import build_av, build_encoders, build_siamese, build_video_3dcnn

ARCHITECTURES = {
    "cnn": build_cnn,
    "cnn_lstm": build_cnn_lstm,
    "cnn_rnn": build_cnn_rnn,
    "crnn": build_crnn,
    "video_3dcnn": build_video_3dcnn,
    "av": build_av,
}

# Which inputs each architecture reads: "audio", "video" or both.
MODALITIES = {"cnn": "audio", "cnn_lstm": "audio", "cnn_rnn": "audio", "crnn": "audio", "video_3dcnn": "video",
              "av": "av"}


def get_builder(arch: str):
    """The builder of an architecture key; a clear error for an unknown one."""
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None


__all__ = ["ARCHITECTURES", "MODALITIES", "build_av", "build_cnn", "build_cnn_lstm", "build_cnn_rnn", "build_crnn",
           "build_encoders", "build_siamese", "build_video_3dcnn", "get_builder"]
