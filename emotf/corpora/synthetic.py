"""Small synthetic corpora in the exact IEMOCAP and RAVDESS layouts (``python -m emotf.synth``).

The emotion is learnable from the audio *and* from the video of each clip:

* audio: a harmonic voice whose pitch level, pitch range and contour, syllable
  rate, loudness, brightness and breathiness depend on the emotion (and the
  speaker's gender), with per-utterance randomness and a low noise floor;
* video: a drawn face whose brows, eyes and mouth shape follow the emotion, and
  whose mouth opening follows the audio's syllable envelope frame by frame, so
  audio and video of one clip are synchronised. IEMOCAP dialogs show both
  actors side by side; the listener keeps a neutral, closed-mouth face.

Everything is seeded: the same arguments give the same corpus.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from emotf.config import SAMPLE_RATE_HZ
from emotf.corpora import iemocap, ravdess

SR = SAMPLE_RATE_HZ
FPS = 30.0


@dataclasses.dataclass(frozen=True)
class Style:
    """How one emotion sounds and looks."""

    f0_scale: float  # × the speaker's base pitch
    f0_range_st: float  # pitch movement, semitones
    slope_st: float  # pitch drift over an utterance, semitones
    rate_hz: float  # syllables per second
    loudness: float  # peak amplitude
    tilt_db: float  # harmonic roll-off per octave (brighter when closer to 0)
    breath: float  # aspiration noise relative to the voice
    tremor_hz: float  # pitch tremor
    brow: float  # inner-brow offset: + lowered (angry), - raised (sad, fear)
    eye_open: float  # 0..1.4
    smile: float  # mouth-corner lift: + smile, - frown
    mouth_width: float


STYLES = {
    "neutral": Style(1.00, 2.0, 0.0, 4.0, 0.30, -12, 0.02, 0, 0.0, 1.0, 0.0, 1.0),
    "happy": Style(1.25, 6.0, 2.0, 5.0, 0.50, -8, 0.02, 0, -0.2, 1.0, 0.9, 1.15),
    "excited": Style(1.35, 7.0, 3.0, 5.5, 0.60, -7, 0.02, 0, -0.3, 1.2, 1.0, 1.2),
    "sad": Style(0.85, 1.5, -3.0, 2.5, 0.15, -16, 0.08, 0, -0.6, 0.55, -0.8, 0.9),
    "angry": Style(1.15, 4.0, -1.0, 6.0, 0.85, -5, 0.04, 0, 0.9, 0.7, -0.3, 1.25),
    "frustrated": Style(1.05, 3.0, -2.0, 4.5, 0.50, -9, 0.05, 0, 0.5, 0.8, -0.4, 1.0),
    "fearful": Style(1.35, 3.0, 1.0, 5.5, 0.35, -10, 0.06, 8, -0.9, 1.4, -0.2, 0.9),
    "surprised": Style(1.40, 8.0, 5.0, 4.0, 0.55, -8, 0.03, 0, -1.0, 1.4, 0.0, 0.8),
    "disgust": Style(0.95, 2.0, -1.0, 3.0, 0.40, -11, 0.09, 0, 0.4, 0.6, -0.6, 1.1),
    "calm": Style(0.95, 1.5, -0.5, 3.2, 0.22, -13, 0.03, 0, -0.1, 0.75, 0.3, 1.0),
    "other": Style(1.05, 3.0, 0.0, 4.0, 0.35, -11, 0.03, 0, 0.2, 1.0, 0.2, 1.0),
    "no_agreement": Style(1.05, 3.0, 0.0, 4.0, 0.35, -11, 0.03, 0, 0.0, 1.0, 0.0, 1.0),
}
BASE_F0 = {"F": 210.0, "M": 115.0}

# The label files and file names carry the readers' own codes (label name -> code).
IEMOCAP_LABEL_CODES = {name: code for code, name in iemocap.CODES.items()}
IEMOCAP_WEIGHTS = {"neutral": 0.22, "happy": 0.13, "excited": 0.09, "sad": 0.18, "angry": 0.18,
                   "frustrated": 0.1, "fearful": 0.02, "surprised": 0.02, "no_agreement": 0.06}
RAVDESS_CODES = {name: code for code, name in ravdess.CODES.items()}
RAVDESS_EMOTIONS = list(RAVDESS_CODES)


# --------------------------------------------------------------------------- audio

def syllable_envelope(n: int, rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) envelope in [0, 1]: raised-cosine syllables with short gaps, at about ``rate_hz``."""
    env = np.zeros(n, np.float32)
    t = int(0.05 * SR)
    while t < n - int(0.05 * SR):
        length = int(SR / rate_hz * rng.uniform(0.6, 1.0))
        length = min(length, n - t)
        env[t:t + length] = np.maximum(env[t:t + length], np.sin(np.linspace(0, np.pi, length)) ** 1.5
                                       * rng.uniform(0.6, 1.0))
        t += length + int(SR / rate_hz * rng.uniform(0.05, 0.4))
    return env


