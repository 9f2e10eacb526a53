"""Berlin EmoDB: 10 speakers, files named SSTTTEV (speaker, text, emotion letter, version)."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import AUDIO_EXTENSIONS, Problem, Utterance, coded_files

CODES = {
    "W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral",
}
MALE_SPEAKERS = {"03", "10", "11", "12", "15"}
LABELS = tuple(CODES.values())

_EMODB_NAME = re.compile(r"^(?P<spk>\d\d)(?P<text>[ab]\d\d)(?P<emo>[A-Z])(?P<ver>[a-z])$")


def read_emodb(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read Berlin EmoDB: ``wav/SSTTTEV.{wav,flac}`` (speaker, text, emotion letter, version)."""
    root = Path(root)
    found, problems = coded_files(root, AUDIO_EXTENSIONS, _EMODB_NAME, CODES, naming="EmoDB SSTTTEV",
                                  what="emotion letter")
    if not found and not problems:
        raise FileNotFoundError(f"{root}: no EmoDB audio files found")
    utts = []
    for path, m in found:
        spk = m["spk"]
        utts.append(Utterance(
            utt_id=f"emodb_{path.stem}", corpus="emodb", speaker=f"spk{spk}",
            gender="M" if spk in MALE_SPEAKERS else "F", session=f"spk{spk}",
            label=CODES[m["emo"]], raw_label=m["emo"], audio_path=str(path),
        ))
    return utts, problems
