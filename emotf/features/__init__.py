"""Features: a waveform → the stored spectrogram image or waveform (`audio`), a video span → a face stack
(`video`), a recording → a run's model inputs (`inputs`). The one feature path of preprocessing and
prediction."""
