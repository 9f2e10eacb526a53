"""Serving: a recording → its emotion with a trained run (`inference`, the work of ``python -m emotf.predict``)
and the model as a SavedModel or TFLite (`exporter`, the work of ``python -m emotf.export``)."""
