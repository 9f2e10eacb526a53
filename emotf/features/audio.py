"""Audio: validated loading, 3-s segmentation, noise cleanup, spectrogram images.

This is the one feature path, used by preprocessing and by prediction alike:

    waveform (16 kHz mono float32)
      → STFT (46.4 ms Hann window, 11.6 ms hop, 1024-point FFT)
      → magnitude in dB, ref 1.0, scaled like the reference's 2048-point STFT
        (plus ``gain_db``, 0 unless a corpus's recording level is being matched;
        with ``level_dbfs`` set, every utterance is first scaled to that speech level)
      → bins of 0.4–7.8 kHz only, floor at max − 80 dB, clip to ±60 dB
      → resize to 200×300 (rows: high to low frequency; columns: time)
      → one uint8 channel: 0 ↔ −60 dB, 255 ↔ +60 dB.

That uint8 image is what records store and what every model takes; the
paper's seismic colour map is the first layer of the models
(`emotf.models.layers.SpectrogramColors`), not part of the features.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import webrtcvad

from emotf.config import AudioConfig
from emotf.features import denoise


class BadInputError(Exception):
    """An input file that cannot be used; the message names the file and the cause."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # crosses process boundaries whole (a worker's skip reaches the parent)
        return type(self), (self.path, self.reason)


@dataclasses.dataclass
class LoadedAudio:
    samples: np.ndarray  # (n,) float32 at the configured rate
    converted: str = ""  # what was done to fit the format ("" when nothing)
    band_limit_hz: float = 0.0  # the file's Nyquist frequency where it is below the features' top band (else 0)


# --------------------------------------------------------------------------- loading

def _wav_truncation(path: Path) -> str:
    """A reason string when a RIFF/WAVE file's data chunk claims more bytes than the file has."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return ""
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return ""
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            pos += 8
            if cid == b"data":
                if csize != 0xFFFFFFFF and pos + csize > size:
                    return f"truncated file: the data chunk declares {csize} bytes but only {size - pos} follow"
                return ""
            pos += csize + (csize & 1)
            f.seek(pos)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode any audio file to (channels, samples) float32 and its rate."""
    if path.suffix.lower() not in (".mp4", ".flv", ".avi", ".mov", ".mkv"):
        try:
            file = sf.SoundFile(str(path))
        except Exception as e:  # libsndfile cannot open this format: try FFmpeg below
            sf_error = e
        else:
            with file:
                try:
                    if file.subtype == "PCM_16":
                        # libsndfile's own int -> float copy of FLAC cost 0.3 ms of a 3.6-s file's 0.9; its float
                        # is the int / 32768, exactly what this computes.
                        data = np.multiply(file.read(dtype="int16", always_2d=True), np.float32(1 / 32768),
                                           dtype=np.float32)
                    else:
                        data = file.read(dtype="float32", always_2d=True)
                except Exception as e:
                    raise BadInputError(str(path), f"truncated or corrupt file (decoding stopped: {e})") from None
            if file.frames > 0 and len(data) < file.frames:
                raise BadInputError(str(path), f"truncated file: header says {file.frames} samples, "
                                               f"only {len(data)} could be read")
            return data.T, file.samplerate
    else:
        sf_error = None
    # Audio inside a video container, or a format libsndfile cannot read: FFmpeg via PyAV.
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise BadInputError(str(path), "no audio stream in this file")
            stream = container.streams.audio[0]
            rate = stream.rate
            # Planar float keeps the channels apart: every chunk is (channels, samples).
            to_float = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
            chunks = [out.to_ndarray() for frame in container.decode(stream) for out in to_float.resample(frame)]
            chunks += [out.to_ndarray() for out in to_float.resample(None)]
        if not chunks:
            return np.zeros((1, 0), np.float32), rate
        return np.concatenate(chunks, axis=-1).astype(np.float32), rate
    except BadInputError:
        raise
    except Exception as e:
        cause = sf_error or e
        raise BadInputError(str(path), f"cannot decode audio ({type(cause).__name__}: {cause})") from None


