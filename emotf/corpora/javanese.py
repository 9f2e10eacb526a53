"""The Javanese acted audio-visual corpus: 10 speakers × 4 sentences × 6 emotions, frontal face video with its
speech (``dataset-resize/AA-SS-EE_RR.mp4``: actor, sentence, emotion, repetition)."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import Problem, Utterance, coded_files

CODES = {"01": "neutral", "02": "sad", "03": "happy", "04": "surprised", "05": "fearful", "06": "angry"}
LABELS = tuple(CODES.values())
# The release names no genders; on the frames actors 01-05 look female and 06-10 male (SOURCE.txt).
FEMALE_ACTORS = {"01", "02", "03", "04", "05"}

_NAME = re.compile(r"^(?P<actor>\d\d)-(?P<sent>\d\d)-(?P<emo>\d\d)_(?P<rep>\d\d)$")


def read_javanese(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read the Javanese corpus: every ``AA-SS-EE_RR.mp4`` under ``root``; its soundtrack is the audio
    (MP3 inside MP4, read by FFmpeg) and the file itself the face video."""
    root = Path(root)
    found, problems = coded_files(root, (".mp4",), _NAME, CODES, naming="Javanese AA-SS-EE_RR")
    if not found and not problems:
        raise FileNotFoundError(f"{root}: no Javanese AV clips (AA-SS-EE_RR.mp4) found")
    utts = [Utterance(utt_id=f"javanese_{path.stem}", corpus="javanese", speaker=f"spk{m['actor']}",
                      gender="F" if m["actor"] in FEMALE_ACTORS else "M", session=f"spk{m['actor']}",
                      label=CODES[m["emo"]], raw_label=m["emo"], audio_path=str(path), video_path=str(path))
            for path, m in found]
    return utts, problems
