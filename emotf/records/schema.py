"""TFRecord schema: feature keys, the writer and the parser, side by side.

One `tf.train.Example` per image (a whole utterance, or one 3-s clip of it).
See records/README.md for the schema in prose; the folder the shards live in
(names, manifest, summaries) is `emotf.records.folder`.

The writing side needs no TensorFlow: the `Example` message is protobuf's own,
built from the same definition as TensorFlow's (tensorflow/core/example/*.proto)
in a private descriptor pool, and the TFRecord framing (length, masked CRC32C,
data, masked CRC32C) is written with the google-crc32c library. Preprocessing
therefore never loads TensorFlow (2.7 s and about 0.9 GB a process) unless its
face detector does; the bytes are those TensorFlow writes (a test compares them).
The reading side (`parse_example`, `read_records`) is TensorFlow's, for tf.data.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from emotf.config import SCHEMA_VERSION, SPEC_SHAPE, VIDEO_SHAPE
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
    example = _example_class()()
    feature = example.features.feature
    spec = np.ascontiguousarray(ex.get("spec", np.zeros((0, 0))), dtype=np.uint8)
    feature[SPEC].bytes_list.value.append(spec.tobytes())
    feature[SPEC_HEIGHT].int64_list.value.append(spec.shape[0])
    feature[SPEC_WIDTH].int64_list.value.append(spec.shape[1])
    feature[SCHEMA].int64_list.value.append(SCHEMA_VERSION)
    if "wave" in ex:
        pcm = np.ascontiguousarray(ex["wave"], dtype="<i2")
        feature[WAVE].bytes_list.value.append(pcm.tobytes())
        feature[WAVE_SAMPLES].int64_list.value.append(len(pcm))
        feature[WAVE_RATE].int64_list.value.append(int(ex[WAVE_RATE]))
    for key in STRING_KEYS:
        feature[key].bytes_list.value.append(str(ex.get(key, "")).encode())
    for key in INT_KEYS:
        if key not in feature:
            feature[key].int64_list.value.append(int(ex.get(key, 0)))
    for key in FLOAT_KEYS:
        feature[key].float_list.value.append(float(ex.get(key, 0.0)))
    feature[VIDEO].bytes_list.SetInParent()  # present, and empty where the record has no video
    if ex.get("video"):
        feature[VIDEO].bytes_list.value.append(ex["video"])
    # deterministic: map entries in key order, so equal records are equal bytes (the records digest relies on it)
    return example.SerializeToString(deterministic=True)


@functools.lru_cache(maxsize=1)
def _example_class():
    """`tensorflow.Example`, from the definition in TensorFlow's feature.proto and example.proto (proto3).

    Built in a private pool, so it coexists with TensorFlow's own copy in a process that has both.
    """
    field_type = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="emotf/tensorflow_example.proto", package="tensorflow",
                                             syntax="proto3")

    def field(name, number, kind, *, repeated=False, type_name="", packed=False, oneof=None):
        f = field_type(name=name, number=number, type=kind,
                       label=field_type.LABEL_REPEATED if repeated else field_type.LABEL_OPTIONAL)
        if type_name:
            f.type_name = f".tensorflow.{type_name}"
        if packed:
            f.options.packed = True
        if oneof is not None:
            f.oneof_index = oneof
        return f

    def message(name, *fields, into=fdp.message_type):
        msg = into.add(name=name)
        msg.field.extend(fields)
        return msg

    message("BytesList", field("value", 1, field_type.TYPE_BYTES, repeated=True))
    message("FloatList", field("value", 1, field_type.TYPE_FLOAT, repeated=True, packed=True))
    message("Int64List", field("value", 1, field_type.TYPE_INT64, repeated=True, packed=True))
    feature = message("Feature", *(field(name, i, field_type.TYPE_MESSAGE, type_name=kind, oneof=0) for i, (name, kind)
                                   in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                                 ("int64_list", "Int64List")), start=1)))
    feature.oneof_decl.add(name="kind")
    features = message("Features", field("feature", 1, field_type.TYPE_MESSAGE, repeated=True,
                                         type_name="Features.FeatureEntry"))
    entry = message("FeatureEntry", field("key", 1, field_type.TYPE_STRING),
                    field("value", 2, field_type.TYPE_MESSAGE, type_name="Feature"), into=features.nested_type)
    entry.options.map_entry = True
    message("Example", field("features", 1, field_type.TYPE_MESSAGE, type_name="Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant (little-endian uint32)."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame(record: bytes) -> bytes:
    """One record as a TFRecord file stores it: length, its checksum, the data, its checksum."""
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


@functools.lru_cache(maxsize=1)
def _features() -> dict:
    import tensorflow as tf

    return {
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
    import tensorflow as tf

    shape = [frames, height, width, 3]
    return tf.cond(
        tf.equal(encoding, "raw"),
        lambda: tf.reshape(tf.io.decode_raw(encoded, tf.uint8), shape),
        lambda: tf.reshape(tf.io.decode_jpeg(encoded, channels=3), shape),
    )


def parse_example(serialized: tf.Tensor, *, spec_shape=SPEC_SHAPE, video_shape=VIDEO_SHAPE,
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
    import tensorflow as tf

    f = tf.io.parse_single_example(serialized, _features())
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

    A killed run therefore leaves ``*.tmp`` files (removed by the next run), never a half shard with the
    final name. The temporary name is this attempt's own: two attempts at one shard (a runner retrying or
    duplicating work) never write into the same file, and the last rename leaves a whole shard.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        self._file = open(self.tmp, "wb")  # noqa: SIM115 (closed by commit or abort)
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, record: bytes) -> None:
        self._file.write(frame(record))
        self._hash.update(len(record).to_bytes(8, "little"))
        self._hash.update(record)
        self.count += 1

    def digest(self) -> str:
        """SHA-256 of the records written so far, in order (of the examples' bytes, not the file framing)."""
        return self._hash.hexdigest()

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)


def read_records(paths, **parse_kwargs) -> list[dict[str, Any]]:
    """Read whole record files eagerly into numpy dicts (tests and small tools; training uses emotf.data)."""
    import tensorflow as tf

    out = []
    for raw in tf.data.TFRecordDataset([str(p) for p in paths]):
        ex = parse_example(raw, **parse_kwargs)
        out.append({k: (v.numpy().decode() if v.dtype == tf.string else v.numpy()) for k, v in ex.items()})
    return out