def _existing(path: str | Path) -> Path:
    """``path``, a file with something in it.

    Raises:
        BadInputError: no such file, or 0 bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(str(path), "audio file not found")
    if path.stat().st_size == 0:
        raise BadInputError(str(path), "empty file (0 bytes)")
    return path


def load_audio(path: str | Path, cfg: AudioConfig, start_s: float = 0.0, end_s: float | None = None) -> LoadedAudio:
    """Load, check and (if allowed) convert an audio file to mono float32 at ``cfg.sample_rate_hz``.

    Args:
        path: any file soundfile or FFmpeg reads (wav, flac, mp3, ogg, or a video's soundtrack).
        cfg: the audio config (rate, conversion policy, silence threshold).
        start_s, end_s: the span to keep, in seconds of the file (end None: to the end).

    Returns:
        `LoadedAudio` with ``samples`` of shape (n,).

    Raises:
        BadInputError: missing, unreadable, empty, truncated or silent audio,
            or a sample rate / channel count that cannot (or may not) be converted.
    """
    path = _existing(path)
    if path.suffix.lower() == ".wav":
        reason = _wav_truncation(path)
        if reason:
            raise BadInputError(str(path), reason)
    data, rate = _decode(path)
    channels, n = data.shape
    if n == 0:
        raise BadInputError(str(path), "empty audio (0 samples)")
    converted = []
    if channels > 2:
        raise BadInputError(str(path), f"{channels} channels; expected mono (or stereo, which is downmixed)")
    if channels == 2:
        if not cfg.convert:
            raise BadInputError(str(path), "2 channels; expected mono (allow conversion to downmix)")
        converted.append("downmixed")
    mono = data.mean(axis=0)
    band_limit = 0.0
    if rate != cfg.sample_rate_hz:
        if rate < 2 * cfg.fmax_hz:
            if cfg.band_limited == "reject":
                raise BadInputError(str(path), f"sample rate {rate} Hz cannot carry the {cfg.fmin_hz / 1000:g}–"
                                               f"{cfg.fmax_hz / 1000:g} kHz band (need >= {2 * cfg.fmax_hz:g} Hz; "
                                               f"--band-limited accept processes it)")
            band_limit = rate / 2
        if not cfg.convert:
            raise BadInputError(str(path), f"sample rate {rate} Hz; expected {cfg.sample_rate_hz} Hz "
                                           f"(allow conversion to resample)")

        mono = soxr.resample(mono, rate, cfg.sample_rate_hz)
        converted.append(f"resampled {rate}->{cfg.sample_rate_hz}")
    sr = cfg.sample_rate_hz
    a = int(round(start_s * sr))
    b = len(mono) if end_s is None else int(round(end_s * sr))
    if a >= len(mono):
        raise BadInputError(str(path), f"span starts at {start_s:.3f} s but the audio lasts {len(mono) / sr:.3f} s")
    mono = np.ascontiguousarray(mono[a:b], dtype=np.float32)
    if len(mono) < cfg.min_duration_s * sr:
        raise BadInputError(str(path), f"too short: {len(mono) / sr:.3f} s (minimum {cfg.min_duration_s} s)")
    if not np.all(np.isfinite(mono)):
        raise BadInputError(str(path), "audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(mono)))
    if peak <= 10 ** (cfg.silence_dbfs / 20):
        level = "-inf" if peak == 0 else f"{20 * np.log10(peak):.1f}"
        raise BadInputError(str(path), f"silent audio (peak {level} dBFS, threshold {cfg.silence_dbfs} dBFS)")
    return LoadedAudio(mono, ", ".join(converted), band_limit)


# --------------------------------------------------------------------------- reading long recordings

# Read by libsndfile when streamed; everything else by FFmpeg, which stops where a truncated file's audio does
# (libsndfile's MP3 decoder pads it to the length its header declares).
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def stream_audio(path: str | Path, rate: int, block: int, notes: dict | None = None) -> Iterator[np.ndarray]:
    """The recording as mono float32 blocks of ``block`` samples at ``rate`` (the last shorter); any channel count
    is averaged, any rate resampled (soxr, as a stream).

    A file that holds less audio than its header declares (a truncated MP3, a recording cut short) gives what it
    holds, and ``notes["truncated"]`` says how much that is.

    Raises:
        BadInputError: a missing, empty or unreadable file (naming it).
    """
    path = _existing(path)
    size = block
    pending = np.zeros(0, np.float32)
    for chunk in _decoded_chunks(path, rate, {} if notes is None else notes):
        pending = np.concatenate([pending, chunk]) if len(pending) else chunk
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if len(pending):
        yield pending


def _decoded_chunks(path: Path, rate: int, notes: dict) -> Iterator[np.ndarray]:
    """Mono float32 pieces at ``rate`` of any length, in order: uncompressed and lossless files through
    libsndfile, everything else through FFmpeg (libsndfile's MP3 decoder pads a truncated file to the length its
    header declares; FFmpeg stops where the audio does)."""
    try:
        file = sf.SoundFile(str(path)) if path.suffix.lower() in SOUNDFILE_EXTENSIONS else None
    except Exception:  # not what its name says: FFmpeg
        file = None
    if file is not None:
        with file:
            stream = soxr.ResampleStream(file.samplerate, rate, 1, dtype="float32") if file.samplerate != rate else None
            read = 0
            try:
                for block in file.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                    read += len(block)
                    mono = np.ascontiguousarray(block.mean(axis=1), dtype=np.float32)
                    yield stream.resample_chunk(mono) if stream else mono
            except Exception as e:
                notes["truncated"] = f"decoding stopped after {read / file.samplerate:.1f} s: {e}"
            if file.frames > 0 and read < file.frames and "truncated" not in notes:
                rate_in = file.samplerate
                notes["truncated"] = (f"decoded {read / rate_in:.1f} s of the {file.frames / rate_in:.1f} s its "
                                      f"header declares")
            if stream:
                yield stream.resample_chunk(np.zeros(0, np.float32), last=True)
        return
    import av  # PyAV: 36 ms at import, which only compressed formats and containers need

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise BadInputError(str(path), "no audio stream in this file")
            # FFmpeg's own resampler downmixes and resamples as it decodes
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            decoded = 0
            for frame in container.decode(container.streams.audio[0]):
                decoded += frame.samples / frame.sample_rate
                for out in to_mono.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            for out in to_mono.resample(None):
                yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            declared = (container.duration or 0) / av.time_base
            if declared and decoded < 0.98 * declared - 0.1:
                notes["truncated"] = f"decoded {decoded:.1f} s of the {declared:.1f} s its header declares"
    except BadInputError:
        raise
    except Exception as e:
        raise BadInputError(str(path), f"cannot decode audio ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------- segmentation

def clip_spans(n_samples: int, cfg: AudioConfig) -> list[tuple[int, int]]:
    """Non-overlapping 3-s spans [a, b) of an utterance of ``n_samples``.

    Full clips come first, from the start. The remainder becomes one more
    (padded) clip when it lasts at least ``min_tail_s``, else it is dropped. An
    utterance shorter than one clip always gives one padded clip.
    """
    size = cfg.clip_samples
    full = n_samples // size
    spans = [(i * size, (i + 1) * size) for i in range(full)]
    tail = n_samples - full * size
    if full == 0 or (tail > 0 and tail >= cfg.min_tail_s * cfg.sample_rate_hz):
        spans.append((full * size, n_samples))
    return spans


def _seed(key: str) -> int:
    return zlib.crc32(key.encode())


def noise_floor_rms(x: np.ndarray, cfg: AudioConfig) -> float:
    """RMS of the quietest 10 % of 20-ms frames: the recording's own background level."""
    frame = max(1, int(0.02 * cfg.sample_rate_hz))
    n = len(x) // frame
    if n == 0:
        return float(np.sqrt(np.mean(x ** 2)) * 0.01)
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    quiet = np.sort(rms)[: max(1, n // 10)]
    return float(max(np.mean(quiet), 1e-5))  # never below -100 dBFS: padding must not be digital silence


def pad_with_noise(x: np.ndarray, length: int, rms: float, key: str) -> np.ndarray:
    """Pad ``x`` to ``length`` with seeded Gaussian noise of the given RMS (not zeros)."""
    if len(x) >= length:
        return x[:length]
    rng = np.random.default_rng(_seed(key))
    pad = rng.standard_normal(length - len(x)).astype(np.float32) * rms
    return np.concatenate([x, pad])


def segment(x: np.ndarray, cfg: AudioConfig, mode: str, key: str) -> list[tuple[np.ndarray, float, float]]:
    """Cut an utterance into the pieces of one variant.

    Args:
        x: (n,) waveform.
        mode: "utterance" (one piece, the whole) or "clips" (3-s clips, noise padded).
        key: a stable id (the utterance id) that seeds the padding noise.

    Returns:
        A list of (waveform, start_s, end_s); times are those of the real audio
        inside the piece, relative to the utterance start.
    """
    sr = cfg.sample_rate_hz
    if mode == "utterance":
        return [(x, 0.0, len(x) / sr)]
    rms = noise_floor_rms(x, cfg)
    return [(pad_with_noise(x[a:b], cfg.clip_samples, rms, f"{key}/{i}"), a / sr, b / sr)
            for i, (a, b) in enumerate(clip_spans(len(x), cfg))]


def frame_power(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean power of each whole ``frame``-sample frame of ``x``: (len(x) // frame,)."""
    n = len(x) // frame
    return (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)


def active_level_dbfs(x: np.ndarray, cfg: AudioConfig, *, frame_ms: float = 25.0, range_db: float = 30.0) -> float:
    """Recording level of speech, in dB re full scale: the RMS of the 25-ms frames within 30 dB of the loudest.

    Pauses and the noise floor are left out, so the level is that of the voice; it
    compares how hot two corpora were recorded (``python -m emotf.preprocess --measure-level``).

    Args:
        x: (n,) waveform, full scale ±1.
    """
    frame = max(1, int(frame_ms / 1000 * cfg.sample_rate_hz))
    power = frame_power(x, frame) if len(x) >= frame else np.array([np.mean(x ** 2)])
    power = np.maximum(power, 1e-12)
    active = power[power >= power.max() * 10.0 ** (-range_db / 10.0)]
    return float(10.0 * np.log10(active.mean()))


def quietest_stretch(x: np.ndarray, cfg: AudioConfig, fraction: float = 0.2, min_s: float = 0.3) -> np.ndarray:
    """The quietest ``fraction`` of 50-ms frames (at least ``min_s``), concatenated in time order."""
    frame = int(0.05 * cfg.sample_rate_hz)
    n = len(x) // frame
    if n == 0:
        return x
    frames = x[: n * frame].reshape(n, frame)
    k = min(n, max(int(np.ceil(min_s / 0.05)), int(n * fraction)))
    keep = np.sort(np.argsort((frames ** 2).mean(axis=1))[:k])
    return frames[keep].reshape(-1)


def cleanup(x: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Noise cleanup by stationary spectral gating (`emotf.features.denoise`, noisereduce's algorithm), as in the
    paper's DS3/DS4.

    The reference added synthetic noise and then gated it away again, with a
    separate noise clip as the profile. Here the profile is the recording's own
    quietest stretch (its pauses), so the gate removes the real background:
    bins below mean + 2 std of the profile are reduced by 90 %.

    noisereduce pads each chunk with 30,000 zero samples on both sides (for chunk
    boundaries of long files), so a 3.6-s utterance was gated as 7.4 s: two thirds of
    its STFT, ISTFT and mask smoothing were zeros. ``n_fft`` samples of padding cover the
    mask smoothing's reach (50 ms), so the edges see what they saw: 3.4x less work, images
    within 0.1 level on average of the 30,000-sample version (tests/test_audio.py holds
    the tolerance).
    """
    return denoise.stationary_gate(x, quietest_stretch(x, cfg), cfg.sample_rate_hz, n_fft=cfg.n_fft,
                                   win_length=cfg.win_length, hop_length=cfg.hop_length, n_std=2.0,
                                   prop_decrease=0.9, padding=cfg.n_fft)


# --------------------------------------------------------------------------- spectrogram

def stft_magnitude(x: np.ndarray, n_fft: int, hop_length: int, window: np.ndarray,
                   bins: slice | None = None) -> np.ndarray:
    """|STFT| of ``x``, (n_fft // 2 + 1, frames) float32, frames centred (``n_fft // 2`` zeros each side); with
    ``bins``, only those rows.

    The values of ``librosa.stft(x, n_fft, hop_length, window=window, center=True)`` bit for bit (a test holds
    it): the same zero padding, float64 windowed frames, pocketfft, complex64. The FFT is numpy's, the same
    pocketfft code as the scipy.fft that librosa calls: scipy.fft's import alone cost each preprocessing worker
    0.2-0.4 CPU-seconds, librosa's (scipy.signal, numba) 1.5-2.6.
    """
    support = slice((n_fft - len(window)) // 2, (n_fft - len(window)) // 2 + len(window))
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, n_fft // 2), n_fft)[::hop_length]
    windowed = np.zeros(frames.shape)  # float64, as librosa; outside the window's support the frame is zero
    np.multiply(frames[:, support], window, out=windowed[:, support])
    spectrum = np.fft.rfft(windowed, axis=-1)
    if bins is not None:
        spectrum = spectrum[:, bins]
    return np.abs(spectrum.astype(np.complex64)).T


def spectrogram_db(x: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """dB magnitudes of the kept band, (bins, frames) float32, low frequency first.

    Magnitudes are multiplied by 1024 / sum(window), so that a sinusoid reads
    the same dB as in the reference's 2048-point Hann STFT (whose window sums to
    1024), whatever the window length here.
    """
    window = np.hanning(cfg.win_length + 1)[:-1]  # periodic Hann, as librosa's "hann"
    spec = stft_magnitude(x, cfg.n_fft, cfg.hop_length, window, slice(*cfg.band_bins))
    # In place: the same operations in the same dtypes as out of place, so the same values bit for bit.
    spec *= 1024.0 / window.sum() * 10.0 ** (cfg.gain_db / 20.0)
    db = np.log10(np.maximum(spec, 1e-5, out=spec), out=spec)
    db *= 20.0
    return np.maximum(db, db.max() - cfg.top_db, out=db)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    # Area averaging when shrinking an axis, linear interpolation when stretching it.
    h, w = img.shape
    img = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA if height < h else cv2.INTER_LINEAR)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if width < w else cv2.INTER_LINEAR)


def db_to_uint8(db: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    scaled = (np.clip(db, -cfg.db_range, cfg.db_range) + cfg.db_range) * (255.0 / (2 * cfg.db_range))
    return np.round(scaled).astype(np.uint8)


def spectrogram_image(x: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """The stored spectrogram: (height, width) uint8, row 0 the highest frequency.

    With ``cfg.band_norm`` each frequency bin's mean over the image is subtracted
    first, so the image holds each bin's level relative to its own mean: a gain or
    a fixed filter (channel, tilt, EQ) of the recording does not change it.

    Args:
        x: (n,) float32 waveform at ``cfg.sample_rate_hz``.
    """
    db = spectrogram_db(x, cfg)
    if cfg.band_norm:
        db = db - db.mean(axis=1, keepdims=True)
    return db_to_uint8(_resize(db[::-1], cfg.height, cfg.width), cfg)


def utterance_images(x: np.ndarray, cfg: AudioConfig, *, mode: str, clean: bool, key: str):
    """All images of one utterance for a variant: [(image, start_s, end_s), ...].

    Times are those of the (silence-trimmed, with ``cfg.trim_silence``) utterance.
    """
    if cfg.level_dbfs is not None:
        # The whole utterance gets one gain, so its clips keep their levels relative to each other.
        x = x * np.float32(10.0 ** ((cfg.level_dbfs - active_level_dbfs(x, cfg)) / 20.0))
    if cfg.trim_silence:
        x = trim_silence(x, cfg)
    if clean:
        x = cleanup(x, cfg)
    return [(spectrogram_image(piece, cfg), a, b) for piece, a, b in segment(x, cfg, mode, key)]


def utterance_wave(x: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """The waveform the "wave" variant stores: silence trimmed (``cfg.trim_silence``), at most ``cfg.max_wave_s``.

    The level is left as recorded (with ``cfg.level_dbfs``: scaled to it); models of the waveform normalise
    it themselves.
    """
    if cfg.level_dbfs is not None:
        x = x * np.float32(10.0 ** ((cfg.level_dbfs - active_level_dbfs(x, cfg)) / 20.0))
    if cfg.trim_silence:
        x = trim_silence(x, cfg)
    if cfg.max_wave_s:
        x = x[: int(round(cfg.max_wave_s * cfg.sample_rate_hz))]
    return np.ascontiguousarray(x, dtype=np.float32)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """(n,) float in [-1, 1] → int16 PCM (clipped at full scale), as the "wave" records store it."""
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")


# --------------------------------------------------------------------------- spectral tilt

def tilt(x: np.ndarray, db_per_octave: float, sample_rate: int, *, pivot_hz: float = 1000.0) -> np.ndarray:
    """``x`` through a filter of ``db_per_octave`` slope about ``pivot_hz`` (flat below 100 Hz): a channel's tilt,
    as `emotf.data.pipeline.spectral_tilt` draws it in training."""
    f = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    response = 10.0 ** (db_per_octave * np.log2(np.maximum(f, 100.0) / pivot_hz) / 20.0)
    return np.fft.irfft(np.fft.rfft(x) * response, n=len(x)).astype(np.float32)


def spectral_slope(x: np.ndarray, sample_rate: int, *, frame: int = 512) -> float:
    """The slope of ``x``'s long-term spectrum in dB per octave: the weighted least-squares line of the log of each
    bin's mean power (Hann frames of ``frame`` samples, half overlapping) against its octaves about 1 kHz (flat
    below 100 Hz, as `tilt`), each bin weighted as a mel scale spaces them (evenly below 1 kHz, by 1/f above).
    A `tilt` of s dB per octave adds s to it (up to the frames' leakage)."""
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::frame // 2] * np.hanning(frame)
    power = np.log10(np.maximum((np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0), 1e-20))
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    octaves, weights = np.log2(np.maximum(f, 100.0) / 1000.0), 1.0 / np.maximum(f, 1000.0)
    centred = octaves - np.average(octaves, weights=weights)
    return float(10.0 * np.sum(weights * centred * power) / np.sum(weights * centred ** 2))


def levelled_tilt(x: np.ndarray, db_per_octave: float, sample_rate: int) -> np.ndarray:
    """``x`` with its `spectral_slope` set to ``db_per_octave`` by a `tilt`, its RMS kept."""
    y = tilt(x, db_per_octave - spectral_slope(x, sample_rate), sample_rate)
    scale = np.sqrt(np.mean(np.square(x, dtype=np.float64)) / max(np.mean(np.square(y, dtype=np.float64)), 1e-30))
    return (y * scale).astype(np.float32)


# --------------------------------------------------------------------------- voice activity

VAD_FRAME_MS = 30
VAD_LEVEL_DBFS = -26.0  # the speech level the detector sees, whatever the recording's


def speech_frames(x: np.ndarray, cfg: AudioConfig, *, level_dbfs: float | None = None) -> np.ndarray:
    """WebRTC VAD's decision for each 30-ms frame of ``x``: (n_frames,) bool.

    The detector sees a copy scaled to a fixed speech level (``VAD_LEVEL_DBFS``,
    by `active_level_dbfs`, or ``level_dbfs`` where the caller has it), so its
    decisions do not depend on how loud the recording is; with ``cfg.vad_tilt``,
    a copy whose spectral slope is set to it (`levelled_tilt`, the RMS kept), so
    they do not depend on the channel's tilt either.
    """
    if cfg.sample_rate_hz not in (8000, 16000, 32000, 48000):
        raise ValueError(f"WebRTC VAD needs 8, 16, 32 or 48 kHz audio. Received: {cfg.sample_rate_hz} Hz")
    frame = cfg.sample_rate_hz * VAD_FRAME_MS // 1000
    n = len(x) // frame
    if n == 0:
        return np.zeros(0, bool)
    if cfg.vad_tilt is not None:
        x = levelled_tilt(x, cfg.vad_tilt, cfg.sample_rate_hz)
    level = active_level_dbfs(x, cfg) if level_dbfs is None else level_dbfs
    scaled = x[: n * frame] * np.float32(10.0 ** ((VAD_LEVEL_DBFS - level) / 20.0))
    pcm = to_pcm16(scaled).reshape(n, frame)
    vad = webrtcvad.Vad(cfg.vad_aggressiveness)
    return np.array([vad.is_speech(f.tobytes(), cfg.sample_rate_hz) for f in pcm], dtype=bool)


def trim_silence(x: np.ndarray, cfg: AudioConfig, *, pad_ms: float = 90.0) -> np.ndarray:
    """The speech of an utterance: non-speech before the first and after the last speech frame dropped, and
    every pause inside shortened to ``cfg.max_pause_ms`` (its first and last halves kept).

    ``pad_ms`` of context is kept around speech. An utterance in which the VAD finds
    no speech is returned whole (its images or waveform are made as without trimming).

    Args:
        x: (n,) waveform.

    Returns:
        (m,) waveform, m <= n.
    """
    speech = speech_frames(x, cfg)
    if not speech.any():
        return x
    frame = cfg.sample_rate_hz * VAD_FRAME_MS // 1000
    pad = int(np.ceil(pad_ms / VAD_FRAME_MS))
    keep = np.convolve(speech, np.ones(2 * pad + 1), mode="same") > 0  # speech, widened by the padding
    first, last = np.flatnonzero(keep)[[0, -1]]
    keep[:first] = keep[last + 1:] = False
    half = int(cfg.max_pause_ms / VAD_FRAME_MS) // 2
    i = first
    while i <= last:  # inside pauses: keep `half` frames after the speech before, and `half` before the speech after
        if keep[i]:
            i += 1
            continue
        j = i
        while not keep[j]:
            j += 1
        keep[i:j] = False
        keep[i:min(j, i + half)] = True
        keep[max(i, j - half):j] = True
        i = j
    frames = np.flatnonzero(keep)
    pieces = [x[f * frame:(f + 1) * frame] for f in frames]
    if frames[-1] == len(speech) - 1:  # the samples after the last whole frame follow it
        pieces.append(x[len(speech) * frame:])
    return np.concatenate(pieces).astype(np.float32)
