"""TFRecord schema: feature keys, the writer and the parser, side by side.

One `tf.train.Example` per image (a whole utterance, or one 3-s clip of it).
See records/README.md for the schema in prose. Shards are named
``<unit>-<i:05d>-of-<n:05d>.tfrecord`` where the unit is one speaker, so a
speaker-independent split selects whole files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from emotf.config import SCHEMA_VERSION

# Each key is spelled once, here.
SPEC = "spec/encoded"
SPEC_HEIGHT = "spec/height"
SPEC_WIDTH = "spec/width"
VIDEO = "video/encoded"
VIDEO_ENCODING = "video/encoding"
VIDEO_FRAMES = "video/frames"
VIDEO_HEIGHT = "video/height"
VIDEO_WIDTH = "video/width"
VIDEO_FACE_FOUND = "video/face_found"
LABEL_INDEX = "label/index"
LABEL_NAME = "label/name"
LABEL_RAW = "label/raw"
SPEAKER = "speaker"
SESSION = "session"
GENDER = "gender"
UTT_ID = "utt_id"
CLIP_INDEX = "clip/index"
CLIP_COUNT = "clip/count"
CLIP_START = "clip/start_s"
CLIP_END = "clip/end_s"
CORPUS = "corpus"
MODE = "mode"
SCHEMA = "schema_version"

STRING_KEYS = (LABEL_NAME, LABEL_RAW, SPEAKER, SESSION, GENDER, UTT_ID, CORPUS, MODE, VIDEO_ENCODING)
INT_KEYS = (SPEC_HEIGHT, SPEC_WIDTH, LABEL_INDEX, CLIP_INDEX, CLIP_COUNT, SCHEMA,
            VIDEO_FRAMES, VIDEO_HEIGHT, VIDEO_WIDTH, VIDEO_FACE_FOUND)
FLOAT_KEYS = (CLIP_START, CLIP_END)


def shard_name(unit: str, index: int, count: int) -> str:
    return f"{unit}-{index:05d}-of-{count:05d}.tfrecord"


def serialize_example(ex: dict[str, Any]) -> bytes:
    """A record dict (keys above; ``spec`` as (H, W) uint8, ``video`` as encoded bytes or absent) → bytes."""
    spec = np.ascontiguousarray(ex["spec"], dtype=np.uint8)
    feats = {
        SPEC: tf.train.Feature(bytes_list=tf.train.BytesList(value=[spec.tobytes()])),
        SPEC_HEIGHT: _int(spec.shape[0]),
        SPEC_WIDTH: _int(spec.shape[1]),
        SCHEMA: _int(SCHEMA_VERSION),
    }
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
    SPEC: tf.io.FixedLenFeature([], tf.string),
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
                  with_video: bool = False, colormap: bool = False) -> dict[str, tf.Tensor]:
    """Parse one serialized record (graph mode, for ``Dataset.map``).

    Args:
        serialized: scalar string tensor.
        spec_shape: (height, width) of the stored spectrogram.
        video_shape: (frames, height, width) of the stored frame stack.
        with_video: decode the frame stack into ``"video"``.
        colormap: map the spectrogram through the seismic colour map.

    Returns:
        A dict with ``"spec"`` — (H, W, 1) uint8, or (H, W, 3) float32 in [0, 1]
        with ``colormap`` — ``"video"`` (frames, h, w, 3) uint8 when asked, and
        every metadata key of the schema as a scalar tensor.
    """
    f = tf.io.parse_single_example(serialized, _FEATURES)
    out = {k: f[k] for k in STRING_KEYS + INT_KEYS + FLOAT_KEYS}
    spec = tf.reshape(tf.io.decode_raw(f[SPEC], tf.uint8), [spec_shape[0], spec_shape[1], 1])
    out["spec"] = apply_seismic(spec) if colormap else spec
    if with_video:
        encoded = tf.sparse.to_dense(f[VIDEO], default_value="")
        out["video"] = decode_video(encoded[0], f[VIDEO_ENCODING], *video_shape)
    return out


def apply_seismic(spec_u8: tf.Tensor) -> tf.Tensor:
    """(..., 1) uint8 dB image → (..., 3) float32 RGB through the paper's seismic map."""
    from emotf.audio import seismic_lut

    lut = tf.constant(seismic_lut())
    return tf.gather(lut, tf.cast(spec_u8[..., 0], tf.int32))


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
