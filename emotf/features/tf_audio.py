"""Audio inside tf.data: decoding audio files and SpecAugment-style masks, with or without tensorflow-io.

tensorflow-io 0.37.1 (its last release) links only against TensorFlow 2.16 and
2.17. On import this module checks whether tensorflow-io is installed *and*
its compiled ops load, and says once which path it takes:

* tensorflow-io usable: files are decoded by its graph ops (``decode_wav``,
  ``decode_flac`` for 16-bit PCM, ``decode_mp3``), masks come from
  ``tfio.audio.freq_mask`` / ``time_mask``;
* otherwise: files are decoded by soundfile / FFmpeg (the code of
  `emotf.features.audio`) inside ``tf.numpy_function``, masks by seeded TF ops.

Both paths give the same samples for wav and flac (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import struct
import sys
import tempfile
import warnings

import numpy as np
import tensorflow as tf

log = logging.getLogger("emotf")


@dataclasses.dataclass(frozen=True)
class TfioStatus:
    usable: bool
    version: str
    reason: str

    def describe(self) -> str:
        if self.usable:
            return (f"emotf: tensorflow-io {self.version} is usable with TensorFlow {tf.__version__}: tf.data decodes "
                    f"wav/flac/mp3 with it, and SpecAugment masks come from tfio.audio")
        return (f"emotf: tensorflow-io not used ({self.reason}): audio is decoded by soundfile/FFmpeg inside "
                f"tf.numpy_function, masks by emotf's seeded TF ops")


def _probe_wav() -> bytes:
    pcm = (np.sin(np.arange(160) / 5) * 1000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(pcm)) + pcm)


@functools.lru_cache(maxsize=1)
def tfio_status() -> TfioStatus:
    """Whether tensorflow-io is installed and its compiled ops run with this TensorFlow."""
    if importlib.util.find_spec("tensorflow_io") is None:
        return TfioStatus(False, "", "not installed; `pip install -e .[tfio]` adds it, with TensorFlow < 2.18")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow_io as tfio

            with tempfile.NamedTemporaryFile(suffix=".wav") as f:
                f.write(_probe_wav())
                f.flush()
                tfio.audio.AudioIOTensor(f.name).to_tensor()
        return TfioStatus(True, tfio.__version__, "")
    except Exception as e:  # a failed dlopen shows up as NotImplementedError, others as TF errors
        version = getattr(sys.modules.get("tensorflow_io"), "__version__", "?")
        return TfioStatus(False, version, f"{version} is installed but its ops do not load with TensorFlow "
                                          f"{tf.__version__}: {str(e).splitlines()[0][:160]}")


def _say(message: str) -> None:
    if logging.getLogger().handlers or log.handlers:
        log.info(message)
    else:
        print(message, file=sys.stderr)


_say(tfio_status().describe())


# --------------------------------------------------------------------------- decoding

def _bytes(value) -> bytes:
    """tf.numpy_function hands strings over as bytes or as 0-d numpy arrays."""
    return value.item() if isinstance(value, np.ndarray) else bytes(value)


def sniff_rate(head: bytes) -> np.int32:
    """Sample rate from the first bytes of a WAV, FLAC or MP3 file (0 when unknown)."""
    head = _bytes(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(head):
            cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
            if cid == b"fmt ":
                return np.int32(struct.unpack("<I", head[pos + 12:pos + 16])[0])
            pos += 8 + size + (size & 1)
        return np.int32(0)
    if head[:4] == b"fLaC":
        # STREAMINFO: the sample rate is the first 20 bits after 10 bytes of block sizes.
        b = head[8 + 10:8 + 13]
        return np.int32((b[0] << 12) | (b[1] << 4) | (b[2] >> 4))
    pos = 0
    if head[:3] == b"ID3":
        s = head[6:10]
        pos = 10 + ((s[0] & 0x7F) << 21 | (s[1] & 0x7F) << 14 | (s[2] & 0x7F) << 7 | (s[3] & 0x7F))
    while pos + 4 <= len(head):
        if head[pos] == 0xFF and head[pos + 1] & 0xE0 == 0xE0:
            version = (head[pos + 1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
            index = (head[pos + 2] >> 2) & 3
            if index < 3 and version != 1:
                base = (44100, 48000, 32000)[index]
                return np.int32(base // {3: 1, 2: 2, 0: 4}[version])
        pos += 1
    return np.int32(0)


def _numpy_decode(path: bytes) -> tuple[np.ndarray, np.int32]:
    from pathlib import Path

    from emotf.features.audio import _decode

    data, rate = _decode(Path(_bytes(path).decode()))
    return data.mean(axis=0).astype(np.float32), np.int32(rate)


def read_audio(path: tf.Tensor, *, use_tfio: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode an audio file inside a tf.data map: (samples (n,) float32 mono, sample rate int32).

    Args:
        path: scalar string tensor.
        use_tfio: force a path (None: tensorflow-io where usable).
    """
    if use_tfio is None:
        use_tfio = tfio_status().usable
    if not use_tfio:
        samples, rate = tf.numpy_function(_numpy_decode, [path], [tf.float32, tf.int32], stateful=False)
        return tf.ensure_shape(samples, [None]), tf.ensure_shape(rate, [])
    import tensorflow_io as tfio

    data = tf.io.read_file(path)
    rate = tf.ensure_shape(tf.numpy_function(sniff_rate, [tf.strings.substr(data, 0, 65536)], tf.int32,
                                             stateful=False), [])
    ext = tf.strings.lower(tf.strings.regex_replace(path, r"^.*\.", ""))

    def pcm16(decode):
        return lambda: tf.cast(decode(data, dtype=tf.int16), tf.float32) / 32768.0

    samples = tf.case([(tf.equal(ext, "wav"), pcm16(tfio.audio.decode_wav)),
                       (tf.equal(ext, "flac"), pcm16(tfio.audio.decode_flac))],
                      default=lambda: tfio.audio.decode_mp3(data))
    return tf.reduce_mean(samples, axis=-1), rate


