"""What every corpus reader returns: `Utterance` records and the `Problem`s of items it could not list."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
# Every corpus's labels are given these names, so that a model of one corpus scores another.
CANONICAL_LABELS = ("neutral", "calm", "happy", "excited", "sad", "angry", "frustrated", "fearful", "disgust",
                    "surprised", "boredom", "other")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".flv", ".mov", ".mkv")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled utterance of a corpus, whatever its layout.

    Times are in seconds. ``start_s``/``end_s`` are the span of the audio file
    to use (``end_s`` of None: to the end of the file); ``video_start_s`` is
    where that span starts in the video file. For IEMOCAP the sentence wav holds
    the utterance alone (span 0..end) and ``video_start_s`` is its start time in
    the dialog, from the label file.
    """

    utt_id: str
    corpus: str
    speaker: str
    label: str  # canonical label name, before any class-set mapping
    audio_path: str
    gender: str = ""  # "F", "M" or ""
    session: str = ""
    raw_label: str = ""  # the corpus's own code
    start_s: float = 0.0
    end_s: float | None = None
    video_path: str = ""
    video_start_s: float = 0.0  # where the utterance starts in the video file
    speaker_side: str = ""  # "left", "right" or "" (whole frame)
    mode: str = ""  # "improvised", "scripted" or ""

    @property
    def unit(self) -> str:
        """The shard unit: one speaker, so speaker-independent splits pick whole files."""
        return self.speaker


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def coded_files(root: str | Path, extensions: tuple[str, ...], pattern: re.Pattern, codes: Mapping[str, str], *,
                naming: str, what: str = "emotion code",
                fold_case: bool = False) -> tuple[list[tuple[Path, re.Match]], list[Problem]]:
    """The files under ``root`` (any depth, sorted) whose name encodes speaker and emotion.

    Args:
        extensions: the file endings to look at (lower case, with the dot); other files are ignored.
        pattern: matches a file's stem; its ``emo`` group is the emotion code.
        codes: the corpus's emotion codes.
        naming: the naming scheme, for the problem of a file that does not follow it.
        what: what the code is called in that corpus's documentation ("emotion code", "emotion letter").
        fold_case: compare the code in lower case (``codes`` keys are lower case).

    Returns:
        ((path, match) of every file that follows the scheme with a known code, problems of the others).
    """
    found, problems = [], []
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() not in extensions or not path.is_file():
            continue
        m = pattern.match(path.stem)
        if not m:
            problems.append(Problem(str(path), f"name does not follow the {naming} pattern"))
        elif (m["emo"].lower() if fold_case else m["emo"]) not in codes:
            problems.append(Problem(str(path), f"unknown {what} {m['emo']!r}"))
        else:
            found.append((path, m))
    return found, problems
