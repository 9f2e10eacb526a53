"""A trained model for serving, as a SavedModel or TFLite (the work of ``python -m emotf.export``).

``saved_model`` writes ``RUN/export/saved_model`` (``Model.export``, a
``serve`` signature taking the stored uint8 spectrogram batch, (n, H, W, 1),
and for video models the uint8 face stacks). ``tflite`` converts
that SavedModel to ``RUN/export/model.tflite`` (``--quantize`` for dynamic-range
int8 weights). Both are checked against the Keras model on a probe input
before the command reports success.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from emotf.runs import open_run

log = logging.getLogger("emotf")


def _probe(model, seed: int = 0, samples: int = 32000) -> list[np.ndarray]:
    """A batch of two random inputs of each of the model's inputs, in their own dtype: uint8 levels, [0, 1]
    images, or a waveform of ``samples`` (any-length axes) with its valid lengths."""
    rng = np.random.default_rng(seed)
    arrays = []
    for t in model.inputs:
        shape = (2, *(samples if d is None else d for d in t.shape[1:]))
        if t.dtype == "uint8":
            arrays.append(rng.integers(0, 256, shape, dtype=np.uint8))
        elif "int" in str(t.dtype):  # the valid samples of a waveform batch
            arrays.append(np.array([samples, samples * 3 // 4], dtype=np.int32))
        elif None in t.shape[1:]:  # a waveform
            arrays.append((rng.standard_normal(shape) * 0.1).astype(np.float32))
        else:
            arrays.append(rng.uniform(0, 1, shape).astype(np.float32))
    return arrays


def export(run_dir: str | Path, fmt: str = "saved_model", *, out: str | Path | None = None,
           quantize: bool = False) -> dict:
    """Export the run's model; returns {"path", "max_abs_diff"} against Keras on a probe batch."""
    import tensorflow as tf

    run = open_run(run_dir)
    model = run.load_model()
    out = Path(out or run.path / "export")
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "saved_model"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    probe = _probe(model)
    feed = probe[0] if len(probe) == 1 else {t.name: a for t, a in zip(model.inputs, probe, strict=True)}
    want = np.asarray(model.predict(feed, verbose=0))
    if fmt == "saved_model":
        served = tf.saved_model.load(str(saved))
        got = served.serve(*[tf.constant(a) for a in probe]) if len(probe) == 1 else served.serve(
            {k: tf.constant(v) for k, v in feed.items()})
        return {"path": str(saved), "max_abs_diff": float(np.abs(np.asarray(got) - want).max())}
    if fmt != "tflite":
        raise ValueError(f"format must be saved_model or tflite. Received: {fmt!r}")
    path = out / ("model_int8.tflite" if quantize else "model.tflite")
    unrolled = False
    try:
        blob = _convert(saved, quantize)
    except Exception as e:  # a recurrent loop over real time (crnn) that TFLite builtins cannot lower
        log.info("TFLite cannot lower the recurrent loop (%s); exporting an unrolled copy",
                 str(e).strip().splitlines()[-1][:100])
        unrolled_saved = out / "saved_model_unrolled"
        unrolled_copy(model).export(str(unrolled_saved), format="tf_saved_model", verbose=False)
        blob, unrolled = _convert(unrolled_saved, quantize), True
        shutil.rmtree(unrolled_saved, ignore_errors=True)
    path.write_bytes(blob)
    got = run_tflite(path, feed if isinstance(feed, dict) else probe)
    return {"path": str(path), "max_abs_diff": float(np.abs(got - want).max()), "bytes": path.stat().st_size,
            "unrolled": unrolled}


def _convert(saved: Path, quantize: bool) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if quantize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def unrolled_copy(model):
    """The same model with every recurrent layer unrolled (same weights, same outputs, no loop)."""

    def unroll(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("SimpleRNN", "LSTM", "GRU") and isinstance(node.get("config"), dict):
                node["config"]["unroll"] = True
            for v in node.values():
                unroll(v)
        elif isinstance(node, list):
            for v in node:
                unroll(v)

    config = model.get_config()
    unroll(config)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


class TFLiteRunner:
    """A loaded .tflite model that classifies a batch one sample at a time (its signature has batch 1
    or a dynamic batch); the interpreter is built once and re-allocated only when the input shape changes."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        """``num_threads``: the interpreter's threads (default: every core; TFLite's own default is one, which
        made it 2.4x slower than Keras on 2 cores)."""
        import tensorflow as tf

        self.num_threads = num_threads or os.cpu_count() or 1
        self.interp = tf.lite.Interpreter(model_path=str(path), num_threads=self.num_threads)
        self.inputs = sorted(self.interp.get_input_details(), key=lambda d: d["name"])
        self.output = self.interp.get_output_details()[0]["index"]
        self._shapes: list[tuple[int, ...]] = []

    def __call__(self, arrays) -> np.ndarray:
        """Class probabilities (n, classes) of ``arrays``: one array per model input, sharing n, or a dict of
        them by input name (e.g. {"audio", "audio_length"} of a waveform model)."""
        if isinstance(arrays, dict):
            arrays = [arrays[self._key(d["name"], arrays)] for d in self.inputs]
        elif len(arrays) > 1:
            # Two inputs (audio, video) are told apart by rank, as the input names sort (audio < video).
            arrays = sorted(arrays, key=lambda a: a.ndim)
        shapes = [(1, *a.shape[1:]) for a in arrays]
        if shapes != self._shapes:
            for d, shape in zip(self.inputs, shapes, strict=True):
                self.interp.resize_tensor_input(d["index"], shape)
            self.interp.allocate_tensors()
            self._shapes = shapes
        outs = []
        for i in range(arrays[0].shape[0]):
            for d, a in zip(self.inputs, arrays, strict=True):
                self.interp.set_tensor(d["index"], a[i:i + 1])
            self.interp.invoke()
            outs.append(self.interp.get_tensor(self.output))
        return np.concatenate(outs)

    @staticmethod
    def _key(tensor_name: str, arrays: dict) -> str:
        """The input a TFLite tensor name stands for ("serving_default_audio_length:0" → "audio_length")."""
        bare = tensor_name.split(":")[0].removeprefix("serving_default_")
        if bare not in arrays:
            raise ValueError(f"the TFLite model's input {tensor_name!r} is none of {sorted(arrays)}")
        return bare


def run_tflite(path: str | Path, arrays) -> np.ndarray:
    """Run a .tflite model on a batch, one sample at a time."""
    return TFLiteRunner(path)(arrays)
