"""emotf: emotion recognition from speech spectrograms and face video, in Keras 3 / TensorFlow.

The folders are the stages of the pipeline, in order:

    corpora/     corpus readers → `Utterance` lists; synthetic corpora in two real layouts
    features/    a waveform → the stored spectrogram image; a video span → a face stack
    records/     the TFRecord schema, the records folder (manifest, digest, shards), preprocessing
    data/        speaker-independent splits; the tf.data input pipeline
    models/      Keras builders (the colour map is their first layer), custom layers and losses
    training/    one run on one fold: trainer, run folder, runtime, callbacks, contrastive pre-training
    tuning/      KerasTuner search spaces and searches
    evaluation/  metrics, scoring per clip and utterance, re-scoring a run on any records, summaries
    serving/     a recording → its emotion; SavedModel / TFLite export

``catalog`` lists the named choices (architectures, class sets, split schemes,
variants), ``config`` the configuration dataclasses and ``cli`` what the command
lines share. The commands are ``python -m emotf.<command>``: ``preprocess``,
``synth``, ``fit``, ``tune``, ``evaluate``, ``predict``, ``export``, ``summarize``
(each parses its flags and calls its stage).
"""

__version__ = "0.1.0"
