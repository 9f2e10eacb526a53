"""TFRecord schema: feature keys, the writer and the parser, side by side.

One `tf.train.Example` per image (a whole utterance, or one 3-s clip of it).
See records/README.md for the schema in prose; the folder the shards live in
(names, manifest, summaries) is `emotf.records.folder`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from emotf.config import SCHEMA_VERSION
from emotf.records.keys import (
    FLOAT_KEYS,
    INT_KEYS,
    SCHEMA,
    SPEC,
    SPEC_HEIGHT,
    SPEC_WIDTH,
    STRING_KEYS,
    VIDEO,
    VIDEO_ENCODING,
    WAVE,
    WAVE_INT_KEYS,
    WAVE_RATE,
    WAVE_SAMPLES,
)


def serialize_example(ex: dict[str, Any]) -> bytes:
    """A record dict → bytes.

    ``ex`` holds the keys of `emotf.records.keys` and the arrays: ``spec`` (H, W)
    uint8 (absent in waveform records), ``video`` encoded bytes (or absent), ``wave``
    (n,) int16 PCM and ``wave/rate`` (waveform records only).
    """
    spec = np.ascontiguousarray(ex.get("spec", np.zeros((0, 0))), dtype=np.uint8)
    feats = {
        SPEC: tf.train.Feature(bytes_list=tf.train.BytesList(value=[spec.tobytes()])),
        SPEC_HEIGHT: _int(spec.shape[0]),
        SPEC_WIDTH: _int(spec.shape[1]),
        SCHEMA: _int(SCHEMA_VERSION),
    }
    if "wave" in ex:
        pcm = np.ascontiguousarray(ex["wave"], dtype="<i2")
        feats[WAVE] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[pcm.tobytes()]))
        feats[WAVE_SAMPLES] = _int(len(pcm))
        feats[WAVE_RATE] = _int(int(ex[WAVE_RATE]))
    for key in STRING_KEYS:
        feats[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(ex.get(key, "")).encode()]))
    for key in INT_KEYS:
        if key not in feats:
            feats[key] = _int(int(ex.get(key, 0)))
    for key in FLOAT_KEYS:
        feats[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(ex.get(key, 0.0))]))
    feats[VIDEO] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[ex["video"]] if ex.get("video") else []))
    # deterministic: map entries in key order, so equal records are equal bytes (the records digest relies on it)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString(deterministic=True)


def _int(v: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))


_FEATURES = {
    SPEC: tf.io.FixedLenFeature([], tf.string, default_value=""),
    WAVE: tf.io.FixedLenFeature([], tf.string, default_value=""),
    **{k: tf.io.FixedLenFeature([], tf.int64, default_value=0) for k in WAVE_INT_KEYS},
    VIDEO: tf.io.VarLenFeature(tf.string),
    **{k: tf.io.FixedLenFeature([], tf.string, default_value="") for k in STRING_KEYS},
    **{k: tf.io.FixedLenFeature([], tf.int64, default_value=0) for k in INT_KEYS},
    **{k: tf.io.FixedLenFeature([], tf.float32, default_value=0.0) for k in FLOAT_KEYS},
}


def decode_video(encoded: tf.Tensor, encoding: tf.Tensor, frames: int, height: int, width: int) -> tf.Tensor:
    """Encoded frame stack → (frames, height, width, 3) uint8; graph-safe for either encoding."""
    shape = [frames, height, width, 3]
    return tf.cond(
        tf.equal(encoding, "raw"),
        lambda: tf.reshape(tf.io.decode_raw(encoded, tf.uint8), shape),
        lambda: tf.reshape(tf.io.decode_jpeg(encoded, channels=3), shape),
    )


def parse_example(serialized: tf.Tensor, *, spec_shape=(200, 300), video_shape=(20, 60, 100),
                  with_video: bool = False, with_wave: bool = False) -> dict[str, tf.Tensor]:
    """Parse one serialized record (graph mode, for ``Dataset.map``).

    Args:
        serialized: scalar string tensor.
        spec_shape: (height, width) of the stored spectrogram; None for waveform records.
        video_shape: (frames, height, width) of the stored frame stack.
        with_video: decode the frame stack into ``"video"``.
        with_wave: decode the waveform into ``"wave"``.

    Returns:
        A dict with ``"spec"`` (H, W, 1) uint8 — what every model takes; the
        colour map is a layer inside the models — ``"video"`` (frames, h, w, 3)
        uint8 when asked, ``"wave"`` (n,) float32 in [-1, 1] when asked, and every
        metadata key of the schema as a scalar tensor.
    """
    f = tf.io.parse_single_example(serialized, _FEATURES)
    out = {k: f[k] for k in STRING_KEYS + INT_KEYS + FLOAT_KEYS + WAVE_INT_KEYS}
    if spec_shape is not None:
        out["spec"] = tf.reshape(tf.io.decode_raw(f[SPEC], tf.uint8), [spec_shape[0], spec_shape[1], 1])
    if with_wave:
        out["wave"] = tf.cast(tf.io.decode_raw(f[WAVE], tf.int16), tf.float32) / 32768.0
    if with_video:
        encoded = tf.sparse.to_dense(f[VIDEO], default_value="")
        out["video"] = decode_video(encoded[0], f[VIDEO_ENCODING], *video_shape)
    return out


class ShardWriter:
    """Writes one shard under a temporary name and renames it only when complete.

    A killed run therefore leaves ``*.tfrecord.tmp`` files (ignored and
    overwritten later), never a half shard with the final name.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self._writer = tf.io.TFRecordWriter(str(self.tmp))
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, record: bytes) -> None:
        self._writer.write(record)
        self._hash.update(len(record).to_bytes(8, "little"))
        self._hash.update(record)
        self.count += 1

    def digest(self) -> str:
        """SHA-256 of the records written so far, in order (of the examples' bytes, not the file framing)."""
        return self._hash.hexdigest()

    def commit(self) -> None:
        self._writer.flush()
        self._writer.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def read_records(paths, **parse_kwargs) -> list[dict[str, Any]]:
    """Read whole record files eagerly into numpy dicts (tests and small tools; training uses emotf.data)."""
    out = []
    for raw in tf.data.TFRecordDataset([str(p) for p in paths]):
        ex = parse_example(raw, **parse_kwargs)
        out.append({k: (v.numpy().decode() if v.dtype == tf.string else v.numpy()) for k, v in ex.items()})
    return out