def synth_voice(label: str, gender: str, duration_s: float, rng: np.random.Generator,
                speaker_shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A voiced utterance in the given emotion: (waveform (n,), envelope (n,)) at 16 kHz."""
    s = STYLES[label]
    n = int(duration_s * SR)
    t = np.arange(n) / SR
    f0_base = BASE_F0[gender] * speaker_shift * s.f0_scale * rng.uniform(0.95, 1.05)
    # Pitch: drift over the utterance + slow wandering within the range + tremor.
    k = max(2, int(duration_s * 2))
    wander = np.interp(t, np.linspace(0, duration_s, k), rng.uniform(-1, 1, k)) * s.f0_range_st / 2
    semis = wander + s.slope_st * (t / max(duration_s, 1e-3) - 0.5)
    if s.tremor_hz:
        semis += 0.6 * np.sin(2 * np.pi * s.tremor_hz * t)
    f0 = f0_base * 2 ** (semis / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = np.zeros(n)
    # Two slowly moving formant bumps (vowel-like colouring) over the harmonic comb.
    f1 = np.interp(t, np.linspace(0, duration_s, k + 2), rng.uniform(300, 900, k + 2))
    f2 = np.interp(t, np.linspace(0, duration_s, k + 2), rng.uniform(1000, 2600, k + 2))
    for h in range(1, int(7600 / f0_base) + 1):
        fh = h * f0
        gain = 10 ** (s.tilt_db * np.log2(h) / 20)
        formant = 1 + 3 * np.exp(-((fh - f1) / 250) ** 2) + 2 * np.exp(-((fh - f2) / 400) ** 2)
        voice += np.where(fh < 7800, gain * formant * np.sin(h * phase + rng.uniform(0, 2 * np.pi)), 0.0)
    voice /= np.max(np.abs(voice)) + 1e-9
    voice += s.breath * rng.standard_normal(n)
    env = syllable_envelope(n, s.rate_hz * rng.uniform(0.9, 1.1), rng)
    y = voice * env
    y = y / (np.max(np.abs(y)) + 1e-9) * s.loudness * rng.uniform(0.85, 1.0)
    y += rng.standard_normal(n) * 10 ** (-50 / 20)  # room noise floor, about -50 dBFS
    return y.astype(np.float32), env


# --------------------------------------------------------------------------- video

def draw_face(img: np.ndarray, cx: float, cy: float, size: float, label: str, mouth_open: float) -> None:
    """Draw a face (BGR, in place) with the expression of ``label`` and the given mouth opening (0..1)."""
    import cv2

    s = STYLES[label]
    r = size
    cv2.ellipse(img, (int(cx), int(cy)), (int(r * 0.75), int(r)), 0, 0, 360, (150, 180, 225), -1)
    cv2.ellipse(img, (int(cx), int(cy - r * 0.85)), (int(r * 0.72), int(r * 0.35)), 0, 180, 360, (40, 50, 70), -1)
    for side in (-1, 1):
        ex, ey = cx + side * r * 0.33, cy - r * 0.2
        cv2.ellipse(img, (int(ex), int(ey)), (int(r * 0.14), max(1, int(r * 0.08 * s.eye_open))), 0, 0, 360,
                    (255, 255, 255), -1)
        cv2.circle(img, (int(ex), int(ey)), max(1, int(r * 0.055 * min(1.0, s.eye_open + 0.3))), (40, 30, 20), -1)
        inner = (int(cx + side * r * 0.13), int(cy - r * 0.38 + s.brow * r * 0.12))
        outer = (int(cx + side * r * 0.5), int(cy - r * 0.40 - s.brow * r * 0.04))
        cv2.line(img, inner, outer, (30, 40, 60), max(1, int(r / 14)))
    cv2.ellipse(img, (int(cx), int(cy + r * 0.05)), (int(r * 0.07), int(r * 0.15)), 0, 0, 360, (120, 150, 200), -1)
    # Mouth: corners lifted by the smile, opened by the audio envelope.
    mx, my, mw = cx, cy + r * 0.48, r * 0.3 * s.mouth_width
    t = np.linspace(-1, 1, 15)
    lift = -s.smile * r * 0.12 * t ** 2
    opening = mouth_open * r * 0.28 * (1 - t ** 2)
    upper = np.stack([mx + mw * t, my + lift - 0.25 * opening], axis=1)
    lower = np.stack([mx + mw * t, my + lift + opening + s.smile * r * 0.06 * (1 - t ** 2)], axis=1)
    poly = np.concatenate([upper, lower[::-1]]).round().astype(np.int32)
    cv2.fillPoly(img, [poly], (40, 40, 140))
    cv2.polylines(img, [poly], True, (60, 60, 170), max(1, int(r / 30)))


def frame_envelope(env: np.ndarray, n_frames: int, fps: float = FPS) -> np.ndarray:
    """Per-frame mouth opening: the mean envelope over each frame's time."""
    step = SR / fps
    return np.array([env[int(i * step):max(int(i * step) + 1, int((i + 1) * step))].mean() if int(i * step) < len(env)
                     else 0.0 for i in range(n_frames)])


# --------------------------------------------------------------------------- IEMOCAP layout

@dataclasses.dataclass(frozen=True)
class IemocapSpec:
    sessions: int = 5
    dialogs: int = 2  # per session
    utterances: int = 8  # per dialog
    min_s: float = 1.2
    max_s: float = 7.0
    frame_w: int = 480  # both actors side by side
    frame_h: int = 240
    seed: int = 0


def _write_wav(path: Path, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(y, -1, 1), SR, subtype="PCM_16")


def generate_iemocap(root: str | Path, spec: IemocapSpec = IemocapSpec()) -> list[dict]:
    """Write a synthetic corpus in IEMOCAP's release layout under ``root``; return its utterance list."""
    import cv2

    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    labels = list(IEMOCAP_WEIGHTS)
    weights = np.array(list(IEMOCAP_WEIGHTS.values()))
    index = []
    for si in range(1, spec.sessions + 1):
        sdir = root / f"Session{si}"
        shifts = {"F": rng.uniform(0.9, 1.1), "M": rng.uniform(0.9, 1.1)}
        for di in range(1, spec.dialogs + 1):
            mocap = "F" if di % 2 else "M"
            kind = "impro" if di % 2 else "script"
            dialog = f"Ses{si:02d}{mocap}_{kind}{di:02d}" if kind == "impro" else f"Ses{si:02d}{mocap}_{kind}{di:02d}_1"
            t = rng.uniform(0.5, 1.5)
            turns = []
            counters = {"F": 0, "M": 0}
            for ui in range(spec.utterances):
                gender = "F" if ui % 2 == 0 else "M"
                label = labels[rng.choice(len(labels), p=weights / weights.sum())]
                dur = rng.uniform(spec.min_s, spec.max_s)
                y, env = synth_voice(label, gender, dur, rng, shifts[gender])
                utt = f"{dialog}_{gender}{counters[gender]:03d}"
                counters[gender] += 1
                turns.append(dict(utt=utt, gender=gender, label=label, start=t, end=t + dur, y=y, env=env))
                _write_wav(sdir / "sentences" / "wav" / dialog / f"{utt}.wav", y)
                t += dur + rng.uniform(0.3, 1.0)
            total = t + 0.5
            # Dialog audio (the release has it too) and the label file.
            dialog_audio = rng.standard_normal(int(total * SR)).astype(np.float32) * 10 ** (-50 / 20)
            for tr in turns:
                a = int(tr["start"] * SR)
                dialog_audio[a:a + len(tr["y"])] += tr["y"]
            _write_wav(sdir / "dialog" / "wav" / f"{dialog}.wav", dialog_audio)
            _write_iemocap_labels(sdir / "dialog" / "EmoEvaluation" / f"{dialog}.txt", turns, rng)
            _write_dialog_video(sdir / "dialog" / "avi" / "DivX" / f"{dialog}.avi", turns, total, mocap, spec, rng, cv2)
            index += [dict(utt=tr["utt"], label=tr["label"], gender=tr["gender"], start=tr["start"], end=tr["end"],
                           session=si, dialog=dialog) for tr in turns]
    return index


def _write_iemocap_labels(path: Path, turns: list[dict], rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for tr in turns:
        v, a, d = rng.uniform(1, 5, 3)
        lines.append(f"[{tr['start']:.4f} - {tr['end']:.4f}]\t{tr['utt']}\t{IEMOCAP_LABEL_CODES[tr['label']]}\t"
                     f"[{v:.4f}, {a:.4f}, {d:.4f}]")
        name = tr["label"].capitalize()
        lines += [f"C-E1:\t{name};\t()", f"C-E2:\t{name};\t()", f"C-E4:\t{name};\t()",
                  f"A-E1:\tval {v:.0f}; act {a:.0f}; dom  {d:.0f};\t()", ""]
    path.write_text("\n".join(lines) + "\n")


def _write_dialog_video(path, turns, total_s, mocap, spec, rng, cv2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = spec.frame_w, spec.frame_h
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"DIVX"), FPS, (w, h))
    n_frames = int(total_s * FPS) + 1
    # Each actor's seat: the mocap actor on the left (emotf's documented side rule).
    seat = {mocap: 0, ("M" if mocap == "F" else "F"): 1}
    place = {g: (seat[g] * w / 2 + w / 4 + rng.uniform(-w / 20, w / 20), h * rng.uniform(0.42, 0.5),
                 h * rng.uniform(0.2, 0.25)) for g in "FM"}
    bg = np.zeros((h, w, 3), np.uint8)
    bg[:, : w // 2] = (90, 110, 100)
    bg[:, w // 2:] = (100, 95, 115)
    mouth = {tr["utt"]: frame_envelope(tr["env"], int((tr["end"] - tr["start"]) * FPS) + 1) for tr in turns}
    for i in range(n_frames):
        time_s = i / FPS
        img = bg.copy()
        state = {g: ("neutral", 0.0) for g in "FM"}
        for tr in turns:
            if tr["start"] <= time_s < tr["end"]:
                k = min(int((time_s - tr["start"]) * FPS), len(mouth[tr["utt"]]) - 1)
                state[tr["gender"]] = (tr["label"], float(mouth[tr["utt"]][k]))
        for g in "FM":
            cx, cy, size = place[g]
            draw_face(img, cx, cy, size, state[g][0], state[g][1])
        writer.write(img)
    writer.release()


# --------------------------------------------------------------------------- RAVDESS layout

def generate_ravdess(root: str | Path, *, actors: int = 4, emotions: list[str] | None = None, statements: int = 2,
                     repetitions: int = 1, video: bool = True, seed: int = 0,
                     frame_size: tuple[int, int] = (160, 120)) -> list[dict]:
    """Write a synthetic corpus in RAVDESS's layout: ``Actor_NN/03-01-*.wav`` and ``02-01-*.mp4`` (video-only)."""
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    emotions = emotions or RAVDESS_EMOTIONS
    index = []
    for actor in range(1, actors + 1):
        gender = "M" if actor % 2 else "F"
        shift = rng.uniform(0.9, 1.1)
        adir = root / f"Actor_{actor:02d}"
        for emotion in emotions:
            code = RAVDESS_CODES[emotion]
            for intensity in ((1,) if emotion == "neutral" else (1, 2)):
                for stmt in range(1, statements + 1):
                    for rep in range(1, repetitions + 1):
                        take = f"01-{code}-{intensity:02d}-{stmt:02d}-{rep:02d}-{actor:02d}"
                        dur = rng.uniform(2.9, 4.5)
                        y, env = synth_voice(emotion, gender, dur, rng, shift)
                        _write_wav(adir / f"03-{take}.wav", y)
                        if video:
                            _write_face_video(adir / f"02-{take}.mp4", emotion, env, dur, frame_size, rng, cv2)
                        index.append(dict(take=take, label=emotion, actor=actor))
    return index


def _write_face_video(path, label, env, dur, frame_size, rng, cv2) -> None:
    w, h = frame_size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    n = int(dur * FPS) + 1
    mouth = frame_envelope(env, n)
    cx, cy, size = w / 2 + rng.uniform(-w / 12, w / 12), h * 0.5, h * 0.3
    for i in range(n):
        img = np.full((h, w, 3), (200, 200, 200), np.uint8)
        draw_face(img, cx, cy, size, label, float(mouth[i]))
        writer.write(img)
    writer.release()


# --------------------------------------------------------------------------- the embedded default

def ensure_iemocap(root: str | Path, spec: IemocapSpec = IemocapSpec()) -> Path:
    """Generate a synthetic IEMOCAP-layout corpus at ``root`` unless a complete one is already there.

    The marker file is written last, so an interrupted generation is redone; a
    corpus generated earlier (with any spec) is used as it is.
    """
    root = Path(root)
    marker = root / ".emotf-synth.json"
    want = dataclasses.asdict(spec)
    if marker.is_file():
        return root
    generate_iemocap(root, spec)
    marker.write_text(json.dumps(want))
    return root
