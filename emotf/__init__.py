"""emotf: emotion recognition from speech spectrograms and face video, in Keras 3 / TensorFlow."""

__version__ = "0.1.0"
