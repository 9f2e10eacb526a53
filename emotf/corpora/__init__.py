"""Corpus readers: a corpus folder becomes a list of uniform `Utterance` records.

One module per corpus layout (``iemocap``, ``ravdess``, ``cremad``, ``emodb``,
``emovo``, ``tess``, ``javanese``, ``csv_manifest``; ``synthetic`` generates
corpora in two of these layouts).
Every reader returns ``(utterances, problems)``. A problem is an item that
could not even be listed (missing label file, unknown label code, ...); it is
reported with its path and reason, never silently dropped.

Label names are canonical across corpora (``neutral``, ``happy``, ``sad``,
``angry``, ...), so that a model trained on one corpus can be evaluated on
another for the classes they share.
"""

from __future__ import annotations

import os
from pathlib import Path

from emotf.catalog import CLASS_SETS
from emotf.corpora import cremad, emodb, emovo, iemocap, javanese, ravdess, tess
from emotf.corpora.base import AUDIO_EXTENSIONS, CANONICAL_LABELS, VIDEO_EXTENSIONS, Problem, Utterance
from emotf.corpora.cremad import read_cremad
from emotf.corpora.csv_manifest import read_csv_manifest
from emotf.corpora.emodb import read_emodb
from emotf.corpora.emovo import read_emovo
from emotf.corpora.iemocap import iemocap_speaker_side, parse_iemocap_labels, read_iemocap
from emotf.corpora.javanese import read_javanese
from emotf.corpora.ravdess import read_ravdess
from emotf.corpora.tess import read_tess

READERS = {
    "iemocap": read_iemocap,
    "ravdess": read_ravdess,
    "cremad": read_cremad,
    "emodb": read_emodb,
    "emovo": read_emovo,
    "tess": read_tess,
    "javanese": read_javanese,
    "csv": read_csv_manifest,
}

# The full label list of each corpus, in a fixed order ("all" classes); a CSV corpus has the labels it holds.
CORPUS_LABELS = {"iemocap": iemocap.LABELS, "ravdess": ravdess.LABELS, "cremad": cremad.LABELS,
                 "emodb": emodb.LABELS, "emovo": emovo.LABELS, "tess": tess.LABELS, "javanese": javanese.LABELS}


def class_names(corpus: str, classes: str, labels_present: tuple[str, ...] = (), *,
                merge_exc: bool = True) -> tuple[str, ...]:
    """The ordered label set of a run: the paper's 4 or 3 classes, or all of the corpus."""
    if classes in CLASS_SETS:
        return CLASS_SETS[classes]
    names = CORPUS_LABELS.get(corpus) or tuple(sorted(set(labels_present)))
    return tuple(n for n in names if not (merge_exc and n == "excited"))


def map_label(label: str, *, merge_exc: bool) -> str:
    """Canonical label → the name used in the class set (IEMOCAP's exc merges into happy)."""
    if merge_exc and label == "excited":
        return "happy"
    return label


def read_corpus(corpus: str, root: str | os.PathLike, **kwargs) -> tuple[list[Utterance], list[Problem]]:
    """Dispatch to the reader of ``corpus`` (one of `READERS`)."""
    if corpus not in READERS:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(READERS)}")
    if not Path(root).exists():
        raise FileNotFoundError(f"{root}: corpus folder not found")
    reader = READERS[corpus]
    if corpus in ("iemocap", "csv"):
        return reader(root, **kwargs)
    return reader(root)


def guess_corpus(root: str | os.PathLike, exclude: tuple[str, ...] = ()) -> tuple[str, int] | None:
    """The corpus reader that lists the most utterances in a folder: (name, count), or None (no reader lists
    any; a CSV manifest is never guessed)."""
    if not Path(root).is_dir():
        return None
    best = None
    for name in READERS:
        if name == "csv" or name in exclude:
            continue
        try:
            n = len(read_corpus(name, root)[0])
        except Exception:  # a reader that cannot read the folder at all is simply not the answer
            continue
        if n and (best is None or n > best[1]):
            best = (name, n)
    return best


__all__ = ["AUDIO_EXTENSIONS", "CANONICAL_LABELS", "CORPUS_LABELS", "READERS", "VIDEO_EXTENSIONS", "Problem",
           "Utterance", "class_names", "guess_corpus", "iemocap_speaker_side", "map_label", "parse_iemocap_labels",
           "read_corpus", "read_cremad", "read_csv_manifest", "read_emodb", "read_emovo", "read_iemocap",
           "read_javanese", "read_ravdess", "read_tess"]
