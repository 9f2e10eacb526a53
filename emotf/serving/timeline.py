"""Emotion over time in a long recording, or in every recording of a folder (``python -m emotf.predict RUN PATH
--timeline``).

    audio file ──read in blocks──▶ mono at the records' rate ──▶ voice activity (30-ms frames, as the wave records)
        ──▶ windows of ``window_s`` every ``hop_s`` (those with less than ``min_speech`` speech are skipped)
        ──▶ the model's inputs, made as its records were (`emotf.features.inputs`) ──▶ batches ──▶ one row a window
        ──▶ [median over ``smooth`` windows] ──▶ segments of one label ──▶ CSV, JSON, PNG

Memory is bounded whatever the recording's length: audio is decoded ``block_s`` at a time
(`emotf.features.audio.stream_audio`: soundfile, or FFmpeg for MP3/MP4 and other containers), resampled as a
stream, and only the last window's samples are
kept; what grows with the length is one byte of voice activity and one float of level per 30 ms (0.5 MB an hour)
and the rows. Each window owns the ``hop_s`` at its centre, so segments and the speech-time summary tile the
recording without overlap.
"""

from __future__ import annotations

import base64
import collections
import csv
import dataclasses
import html
import io
import json
import logging
import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from emotf.config import PreprocessConfig
from emotf.corpora.base import VIDEO_EXTENSIONS
from emotf.features import audio
from emotf.features.audio import VAD_FRAME_MS, BadInputError
from emotf.features.inputs import feature_config, features_of_samples, model_inputs
from emotf.figures import class_colour, clock, pyplot, time_axis
from emotf.runs import open_run

log = logging.getLogger("emotf")

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", *VIDEO_EXTENSIONS)
# A frame this far under the block's speech level, or under this absolute level, is silence whatever the detector
# says: the detector sees each block scaled to one speech level, and a block of room noise must not become speech.
QUIET_BELOW_SPEECH_DB = 40.0
QUIET_DBFS = -60.0


@dataclasses.dataclass(frozen=True)
class TimelineConfig:
    """How a recording is cut and scored.

    Attributes:
        window_s, hop_s: each window's length and the step between windows (3 s every 1 s: the clips the
            models were trained on, a label a second).
        min_speech: a window is scored when at least this share of its 30-ms frames holds speech.
        smooth: the label of a window is taken after a running median of the probabilities over this many
            scored windows (odd; 1: none).
        batch_size: windows per model call.
        block_s: seconds of audio decoded at a time (memory), a whole number of 30-ms frames.
        adapt_speaker: the recording is one speaker's: standardise every window's pooled features with the
            recording's own statistics before the head (`emotf.models.adaptation`; models with the pooled-
            statistics head, whisper_tiny's default). Keeps each window's pooled features until the end (15 KB a
            window for whisper_tiny: 55 MB an hour).
    """

    window_s: float = 3.0
    hop_s: float = 1.0
    min_speech: float = 0.2
    smooth: int = 1
    batch_size: int = 32
    block_s: float = 60.0
    adapt_speaker: bool = False

    def __post_init__(self):
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"need 0 < hop_s <= window_s. Received: hop {self.hop_s}, window {self.window_s}")
        if not 0 <= self.min_speech <= 1:
            raise ValueError(f"min_speech is a share in [0, 1]. Received: {self.min_speech}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd number of windows >= 1. Received: {self.smooth}")