# --------------------------------------------------------------------------- masks

def _stateless_band(size: tf.Tensor, max_width: int, seed: tf.Tensor) -> tf.Tensor:
    width = tf.random.stateless_uniform([], seed, 0, max_width + 1, dtype=tf.int32)
    start = tf.random.stateless_uniform([], seed + 1, 0, tf.maximum(size - width, 0) + 1, dtype=tf.int32)
    idx = tf.range(size)
    return (idx >= start) & (idx < start + width)


def spec_augment(image: tf.Tensor, *, freq_width: int, time_width: int, seed: tf.Tensor,
                 use_tfio: bool | None = None) -> tf.Tensor:
    """Zero one random band of rows (frequency) and one of columns (time) of an (H, W, C) image.

    0 is −60 dB in the stored uint8 image, i.e. silence. ``seed`` is a shape [2]
    int tensor (stateless randomness on the TF path; tfio's masks draw from the
    global seed that ``keras.utils.set_random_seed`` sets).
    """
    if use_tfio is None:
        use_tfio = tfio_status().usable
    if use_tfio:
        import tensorflow_io as tfio

        # tfio masks a (time, freq) matrix; our images are (freq, time, channels). One mask for all channels.
        ones = tf.ones(tf.shape(image)[1::-1][:2], tf.float32)
        keep = tfio.audio.time_mask(tfio.audio.freq_mask(ones, freq_width + 1), time_width + 1)
        return tf.where(tf.transpose(keep)[:, :, None] > 0, image, tf.zeros_like(image))
    seed = tf.cast(seed, tf.int32)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    rows = _stateless_band(h, freq_width, seed)[:, None, None]
    cols = _stateless_band(w, time_width, seed + 7)[None, :, None]
    return tf.where(rows | cols, tf.zeros_like(image), image)
