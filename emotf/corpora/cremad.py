"""CREMA-D: 91 actors, wav / mp3 audio and flv video, named Actor_Sentence_Emotion_Level."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from emotf.corpora.base import Problem, Utterance, coded_files

CODES = {
    "ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad",
}
LABELS = tuple(CODES.values())

_CREMAD_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sent>[A-Z]{3})_(?P<emo>[A-Z]{3})_(?P<lvl>[A-Z]{2})$")


def _cremad_genders(root: Path) -> dict[str, str]:
    demo = next(iter(root.rglob("VideoDemographics.csv")), None)
    if demo is None:
        return {}
    with open(demo, newline="") as f:
        return {row["ActorID"]: {"Male": "M", "Female": "F"}.get(row.get("Sex", ""), "") for row in csv.DictReader(f)}


def read_cremad(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read CREMA-D: ``AudioWAV/*.wav``, ``AudioMP3/*.mp3`` and ``VideoFlash/*.flv`` (or one flat folder).

    Files of one clip are grouped by name: audio from the wav, else the mp3,
    else the flv's soundtrack; video from the flv.
    """
    root = Path(root)
    clips: dict[str, dict[str, Path]] = {}
    found, problems = coded_files(root, (".wav", ".mp3", ".flv"), _CREMAD_NAME, CODES,
                                  naming="CREMA-D Actor_Sentence_Emotion_Level")
    for path, _ in found:
        clips.setdefault(path.stem, {})[path.suffix.lower()] = path
    if not clips and not problems:
        raise FileNotFoundError(f"{root}: no CREMA-D files found")
    genders = _cremad_genders(root)
    utts = []
    for stem, files in sorted(clips.items()):
        m = _CREMAD_NAME.match(stem)
        audio = files.get(".wav") or files.get(".mp3") or files.get(".flv")
        utts.append(Utterance(
            utt_id=f"cremad_{stem}", corpus="cremad", speaker=m["actor"], gender=genders.get(m["actor"], ""),
            session=m["actor"], label=CODES[m["emo"]], raw_label=m["emo"], audio_path=str(audio),
            video_path=str(files.get(".flv", "")),
        ))
    return utts, problems
