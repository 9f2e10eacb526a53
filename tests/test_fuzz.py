"""Property-based: random bytes, signals and CSV rows through the decoders and preprocessing.

Every outcome is either a result or a named, catchable emotf error (never another
exception), and preprocessing never leaves a partial shard behind.
"""

import json
import string

import numpy as np
import pytest
from conftest import tone, write_wav

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from emotf.config import AudioConfig, PreprocessConfig, VideoConfig  # noqa: E402
from emotf.corpora import read_csv_manifest  # noqa: E402
from emotf.features import audio  # noqa: E402
from emotf.records import folder, writer  # noqa: E402

CFG = AudioConfig()
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _loaded_or_named(path):
    try:
        loaded = audio.load_audio(path, CFG)
    except audio.BadInputError as e:
        assert e.path == str(path) and str(e).startswith(str(path))
        return None
    assert loaded.samples.dtype == np.float32 and loaded.samples.ndim == 1
    assert np.all(np.isfinite(loaded.samples))
    return loaded


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".wav", ".flac", ".mp3", ".ogg", ".mp4"]),
       riff=st.booleans())
def test_random_bytes_decode_or_fail_by_name(tmp_path, data, suffix, riff):
    path = tmp_path / f"x{suffix}"
    # half the time behind a RIFF/WAVE header, so the WAV parser, not only the format probe, sees the junk
    path.write_bytes((b"RIFF\x24\x08\x00\x00WAVEfmt " + data) if riff else data)
    _loaded_or_named(path)


@FUZZ
@given(n=st.integers(0, 24000), channels=st.integers(1, 4),
       rate=st.sampled_from([4000, 8000, 11025, 16000, 22050, 44100, 48000]),
       special=st.sampled_from([None, np.nan, np.inf, -np.inf, 0.0, 1e-9, 40.0]),
       subtype=st.sampled_from(["PCM_16", "FLOAT", "PCM_U8"]))
def test_random_signals_rates_and_channels(tmp_path, n, channels, rate, special, subtype):
    x = (0.3 * np.random.default_rng(n).standard_normal((n, channels))).astype(np.float32)
    if special is not None and n:
        x[n // 2:] = special
    path = tmp_path / "s.wav"
    try:
        write_wav(path, x, sr=rate, subtype=subtype)
    except Exception:  # soundfile refuses some combinations itself (e.g. 0 frames of PCM_U8): nothing to test
        return
    loaded = _loaded_or_named(path)
    if loaded is not None:
        img = audio.utterance_images(loaded.samples, CFG, mode="whole", clean=False, key="x")[0][0]
        assert img.dtype == np.uint8 and img.shape == (CFG.height, CFG.width)


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " ,\"'.-_/\n", max_size=12)
_ROW = st.fixed_dictionaries({
    "path": st.sampled_from(["a.wav", "missing.wav", "", "sub/../a.wav", "junk.wav"]) | _TEXT,
    "label": st.sampled_from(["happy", "SAD", "angry", "neutral", "jealous", ""]) | _TEXT,
    "speaker": st.sampled_from(["s1", "s2", ""]) | _TEXT,
    "start": st.sampled_from(["", "0", "0.5", "-1", "abc", "2.9"]),
    "end": st.sampled_from(["", "1.0", "0.2", "nan", "1e9", "x"]),
})


def _csv(d, rows):
    import csv

    with open(d / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "start", "end"])
        w.writeheader()
        w.writerows(rows)
    return d / "m.csv"


def _corpus(tmp_path):
    d = tmp_path / "c"
    write_wav(d / "a.wav", tone(300, 2.0))
    (d / "junk.wav").write_bytes(b"RIFF" + b"\x00" * 60)
    return d


@FUZZ
@given(rows=st.lists(_ROW, max_size=8))
def test_random_csv_rows_list_or_fail_by_name(tmp_path, rows):
    d = _corpus(tmp_path)
    try:
        utts, problems = read_csv_manifest(_csv(d, rows))
    except ValueError as e:
        assert "m.csv" in str(e)
        return
    assert len(utts) + len(problems) <= len(rows)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(_ROW, min_size=1, max_size=5))
def test_random_csv_corpora_give_records_or_a_named_error_and_no_partial_shard(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("fuzz")
    d = _corpus(tmp)
    out = tmp / "out"
    cfg = PreprocessConfig(corpus="csv", data=str(_csv(d, rows)), variant="ds1", shard_size=2,
                           video_config=VideoConfig(detector="fixed"))
    try:
        m = writer.run(cfg, out, workers=1, progress=False)
    except (writer.PreprocessError, ValueError, FileNotFoundError):
        m = None
    assert not list(out.rglob("*.tmp")) if out.exists() else True
    for shard in out.glob("*.tfrecord") if out.exists() else ():
        side = folder.summary_path(out, shard.name)
        assert folder.count_records(shard) == json.loads(side.read_text())["records"]
    if m is not None:
        assert m["records"] > 0 and folder.verify(out) == []
