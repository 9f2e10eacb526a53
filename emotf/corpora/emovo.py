"""EMOVO (Italian): 6 actors (f1-f3, m1-m3) × 7 emotions × 14 sentences, files named <emo>-<spk>-<sentence>."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import AUDIO_EXTENSIONS, Problem, Utterance, coded_files

CODES = {
    "neu": "neutral", "gio": "happy", "tri": "sad", "rab": "angry", "pau": "fearful", "dis": "disgust",
    "sor": "surprised",
}
LABELS = tuple(CODES.values())

_EMOVO_NAME = re.compile(r"^(?P<emo>[a-z]{3})-(?P<spk>[fm]\d)-(?P<sent>[a-z]\d)$")


def read_emovo(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read EMOVO: ``<f1..m3>/<emo>-<spk>-<sentence>.{wav,flac}`` (gioia = happy, paura = fearful,
    rabbia = angry, sorpresa = surprised, tristezza = sad); the speaker's letter is the gender."""
    root = Path(root)
    found, problems = coded_files(root, AUDIO_EXTENSIONS, _EMOVO_NAME, CODES, naming="EMOVO emo-spk-sentence")
    if not found and not problems:
        raise FileNotFoundError(f"{root}: no EMOVO audio files found")
    utts = [Utterance(utt_id=f"emovo_{path.stem}", corpus="emovo", speaker=m["spk"], gender=m["spk"][0].upper(),
                      session=m["spk"], label=CODES[m["emo"]], raw_label=m["emo"], audio_path=str(path))
            for path, m in found]
    return utts, problems
