"""RAVDESS: audio-only and audio-visual takes of 24 actors, named MM-VV-EE-II-SS-RR-AA."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, Problem, Utterance, coded_files

CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
    "06": "fearful", "07": "disgust", "08": "surprised",
}
LABELS = tuple(CODES.values())

_RAVDESS_NAME = re.compile(
    r"^(?P<mod>\d\d)-(?P<voc>\d\d)-(?P<emo>\d\d)-(?P<int>\d\d)-(?P<stmt>\d\d)-(?P<rep>\d\d)-(?P<actor>\d\d)$"
)


def read_ravdess(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read RAVDESS: audio-only ``03-*`` files, and ``01-*``/``02-*`` videos of the same takes.

    One take (vocal channel, emotion, intensity, statement, repetition, actor)
    exists in up to three modality versions; they are grouped so that each take
    is one utterance (never two records of one take, which would leak across
    splits). Audio comes from the ``03`` file, else from the ``01`` video's
    soundtrack; video from ``01`` (else ``02``).
    """
    root = Path(root)
    takes: dict[str, dict[str, Path]] = {}
    found, problems = coded_files(root, AUDIO_EXTENSIONS + VIDEO_EXTENSIONS, _RAVDESS_NAME, CODES,
                                  naming="RAVDESS MM-VV-EE-II-SS-RR-AA")
    for path, m in found:
        takes.setdefault(path.stem[3:], {})[m["mod"]] = path
    if not takes and not problems:
        raise FileNotFoundError(f"{root}: no RAVDESS files found")
    utts = []
    for take, files in sorted(takes.items()):
        voc, emo, inten, stmt, rep, actor = take.split("-")
        audio = files.get("03") or files.get("01")
        if audio is None:
            problems.append(Problem(str(files["02"]), "video-only take with no audio file (03-*) beside it"))
            continue
        video = files.get("01") or files.get("02")
        utts.append(Utterance(
            utt_id=f"ravdess_{take}", corpus="ravdess", speaker=f"Actor_{actor}",
            gender="M" if int(actor) % 2 else "F", session=f"Actor_{actor}",
            label=CODES[emo], raw_label=emo, audio_path=str(audio),
            video_path=str(video) if video else "", mode="song" if voc == "02" else "speech",
        ))
    return utts, problems
