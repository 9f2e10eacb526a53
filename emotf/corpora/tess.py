"""TESS (Toronto): two actresses (OAF, YAF) saying "Say the word ___" in 7 emotions."""

from __future__ import annotations

import re
from pathlib import Path

from emotf.corpora.base import AUDIO_EXTENSIONS, Problem, Utterance, coded_files

CODES = {
    "neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fear": "fearful",
    "disgust": "disgust", "ps": "surprised",
}
LABELS = tuple(CODES.values())

_TESS_NAME = re.compile(r"^(?P<spk>[A-Za-z]+)_(?P<word>[A-Za-z]+)_(?P<emo>[A-Za-z]+)$")
_FOLDER = re.compile(r"^(?P<spk>[A-Za-z]+)_(?P<emo>.+)$")
_FOLDER_EMOTIONS = {"pleasant_surprise": "ps", "pleasant_surprised": "ps"}


def read_tess(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read TESS: ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.{wav,flac}``.

    The speaker comes from the folder (one file of the release is named ``OA_bite_neutral``
    inside ``OAF_neutral``), the emotion from the file name (``ps``: pleasant surprise, read as
    surprised), and a file whose emotion differs from its folder's is reported, not read.
    """
    root = Path(root)
    found, problems = coded_files(root, AUDIO_EXTENSIONS, _TESS_NAME, CODES, naming="TESS SPK_word_emotion",
                                  fold_case=True)
    if not found and not problems:
        raise FileNotFoundError(f"{root}: no TESS audio files found")
    utts = []
    for path, m in found:
        folder = _FOLDER.match(path.parent.name)
        emo = m["emo"].lower()
        folder_emo = folder["emo"].lower() if folder else ""
        if not folder or _FOLDER_EMOTIONS.get(folder_emo, folder_emo) != emo:
            problems.append(Problem(str(path), f"emotion {emo!r} of the name differs from the folder's "
                                               f"({path.parent.name}); expected <SPK>_<emotion>/"))
            continue
        spk = folder["spk"].upper()
        utts.append(Utterance(utt_id=f"tess_{spk}_{m['word'].lower()}_{emo}", corpus="tess", speaker=spk,
                              gender="F", session=spk, label=CODES[emo], raw_label=m["emo"], audio_path=str(path)))
    return utts, problems