@dataclasses.dataclass
class Timeline:
    """One recording's timeline.

    Attributes:
        file: the recording.
        duration_s: its length.
        class_names: the model's classes (the columns of ``probabilities``).
        windows: one dict a scored window: start_s, end_s (the window), label, label_raw (before smoothing),
            speech_share, and each class's probability (smoothed where ``smooth`` > 1).
        segments: consecutive windows of one label merged: start_s, end_s (the windows' central hops), label,
            windows, and the mean probability of the label.
        speech: (frames,) bool, 30-ms voice activity of the whole recording.
        level_db: (frames,) float32, each 30-ms frame's RMS level (dBFS), for the picture.
        config: how it was cut and scored.
        truncated: where the file holds less audio than its header declares, how much it held ("" otherwise).
    """

    file: str
    duration_s: float
    class_names: tuple[str, ...]
    windows: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    speech: np.ndarray
    level_db: np.ndarray
    config: TimelineConfig = TimelineConfig()
    truncated: str = ""

    def summary(self) -> dict[str, float]:
        """Each class's share of the labelled speech time (the windows' central hops)."""
        seconds = collections.Counter()
        for s in self.segments:
            seconds[s["label"]] += s["end_s"] - s["start_s"]
        total = sum(seconds.values())
        return {n: seconds[n] / total for n in self.class_names} if total else {}

    def shares(self) -> str:
        """The summary in words, commonest first: "neutral 25%, sad 20%, ..." ("no speech found" without)."""
        shares = sorted(self.summary().items(), key=lambda kv: -kv[1])
        return ", ".join(f"{n} {s:.0%}" for n, s in shares if s > 0) or "no speech found"

    def summary_line(self) -> str:
        speech_s = float(self.speech.sum()) * VAD_FRAME_MS / 1000
        return (f"{self.file}: {clock(self.duration_s)}, speech {clock(speech_s)}, {len(self.windows)} windows: "
                f"{self.shares()}")


# --------------------------------------------------------------------------- reading

def _frame_levels(x: np.ndarray, frame: int) -> np.ndarray:
    """Each whole frame's RMS level in dBFS."""
    return (10 * np.log10(np.maximum(audio.frame_power(x, frame), 1e-12))).astype(np.float32)


def _voice_activity(block: np.ndarray, cfg, levels: np.ndarray) -> np.ndarray:
    """The wave records' detector on one block (``levels``: its 30-ms frames' dBFS), with quiet frames (room
    noise scaled up) kept out."""
    level = audio.active_level_dbfs(block, cfg)
    speech = audio.speech_frames(block, cfg, level_dbfs=level)
    return speech & (levels[: len(speech)] >= max(QUIET_DBFS, level - QUIET_BELOW_SPEECH_DB))


# --------------------------------------------------------------------------- scoring

