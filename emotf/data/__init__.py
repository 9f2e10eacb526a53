"""Data: speaker-independent splits of a records folder (`splits`) and the tf.data input pipeline
(`pipeline`, the only tf.data code of emotf)."""
