"""The timeline of long recordings (emotf.serving.timeline, python -m emotf.predict --timeline): a recording made of
clips of known emotions with silences and a level change, bad input, the picture, the Python table."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import shared

pytest.importorskip("tensorflow")

from emotf import predict  # noqa: E402
from emotf.features import audio  # noqa: E402
from emotf.features.audio import VAD_FRAME_MS  # noqa: E402
from emotf.serving import timeline as tl  # noqa: E402
from emotf.serving.inference import predict as predict_clip  # noqa: E402

RATE = 16000
CFG = tl.TimelineConfig(window_s=3.0, hop_s=1.0, smooth=3, block_s=20.0)  # blocks shorter than the recording


@pytest.fixture(scope="module")
def long_recording(tiny_wave_records, tmp_path_factory):
    """20 clips of the synthetic RAVDESS corpus, 4.5 s of quiet room noise between them (longer than a window),
    every other clip 12 dB quieter, over 2.5 minutes in all: (path, [(speech start, speech end, clip path)])."""
    clips = sorted((tiny_wave_records["ravdess"].parents[2] / "ravdess").glob("Actor_0[3-6]/*.wav"))[::-1][:20]
    return _concatenated(clips, tmp_path_factory.mktemp("long") / "session.flac")


@pytest.fixture(scope="module")
def real_long_recording(tmp_path_factory):
    """The same made of real clips: RAVDESS, EmoDB and EMOVO utterances of known emotions, 3 of each corpus."""
    picks = [("ravdess_speech", "Actor_01/03-01-0[358]-01-01-01-01.flac"), ("emodb", "*/03a0*.flac"),
             ("emovo", "*/*-f1-b1.flac")]
    if not shared("ravdess_speech").is_dir():
        pytest.skip("../shared/data is absent")
    clips = [c for corpus, pattern in picks for c in sorted(shared(corpus).glob(pattern))[:3]]
    assert len(clips) >= 7, clips
    return _concatenated(clips, tmp_path_factory.mktemp("reallong") / "session.flac")


def _concatenated(clips, path):
    rng = np.random.default_rng(0)
    pieces, truth, t = [], [], 0
    cfg = audio.AudioConfig()
    for i, clip in enumerate(clips):
        x, sr = sf.read(clip, dtype="float32")
        assert sr == RATE
        gap = (rng.standard_normal(int(4.5 * RATE)) * 3e-4).astype(np.float32)
        x = x * np.float32(10 ** (-12 / 20) if i % 2 else 1.0)
        speech = np.flatnonzero(audio.speech_frames(x, cfg))
        frame = RATE * VAD_FRAME_MS // 1000
        start = t + len(gap)
        truth.append(((start + speech[0] * frame) / RATE, (start + (speech[-1] + 1) * frame) / RATE, clip))
        pieces += [gap, x]
        t += len(gap) + len(x)
    pieces.append(np.zeros(RATE, np.float32))
    sf.write(path, np.concatenate(pieces), RATE)
    return path, truth


@pytest.mark.parametrize("recording", ["long_recording", pytest.param("real_long_recording",
                                                                      marks=pytest.mark.realdata)])
def test_segments_follow_the_clips_and_silence_is_skipped(wave_run, recording, request):
    path, truth = request.getfixturevalue(recording)
    t = tl.timeline(wave_run, path, cfg=CFG)
    assert t.duration_s == pytest.approx(sf.info(path).duration, abs=0.01) and not t.truncated
    # every silence longer than a window is skipped: no scored window lies inside one
    for (_, end, _), (start, _, _) in zip(truth, truth[1:], strict=False):
        assert not [w for w in t.windows if w["start_s"] >= end + 0.1 and w["end_s"] <= start - 0.1]
    # each clip's speech is covered, the quieter ones too, and the segments start and end within a hop of it
    for a, b, clip in truth:
        inside = [s for s in t.segments if s["end_s"] > a and s["start_s"] < b]
        assert inside, clip
        assert abs(inside[0]["start_s"] - a) <= CFG.hop_s and abs(inside[-1]["end_s"] - b) <= CFG.hop_s, clip
    # the labels agree with the model's label of each clip alone over >= 70 % of the speech time
    agree = total = 0.0
    for a, b, clip in truth:
        alone = predict_clip(wave_run, clip)["label"]
        for s in t.segments:
            overlap = max(0.0, min(b, s["end_s"]) - max(a, s["start_s"]))
            total, agree = total + overlap, agree + overlap * (s["label"] == alone)
    assert agree / total >= 0.7
    # segments tile the speech without overlap; the summary is a share of it
    assert all(s["end_s"] <= n["start_s"] + 1e-6 for s, n in zip(t.segments, t.segments[1:], strict=False))
    assert sum(t.summary().values()) == pytest.approx(1.0)
    # rows: every class's probability (summing to one after smoothing), the speech share, a label
    w = t.windows[0]
    assert sum(w[c] for c in t.class_names) == pytest.approx(1.0) and 0.2 <= w["speech_share"] <= 1
    assert w["label"] in t.class_names and w["label_raw"] in t.class_names


def test_an_array_gives_the_file_s_windows_and_the_table_is_a_list_without_pandas(wave_run, long_recording):
    path, _ = long_recording
    x, sr = sf.read(path, dtype="float32")
    from_file = tl.timeline(wave_run, path, cfg=CFG)
    from_array = tl.timeline(wave_run, x, sample_rate=sr, cfg=CFG)
    assert [w["start_s"] for w in from_array.windows] == [w["start_s"] for w in from_file.windows]
    rows = tl.table(wave_run, x, sample_rate=sr, smooth=3)
    if isinstance(rows, list):  # pandas is not a dependency
        assert rows[0]["file"] == "<array>" and set(from_file.class_names) <= set(rows[0])
    with pytest.raises(ValueError, match="sample_rate"):
        tl.timeline(wave_run, x)


def test_reading_is_bounded_blocks_of_any_rate_and_channel_count(tmp_path):
    x = np.sin(np.arange(int(96000 * 7.3)) * 0.01).astype(np.float32) * 0.5
    path = tmp_path / "four.wav"
    sf.write(path, np.stack([x, x, x, x], axis=1), 96000, subtype="PCM_24")
    blocks = list(audio.stream_audio(path, RATE, 2 * RATE))
    assert [len(b) for b in blocks[:-1]] == [2 * RATE] * 3 and 0 < len(blocks[-1]) <= 2 * RATE
    assert sum(map(len, blocks)) == pytest.approx(7.3 * RATE, abs=2)


def test_the_command_names_every_bad_input_and_writes_the_rest(wave_run, long_recording, tmp_path, capsys):
    import av

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.txt").write_text("not a recording")
    sf.write(folder / "silence.wav", np.zeros(10 * RATE, np.float32), RATE)
    x, _ = sf.read(long_recording[0], dtype="float32")
    with av.open(str(folder / "talk.mp3"), "w") as out:  # an MP3, then the same cut in half
        stream = out.add_stream("mp3", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((x[None, : 20 * RATE] * 32767).astype(np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    data = (folder / "talk.mp3").read_bytes()
    (folder / "cut.mp3").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert predict.main([str(wave_run), str(folder), "--timeline", "--out", str(out), "--smooth", "3"]) == 0
    printed = capsys.readouterr().out
    assert "empty.wav: empty file (0 bytes)" in printed and "silence.wav: 0:10, speech 0:00, 0 windows: no speech" \
        in printed and "notes.txt" not in printed
    rep = json.loads((out / "timeline.json").read_text())
    by_name = {Path(r["file"]).name: r for r in rep["recordings"]}
    assert set(by_name) == {"silence.wav", "talk.mp3", "cut.mp3"} and rep["skipped"][0]["file"].endswith("empty.wav")
    assert by_name["cut.mp3"]["truncated"].startswith("decoded ") and not by_name["talk.mp3"]["truncated"]
    assert by_name["cut.mp3"]["duration_s"] < 0.6 * by_name["talk.mp3"]["duration_s"]
    assert by_name["silence.wav"]["windows"] == [] and by_name["talk.mp3"]["segments"]
    header = (out / "timeline.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["file", "start_s", "end_s", "label", "label_raw", "speech_share"]
    assert predict.main([str(wave_run), str(folder)]) == 2  # a folder without --timeline: said, not guessed


@pytest.mark.slow  # whole-pipeline: two processes each loading TensorFlow and the model; CI runs it
def test_two_worker_processes_give_the_same_table(wave_run, long_recording, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    x, _ = sf.read(long_recording[0], dtype="float32")
    for i in range(3):
        sf.write(folder / f"part{i}.wav", x[i * 20 * RATE:(i + 1) * 20 * RATE], RATE)
    reps = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        assert predict.main([str(wave_run), str(folder), "--timeline", "--out", str(out), "--workers", workers,
                             "--no-png", "--no-html"]) == 0
        reps.append(json.loads((out / "timeline.json").read_text()))
    assert reps[0]["recordings"] == reps[1]["recordings"] and len(reps[0]["recordings"]) == 3
    assert reps[0]["skipped"] == reps[1]["skipped"] and reps[1]["skipped"][0]["file"].endswith("empty.wav")


def test_the_picture_has_the_level_and_a_strip_of_class_colours(wave_run, long_recording, tmp_path):
    from PIL import Image

    from emotf.figures import class_colour

    t = tl.timeline(wave_run, long_recording[0], cfg=CFG)
    png = tl.timeline_png(t, tmp_path / "t.png")
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 1000
    colours = {tuple(int(class_colour(n)[i:i + 2], 16) for i in (1, 3, 5)) for n in t.class_names}
    pixels = {tuple(p) for p in img.reshape(-1, 3)[::7]}
    assert len(colours & pixels) >= 2  # the strips are drawn, in the classes' own colours


def _browser() -> str | None:
    import shutil

    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (.ci/run installs it from the system's packages)")
def test_the_page_in_a_headless_browser_seeks_where_the_strip_is_clicked(wave_run, long_recording, tmp_path):
    import re
    import subprocess

    t = tl.timeline(wave_run, long_recording[0], cfg=CFG)
    page = tl.html_report(t, tmp_path / "page.html")
    assert "http" not in page.read_text().split("<body", 1)[1]  # nothing fetched: everything inlined
    args = [_browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,800"]
    dom = subprocess.run([*args, "--dump-dom", f"file://{page}#click=0.5"], capture_output=True, text=True,
                         timeout=120).stdout
    assert 'data-ready="1"' in dom  # the script ran
    assert len(re.findall(r'<tr class="segment', dom)) == len(t.segments) > 0
    assert len(set(re.findall(r'<rect class="window" data-i="(\d+)"', dom))) == len([w for w in t.windows
                                                                                   if w["label"]])
    x = float(re.search(r'<line id="cursor" x1="([\d.]+)"', dom).group(1))
    assert x == pytest.approx(t.duration_s / 2, rel=0.02)  # a click in the middle of the strip seeks there
    current = re.findall(r'<tr class="segment current" data-start="([\d.]+)"', dom)
    assert len(current) <= 1 and all(float(c) <= x for c in current)
    shot = tmp_path / "page.png"
    subprocess.run([*args, f"--screenshot={shot}", f"file://{page}"], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