def timeline(run_dir: str | Path, source: str | Path | np.ndarray, *, sample_rate: int | None = None,
             cfg: TimelineConfig = TimelineConfig(), model=None, progress: bool = False,
             video: str | Path | None = None, side: str = "") -> Timeline:
    """The timeline of one recording: a file path, or a (n,) float waveform at ``sample_rate``.

    ``video`` (audio-visual and video models): the face video of the same recording; each window's face stacks
    come from the same span of it. A window in none of whose clips a face is found is marked (``face_found``
    0) and not scored: its label is empty, not guessed from the fixed fallback crop.

    Raises:
        BadInputError: an unreadable file (naming it).
        ValueError: a model that needs the face video without it (or the other way round), or a waveform without
            its rate.
    """
    run = open_run(run_dir)
    if run.modality in ("video", "av") and not video:
        raise ValueError(f"the {run.arch} model needs the face video for each window: pass --video")
    if video and run.modality not in ("video", "av"):
        raise ValueError(f"the {run.arch} model hears the audio only, so --video {video} would be ignored")
    model = model or run.load_model()
    pcfg = feature_config(run)
    rate = pcfg.audio.sample_rate_hz
    frame = rate * VAD_FRAME_MS // 1000
    size = max(1, int(round(cfg.block_s * rate / frame))) * frame  # whole frames: the blocks' frames line up
    notes: dict = {}
    if isinstance(source, np.ndarray):
        if not sample_rate:
            raise ValueError("a waveform needs its sample_rate")
        x = np.asarray(source, np.float32).reshape(-1)
        x = soxr.resample(x, sample_rate, rate) if sample_rate != rate else x
        blocks: Iterable[np.ndarray] = (x[i:i + size] for i in range(0, len(x), size))
        name = "<array>"
    else:
        blocks = audio.stream_audio(source, rate, size, notes)
        name = str(source)
    scorer = _Scorer(run, model, pcfg, cfg, video, side)
    speech, levels = [], []
    window, hop = int(round(cfg.window_s * rate)), int(round(cfg.hop_s * rate))
    buffer, buffer_start, total, next_start = np.zeros(0, np.float32), 0, 0, 0
    bar = tqdm(unit="s", disable=not progress, desc=Path(name).name, leave=False)
    for block in blocks:
        levels.append(_frame_levels(block, frame))
        speech.append(_voice_activity(block, pcfg.audio, levels[-1]))
        buffer = np.concatenate([buffer, block])
        total += len(block)
        bar.update(round(len(block) / rate))
        flags = np.concatenate(speech)
        while next_start + window <= total:
            a = next_start - buffer_start
            scorer.add(next_start, buffer[a:a + window], flags)
            next_start += hop
        keep_from = next_start - buffer_start
        buffer, buffer_start = buffer[keep_from:], next_start
    bar.close()
    flags = np.concatenate(speech) if speech else np.zeros(0, bool)
    # the recording's end: one last, shorter window (at least a hop long) over what no window reached
    covered = next_start - hop + window if next_start else 0
    if total > covered and total - next_start >= hop:
        a = next_start - buffer_start
        scorer.add(next_start, buffer[a:], flags)
    rows = scorer.finish()
    _smooth(rows, run.class_names, cfg.smooth)
    duration = total / rate
    found = segments(rows, cfg, duration, flags)
    marked = [{**r, "label": "", "label_raw": "", **dict.fromkeys(run.class_names)} for r in scorer.faceless]
    rows = sorted(rows + marked, key=lambda r: r["start_s"])
    return Timeline(name, duration, tuple(run.class_names), rows, found,
                    flags, np.concatenate(levels) if levels else np.zeros(0, np.float32), cfg,
                    notes.get("truncated", ""))


class _Scorer:
    """Windows in, rows out: the model's inputs made as its records were, scored a batch at a time."""

    def __init__(self, run, model, pcfg: PreprocessConfig, cfg: TimelineConfig, video=None, side: str = ""):
        self.run, self.model, self.pcfg, self.cfg, self.video, self.side = run, model, pcfg, cfg, video, side
        self.rate = pcfg.audio.sample_rate_hz
        self.frame = self.rate * VAD_FRAME_MS // 1000
        self.pending: list[tuple[dict, dict[str, np.ndarray]]] = []
        self.rows: list[dict[str, Any]] = []
        self.faceless: list[dict[str, Any]] = []
        if cfg.adapt_speaker:  # the model cut at its pooled features; the head runs once all windows are in
            from emotf.models import adaptation  # imports TensorFlow: deferred, so the module loads without it

            self.adaptation = adaptation
            self.features, self.head = adaptation.split(model)
            self.pooled: list[np.ndarray] = []

    def add(self, start: int, samples: np.ndarray, flags: np.ndarray) -> None:
        a, b = start // self.frame, (start + len(samples)) // self.frame
        share = float(flags[a:b].mean()) if b > a else 0.0
        if share < self.cfg.min_speech or share == 0.0:
            return
        faces: list[bool] = []
        x, _ = features_of_samples(self.run, samples, self.video, side=self.side, pcfg=self.pcfg, key=f"t{start}",
                                   video_offset_s=start / self.rate, faces_found=faces)
        row = {"start_s": round(start / self.rate, 3), "end_s": round((start + len(samples)) / self.rate, 3),
               "speech_share": round(share, 3)}
        if self.video:
            row["face_found"] = round(float(np.mean(faces)), 3) if faces else 0.0
            if not any(faces):  # marked, not guessed: the fallback crop holds no face
                self.faceless.append(row)
                return
        self.pending.append((row, x))
        if len(self.pending) >= self.cfg.batch_size:
            self._score()

    def _score(self) -> None:
        if not self.pending:
            return
        rows, xs = zip(*self.pending, strict=True)
        self.pending = []
        if self.run.reads_wave:
            longest = max(x["audio"].shape[1] for x in xs)
            batch = {"audio": np.concatenate([np.pad(x["audio"], ((0, 0), (0, longest - x["audio"].shape[1])))
                                              for x in xs]),
                     "audio_length": np.concatenate([x["audio_length"] for x in xs])}
            if "video" in xs[0]:
                batch["video"] = np.concatenate([x["video"] for x in xs])
            if self.cfg.adapt_speaker:
                self.pooled.append(np.asarray(self.features.predict_on_batch(batch), np.float32))
                self.rows.extend(rows)
                return
            probs = np.asarray(self.model.predict_on_batch(batch), np.float64)
        else:  # spectrogram images: a window may hold several clips, whose probabilities are averaged
            counts = [len(x["audio"]) for x in xs]
            stacked = {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}
            clip_probs = np.asarray(self.model.predict_on_batch(model_inputs(self.run, stacked)), np.float64)
            bounds = np.cumsum([0, *counts])
            probs = np.stack([clip_probs[bounds[i]:bounds[i + 1]].mean(axis=0) for i in range(len(xs))])
        self._label(rows, probs)
        self.rows.extend(rows)

    def _label(self, rows: Sequence[dict], probs: np.ndarray) -> None:
        names = self.run.class_names
        for row, p in zip(rows, probs, strict=True):
            row["label_raw"] = names[int(p.argmax())]
            row.update({n: float(v) for n, v in zip(names, p, strict=True)})

    def finish(self) -> list[dict[str, Any]]:
        self._score()
        if self.cfg.adapt_speaker and self.rows:
            pooled = np.concatenate(self.pooled)
            if len(pooled) >= 2:  # one window has no statistics of its own to standardise with
                pooled = self.adaptation.adapt(pooled, self.model.get_layer(self.adaptation.NORM))
            self._label(self.rows, np.asarray(self.head(pooled, training=False), np.float64))
        return self.rows


