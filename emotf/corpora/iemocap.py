"""IEMOCAP in its release layout: five sessions of dyadic dialogs, sentence wavs, dialog videos."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import Problem, Utterance

CODES = {
    "neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry",
    "fru": "frustrated", "fea": "fearful", "sur": "surprised", "dis": "disgust",
    "oth": "other", "xxx": "no_agreement",
}
# Every label in a fixed order ("all" classes); xxx (no majority) is never a class.
LABELS = tuple(v for k, v in CODES.items() if k != "xxx")

_IEMOCAP_LINE = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\s+(?P<utt>\S+)\s+(?P<emo>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$"
)
_IEMOCAP_UTT = re.compile(
    r"^Ses(?P<session>\d\d)(?P<mocap>[FM])_(?P<kind>impro|script)[^_]*(?:_[^_]+)*_(?P<gender>[FM])\d+$"
)


def iemocap_speaker_side(mocap_gender: str, speaker_gender: str, rule: str) -> str:
    """Which half of an IEMOCAP dialog frame shows the speaker.

    IEMOCAP's videos show both actors side by side. The reference code always
    took the right half (a bug). The rule here is the one its authors intended:
    the actor who wore the motion-capture markers (the letter after ``SesNN``)
    sits on the left (``mocap-left``); ``mocap-right`` swaps it, and
    ``left``/``right`` force one side. See docs/preprocessing.md.
    """
    if rule in ("left", "right"):
        return rule
    is_mocap = speaker_gender == mocap_gender
    if rule == "mocap-left":
        return "left" if is_mocap else "right"
    return "right" if is_mocap else "left"


def parse_iemocap_labels(path: Path) -> tuple[list[dict], list[Problem]]:
    """Parse one EmoEvaluation file into rows of start, end, utt_id, code, vad."""
    rows, problems = [], []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith("["):
            continue
        m = _IEMOCAP_LINE.match(line.strip())
        if not m:
            problems.append(Problem(f"{path}:{n}", f"malformed label line: {line.strip()[:80]!r}"))
            continue
        try:
            vad = [float(v) for v in m["vad"].split(",")]
        except ValueError:
            vad = []
        rows.append(dict(start=float(m["start"]), end=float(m["end"]), utt=m["utt"], code=m["emo"], vad=vad))
    return rows, problems


def read_iemocap(root: str | Path, *, side_rule: str = "mocap-left") -> tuple[list[Utterance], list[Problem]]:
    """Read IEMOCAP in its release layout (all sessions found under ``root``).

    ``Session*/dialog/EmoEvaluation/<dialog>.txt`` gives the labels,
    ``Session*/sentences/wav/<dialog>/<utt>.wav`` the audio and
    ``Session*/dialog/avi/DivX/<dialog>.avi`` the video.
    """
    root = Path(root)
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{root}: no Session* folders (is this the IEMOCAP root?)")
    utts, problems = [], []
    for sdir in sessions:
        label_dir = sdir / "dialog" / "EmoEvaluation"
        wav_root = sdir / "sentences" / "wav"
        dialogs = sorted({p.name for p in wav_root.iterdir() if p.is_dir()}) if wav_root.is_dir() else []
        dialogs += sorted({p.stem for p in label_dir.glob("Ses*.txt")} - set(dialogs)) if label_dir.is_dir() else []
        for dialog in dialogs:
            label_file = label_dir / f"{dialog}.txt"
            if not label_file.is_file():
                problems.append(Problem(str(label_file), f"missing label file for dialog {dialog}"))
                continue
            rows, bad = parse_iemocap_labels(label_file)
            problems += bad
            avi = sdir / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
            for row in rows:
                m = _IEMOCAP_UTT.match(row["utt"])
                where = f"{label_file}: {row['utt']}"
                if not m:
                    problems.append(Problem(where, f"unrecognised utterance id {row['utt']!r}"))
                    continue
                if row["code"] not in CODES:
                    problems.append(Problem(where, f"unknown label code {row['code']!r}"))
                    continue
                gender = m["gender"]
                utts.append(Utterance(
                    utt_id=row["utt"], corpus="iemocap",
                    speaker=f"Ses{m['session']}{gender}", gender=gender, session=f"Session{int(m['session'])}",
                    label=CODES[row["code"]], raw_label=row["code"],
                    audio_path=str(wav_root / dialog / f"{row['utt']}.wav"),
                    video_path=str(avi) if avi.is_file() else "", video_start_s=row["start"],
                    speaker_side=iemocap_speaker_side(m["mocap"], gender, side_rule),
                    mode="improvised" if m["kind"] == "impro" else "scripted",
                ))
    return utts, problems
