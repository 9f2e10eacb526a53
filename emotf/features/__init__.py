"""Features: a waveform → the stored spectrogram image (`audio`), a video span → a face stack (`video`),
and audio decoding inside tf.data (`tf_audio`). The one feature path of preprocessing and prediction."""