def _smooth(rows: list[dict[str, Any]], names: Sequence[str], n: int) -> None:
    """Each row's probabilities become their running median over ``n`` scored windows; "label" their argmax."""
    if rows and n > 1:
        p = np.array([[r[c] for c in names] for r in rows])
        padded = np.pad(p, ((n // 2, n // 2), (0, 0)), mode="edge")
        med = np.stack([np.median(padded[i:i + n], axis=0) for i in range(len(rows))])
        med /= np.maximum(med.sum(axis=1, keepdims=True), 1e-12)  # medians per class need not sum to one
        for r, m in zip(rows, med, strict=True):
            r.update({c: float(v) for c, v in zip(names, m, strict=True)})
    for r in rows:
        r["label"] = max(names, key=lambda c: r[c])


def segments(rows: Sequence[dict[str, Any]], cfg: TimelineConfig, duration_s: float,
             speech: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Consecutive windows of one label merged.

    A window stands for the ``hop_s`` at its centre; the first window of a run of speech (windows a hop
    apart) also for the part of it before, the last for the part after, so segments tile the speech without
    overlap. A skipped window (silence) ends a segment. With ``speech`` (30-ms voice activity), each segment
    is then shrunk to the speech it holds, so it starts and ends where the voice does.
    """
    margin = (cfg.window_s - cfg.hop_s) / 2
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        after_previous = i > 0 and abs(r["start_s"] - rows[i - 1]["start_s"] - cfg.hop_s) < 1e-6
        before_next = i + 1 < len(rows) and abs(rows[i + 1]["start_s"] - r["start_s"] - cfg.hop_s) < 1e-6
        a = r["start_s"] + margin if after_previous else r["start_s"]
        b = r["start_s"] + margin + cfg.hop_s if before_next else min(r["end_s"], duration_s)
        if after_previous and out[-1]["label"] == r["label"]:
            out[-1]["end_s"] = round(b, 3)
            out[-1]["_p"].append(r[r["label"]])
        else:
            out.append({"start_s": round(a, 3), "end_s": round(b, 3), "label": r["label"], "_p": [r[r["label"]]]})
    kept = []
    for s in out:
        p = s.pop("_p")
        s.update(windows=len(p), probability=round(float(np.mean(p)), 3))
        if speech is not None:
            span = _speech_span(speech, s["start_s"], s["end_s"])
            if span is None:  # its windows' speech lies in the neighbours' stretches
                continue
            s["start_s"], s["end_s"] = span
        kept.append(s)
    return kept


def _speech_span(speech: np.ndarray, a: float, b: float) -> tuple[float, float] | None:
    """[a, b) shrunk to its first and last 30-ms frame of speech; None where it holds none."""
    frame_s = VAD_FRAME_MS / 1000
    i, j = int(round(a / frame_s)), int(round(b / frame_s))
    hits = np.flatnonzero(speech[i:j])
    if not len(hits):
        return None
    return round(float(max(a, (i + hits[0]) * frame_s)), 3), round(float(min(b, (i + hits[-1] + 1) * frame_s)), 3)


# --------------------------------------------------------------------------- outputs

def table(run_dir: str | Path, source: str | Path | np.ndarray, *, sample_rate: int | None = None, **kwargs):
    """The windows of one recording as a table, for notebooks: a pandas DataFrame where pandas is installed,
    else a list of dicts (one per window: file, start_s, end_s, label, label_raw, speech_share, each class).

    ``kwargs``: `TimelineConfig` fields.
    """
    t = timeline(run_dir, source, sample_rate=sample_rate, cfg=TimelineConfig(**kwargs))
    rows = [{"file": t.file, **r} for r in t.windows]
    try:
        import pandas as pd  # optional: not a dependency of emotf
    except ModuleNotFoundError:
        return rows
    return pd.DataFrame(rows)


def window_columns(class_names: Sequence[str], video: bool = False) -> list[str]:
    return ["file", "start_s", "end_s", "label", "label_raw", "speech_share", *(["face_found"] if video else []),
            *class_names]


def write_csv(timelines: Sequence[Timeline], path: str | Path, *, append: bool = False) -> Path:
    """One row per scored window of every recording (the table pandas reads: ``pd.read_csv(path)``); ``append``:
    add the rows to the table a first call wrote (with the same model and inputs)."""
    path = Path(path)
    names = timelines[0].class_names if timelines else ()
    with open(path, "a" if append else "w", newline="") as f:
        video = any("face_found" in r for t in timelines for r in t.windows)
        w = csv.DictWriter(f, fieldnames=window_columns(names, video))
        if not append:
            w.writeheader()
        for t in timelines:
            for r in t.windows:
                w.writerow({"file": t.file, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}})
    return path


def to_dict(t: Timeline) -> dict[str, Any]:
    return {"file": t.file, "duration_s": round(t.duration_s, 3), "truncated": t.truncated,
            "class_names": list(t.class_names),
            "speech_s": round(float(t.speech.sum()) * VAD_FRAME_MS / 1000, 2),
            "summary": {k: round(v, 4) for k, v in t.summary().items()}, "segments": t.segments, "windows": t.windows}


def write_json(timelines: Sequence[Timeline], path: str | Path, *, skipped: Sequence[dict] = (),
               config: TimelineConfig | None = None) -> Path:
    """Every recording's segments, windows and summary, the skipped files with why, and the settings."""
    path = Path(path)
    path.write_text(json.dumps({"config": dataclasses.asdict(config) if config else None,
                                "recordings": [to_dict(t) for t in timelines], "skipped": list(skipped)}, indent=1))
    return path


def timeline_png(t: Timeline, path: str | Path) -> Path:
    """The recording's level over time (speech in colour, silence grey) above a strip of stacked class
    probabilities per scored window; one time axis in m:ss, gaps where no window was scored."""
    plt = pyplot()
    frame_s = VAD_FRAME_MS / 1000
    fig, (top, strip) = plt.subplots(2, 1, figsize=(12, 3.6), dpi=110, sharex=True,
                                     gridspec_kw={"height_ratios": [1, 1.4], "hspace": 0.08})
    if len(t.level_db):
        times = np.arange(len(t.level_db)) * frame_s
        level = np.maximum(t.level_db, -70.0)
        top.fill_between(times, -70, level, color="#bbbbbb", linewidth=0, step="post")
        speech = np.where(t.speech[: len(level)], level, np.nan)
        top.fill_between(times, -70, speech, color="#4a6fa5", linewidth=0, step="post")
    top.set_ylim(-70, 0)
    top.set_ylabel("dBFS")
    top.set_title(f"{Path(t.file).name}: level (speech in blue) and emotion per {t.config.window_s:g}-s window, "
                  f"every {t.config.hop_s:g} s", fontsize=9, loc="left")
    scored = [w for w in t.windows if w["label"]]  # (a window without a face is not scored)
    if scored:  # each window drawn over the hop at its centre, its classes stacked
        margin = (t.config.window_s - t.config.hop_s) / 2
        left = np.array([r["start_s"] + margin for r in scored])
        cumulative = np.zeros(len(scored))
        for name in t.class_names:
            p = np.array([r[name] for r in scored])
            strip.bar(left, p, width=t.config.hop_s, bottom=cumulative, align="edge", color=class_colour(name),
                      linewidth=0)
            cumulative += p
    for name in t.class_names:
        strip.plot([], [], color=class_colour(name), linewidth=6, label=name)
    strip.set_ylim(0, 1)
    strip.set_ylabel("probability")
    strip.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    time_axis(strip, t.duration_s)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def audio_files(folder: str | Path) -> list[Path]:
    """The recordings of a folder (recursively), by extension, in name order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def run_timelines(run_dir: str | Path, paths: Sequence[str | Path], out_dir: str | Path, *,
                  cfg: TimelineConfig = TimelineConfig(), png: bool = True, page: bool = True,
                  video: str | Path | None = None, side: str = "", workers: int = 1) -> dict[str, Any]:
    """The timelines of recordings and folders of recordings, written to ``out_dir``: timeline.csv (every window
    of every recording), timeline.json (segments, windows, summaries, skipped files), and a PNG and a
    self-contained HTML page (`html_report`) per recording.

    A file that cannot be read is listed with why in timeline.json's "skipped" (and logged); the others go on.
    ``video`` (audio-visual and video models; one recording): its face video (`timeline`).
    A folder's other files (text, images) are not recordings and are left alone. ``workers`` > 1: that many
    processes, each with the model loaded once, take the files in turn (each file's memory bounded as alone;
    the results written in the files' order).

    Returns:
        {"timelines": [...], "skipped": [{"file", "reason"}], "written": [paths]}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [f for p in map(Path, paths) for f in (audio_files(p) if p.is_dir() else [p])]
    if video and len(files) != 1:
        raise ValueError(f"--video is the face video of one recording; {len(files)} were given")
    done, skipped, written = [], [], []
    table_csv = out / "timeline.csv"
    table_csv.unlink(missing_ok=True)
    for f, t in zip(files, _timelines(run_dir, files, cfg, video, side, workers), strict=True):
        if isinstance(t, BadInputError):
            log.warning("skipped %s", t)
            skipped.append({"file": str(f), "reason": str(t)})
            continue
        if t.truncated:
            log.warning("%s: truncated: %s; its timeline covers that part", f, t.truncated)
        log.debug("%s", t.summary_line())
        # each recording's rows as it is done: a run stopped partway keeps the table of the files it finished
        write_csv([t], table_csv, append=bool(done))
        done.append(t)
        if png:
            written.append(timeline_png(t, out / f"{_stem(f, files)}.png"))
        if page:
            written.append(html_report(t, out / f"{_stem(f, files)}.html"))
    if not done:
        write_csv([], table_csv)  # the header alone
    written = [table_csv, write_json(done, out / "timeline.json", skipped=skipped, config=cfg), *written]
    return {"timelines": done, "skipped": skipped, "written": [str(w) for w in written]}


def _timelines(run_dir, files: Sequence[Path], cfg: TimelineConfig, video, side: str,
               workers: int) -> Iterator[Timeline | BadInputError]:
    """Each file's timeline, or the error that names why it cannot be read, in the files' order."""
    if workers <= 1 or len(files) <= 1:
        model = open_run(run_dir).load_model()
        for f in files:
            try:
                yield timeline(run_dir, f, cfg=cfg, model=model, progress=_longer_than_a_minute(f), video=video,
                               side=side)
            except BadInputError as e:
                yield e
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds TensorFlow
    with futures.ProcessPoolExecutor(min(workers, len(files)), mp_context=ctx, initializer=_load_worker,
                                     initargs=(str(run_dir),)) as pool:
        yield from pool.map(_worker_timeline, files, [cfg] * len(files))


_WORKER: dict[str, Any] = {}


def _load_worker(run_dir: str) -> None:
    _WORKER["run"], _WORKER["model"] = run_dir, open_run(run_dir).load_model()


def _worker_timeline(f: Path, cfg: TimelineConfig) -> Timeline | BadInputError:
    try:
        return timeline(_WORKER["run"], f, cfg=cfg, model=_WORKER["model"])
    except BadInputError as e:
        return e


def _stem(f: Path, files: Sequence[Path]) -> str:
    """A PNG name per recording: its stem, with its folder where two recordings share a stem."""
    if sum(g.stem == f.stem for g in files) == 1:
        return f.stem
    return "_".join([*f.parent.parts[-1:], f.stem])


def _longer_than_a_minute(f: Path) -> bool:
    try:
        return sf.info(str(f)).duration > 60
    except Exception:  # a container soundfile does not read: no progress bar
        return False


# --------------------------------------------------------------------------- the page

def encoded_audio(path: str | Path, rate: int = 16000, bitrate: int = 32000) -> bytes:
    """The recording as a small mono MP3 (16 kHz, 32 kbit/s: 14 MB an hour), for the page's player; encoded as it
    is read, so memory stays bounded."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("mp3", rate=rate)
        stream.layout, stream.bit_rate = "mono", bitrate
        for block in audio.stream_audio(path, rate, 1 << 16):
            frame = av.AudioFrame.from_ndarray(block[None, :].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def html_report(t: Timeline, path: str | Path, *, audio_mp3: bytes | None = None) -> Path:
    """A self-contained page of one recording (no server, no network: everything inlined): an audio player whose
    position moves a cursor over the emotion strip, a click on the strip (or on a segment's row) seeks the audio,
    the level over time, and the segment table. ``audio_mp3``: the recording encoded (`encoded_audio`; None: read
    from ``t.file``)."""
    if audio_mp3 is None:
        audio_mp3 = encoded_audio(t.file)
    width = max(t.duration_s, 1e-3)
    margin = (t.config.window_s - t.config.hop_s) / 2
    bars = []
    for i, w in enumerate(w for w in t.windows if w["label"]):
        y = 0.0
        for name in t.class_names:
            h = w[name]
            if h > 0.002:
                bars.append(f'<rect class="window" data-i="{i}" x="{w["start_s"] + margin:.3f}" y="{y:.4f}" '
                            f'width="{t.config.hop_s:.3f}" height="{h:.4f}" fill="{class_colour(name)}">'
                            f'<title>{clock(w["start_s"])} {name} {h:.0%}</title></rect>')
            y += h
    frames = max(1, len(t.level_db) // 2000)  # the level, at most 2000 points
    level = np.maximum(t.level_db[: len(t.level_db) // frames * frames].reshape(-1, frames).max(axis=1), -70.0) \
        if len(t.level_db) else np.zeros(0)
    step = frames * VAD_FRAME_MS / 1000
    points = " ".join(f"{i * step:.2f},{-v / 70:.3f}" for i, v in enumerate(level))  # 0 dBFS at the top
    legend = "".join(f'<span class="key"><i style="background:{class_colour(n)}"></i>{n}</span>'
                     for n in t.class_names)
    rows = "".join(f'<tr class="segment" data-start="{s["start_s"]}"><td>{clock(s["start_s"])}</td>'
                   f'<td>{clock(s["end_s"])}</td><td><i style="background:{class_colour(s["label"])}"></i>'
                   f'{s["label"]}</td><td>{s["probability"]:.2f}</td><td>{s["windows"]}</td></tr>' for s in t.segments)
    page = _PAGE.format(
        title=html.escape(Path(t.file).name), summary=html.escape(t.summary_line()), width=f"{width:.3f}",
        audio=base64.b64encode(audio_mp3).decode(), bars="".join(bars), points=points, legend=legend, rows=rows,
        windows=len(t.windows), shares=html.escape(t.shares()))
    Path(path).write_text(page)
    return Path(path)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: emotion over time</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
audio {{ width: 100%; }}
svg {{ width: 100%; display: block; cursor: pointer; }}
#level {{ height: 60px; background: #fafafa; }} #strip {{ height: 120px; background: #f4f4f4; }}
.key {{ margin-right: 1em; white-space: nowrap; }} i {{ display: inline-block; width: .9em; height: .9em;
  margin-right: .3em; vertical-align: -.1em; }}
table {{ border-collapse: collapse; margin-top: 1em; }} td, th {{ padding: .2em .8em; text-align: left; }}
tr.segment {{ cursor: pointer; }} tr.segment:hover, tr.current {{ background: #eef; }}
</style></head>
<body data-windows="{windows}">
<h1 style="font-size:1.2em">{title}</h1>
<p id="summary">{summary}</p>
<audio id="player" controls preload="auto" src="data:audio/mpeg;base64,{audio}"></audio>
<svg id="level" viewBox="0 0 {width} 1" preserveAspectRatio="none">
<polygon points="0,1 {points} {width},1" fill="#4a6fa5"/></svg>
<svg id="strip" viewBox="0 0 {width} 1" preserveAspectRatio="none">{bars}
<line id="cursor" x1="0" x2="0" y1="0" y2="1" stroke="#000" stroke-width="2" vector-effect="non-scaling-stroke"/>
</svg>
<p>{legend}</p>
<p>Speech time by emotion: <b id="shares">{shares}</b></p>
<table id="segments"><thead><tr><th>from</th><th>to</th><th>emotion</th><th>probability</th><th>windows</th></tr>
</thead><tbody>{rows}</tbody></table>
<script>
const player = document.getElementById("player"), strip = document.getElementById("strip"),
      cursor = document.getElementById("cursor"), duration = {width};
function seek(t) {{ t = Math.max(0, Math.min(duration, t)); player.currentTime = t; move(t); }}
function move(t) {{
  cursor.setAttribute("x1", t); cursor.setAttribute("x2", t);
  document.querySelectorAll("tr.segment").forEach(r => r.classList.toggle("current",
    +r.dataset.start <= t && (r.nextElementSibling === null || +r.nextElementSibling.dataset.start > t)));
}}
player.addEventListener("timeupdate", () => move(player.currentTime));
for (const svg of [strip, document.getElementById("level")]) {{
  svg.addEventListener("click", e => {{
    const box = svg.getBoundingClientRect(); seek((e.clientX - box.left) / box.width * duration);
  }});
}}
document.querySelectorAll("tr.segment").forEach(r => r.addEventListener("click", () => seek(+r.dataset.start)));
// page.html#seek=SECONDS or #click=SHARE (of the strip's width): the same seek as a click, for a headless check
const ask = new URLSearchParams(location.hash.slice(1));
if (ask.has("seek")) seek(+ask.get("seek"));
if (ask.has("click")) {{
  const box = strip.getBoundingClientRect();
  strip.dispatchEvent(new MouseEvent("click", {{clientX: box.left + box.width * +ask.get("click"),
                                               clientY: box.top + 1, bubbles: true}}));
}}
document.body.dataset.ready = "1";
</script></body></html>
"""
