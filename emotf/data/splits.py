"""Speaker-independent train / validation / test splits.

Records are sharded by speaker, so a split is a choice of speakers (units),
and therefore of files; no record is ever sampled across the boundary. The
test fold never feeds early stopping, checkpoint choice or tuning: those read
the validation speakers, taken from the training side.

Schemes:

* ``loso`` — leave one session out (IEMOCAP): the test fold is one session;
  validation is one speaker of the next session (``val="speaker"``, the other
  speaker of that session still trains) or that whole session (``val="session"``).
* ``speaker-folds`` (alias ``actor-folds``) — the speakers, ordered by gender
  then id, are dealt round-robin into ``folds`` folds (gender-balanced where
  genders are known); fold ``k`` is the test fold, fold ``k+1`` the validation fold.
* ``lospo`` — leave one speaker out: each speaker is a fold, the next speaker validates.
* ``auto`` — ``loso`` when the records carry at least three sessions of
  several speakers each (IEMOCAP), else ``speaker-folds``.

Records of several corpora (`make_corpus_split`) are split within each corpus by
its own scheme, or, with a ``test_corpus``, leave one corpus out: that corpus
is the test set, whole; each other corpus of at least three speakers gives one
speaker fold to validation, and the rest trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from emotf.catalog import SPLIT_SCHEMES as SCHEMES


@dataclasses.dataclass(frozen=True)
class Split:
    """One fold: which speakers train, validate and test."""

    scheme: str
    fold: int
    num_folds: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (f"{self.scheme} --fold {self.fold} (of 0-{self.num_folds - 1}): train {len(self.train)} speakers, "
                f"validation {', '.join(self.val)}; test {', '.join(self.test)}")


def num_folds(speakers: Mapping[str, Mapping[str, str]], scheme: str, folds: int = 6) -> int:
    """How many folds a scheme gives on these speakers."""
    scheme = resolve_scheme(speakers, scheme)
    if scheme == "loso":
        return len(_sessions(speakers))
    if scheme == "lospo":
        return len(speakers)
    return min(folds, len(speakers))


def resolve_scheme(speakers: Mapping[str, Mapping[str, str]], scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"split must be one of {list(SCHEMES)}. Received: {scheme!r}")
    if scheme == "actor-folds":
        return "speaker-folds"
    if scheme == "auto":
        sessions = _sessions(speakers)
        # Sessions that hold one speaker each (RAVDESS actors, EmoDB speakers) are no grouping at all.
        return "loso" if 3 <= len(sessions) < len(speakers) else "speaker-folds"
    return scheme


def make_split(speakers: Mapping[str, Mapping[str, str]], scheme: str = "auto", fold: int = 0, *, folds: int = 6,
               val: str = "speaker") -> Split:
    """One speaker-independent fold.

    Args:
        speakers: {speaker: {"session": ..., "gender": ...}} for every speaker
            of the records (empty strings where unknown).
        scheme: see the module docstring.
        fold: which fold is the test fold, 0-based.
        folds: number of folds of ``speaker-folds``.
        val: ``loso`` only: "speaker" or "session".

    Returns:
        A ``Split`` whose train, val and test speakers are disjoint and non-empty.

    Raises:
        ValueError: an impossible request (too few speakers or sessions, fold out of range).
    """
    scheme = resolve_scheme(speakers, scheme)
    n = num_folds(speakers, scheme, folds)
    if n < 3 and not (scheme == "loso" and val == "speaker" and n == 2):
        raise ValueError(f"{scheme} needs at least 3 folds (train, validation, test); these records give {n}")
    if not 0 <= fold < n:
        raise ValueError(f"fold must lie in [0, {n}) for {scheme} on these records. Received: {fold}")
    if scheme == "loso":
        sessions = _sessions(speakers)
        names = sorted(sessions)
        test = sessions[names[fold]]
        held = sessions[names[(fold + 1) % n]]
        if val == "session":
            validation = held
        elif val == "speaker":
            validation = [held[fold % len(held)]] if len(held) > 1 else held
        else:
            raise ValueError(f"val must be 'speaker' or 'session'. Received: {val!r}")
    else:
        order = sorted(speakers, key=lambda s: (speakers[s].get("gender", ""), s))
        groups = [order[i::n] for i in range(n)] if scheme == "speaker-folds" else [[s] for s in sorted(speakers)]
        test, validation = groups[fold], groups[(fold + 1) % n]
    train = [s for s in speakers if s not in test and s not in validation]
    if not train:
        raise ValueError(f"{scheme} fold {fold} leaves no training speakers")
    return Split(scheme, fold, n, tuple(sorted(train)), tuple(sorted(validation)), tuple(sorted(test)))


def _sessions(speakers: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in sorted(speakers):
        session = speakers[s].get("session", "")
        if session:
            out.setdefault(session, []).append(s)
    return out


def make_corpus_split(speakers: Mapping[str, Mapping[str, str]], scheme: str = "auto", fold: int = 0, *,
                      folds: int = 6, val: str = "speaker", test_corpus: str = "") -> Split:
    """One speaker-independent fold of several corpora (``speakers[s]["corpus"]`` names each speaker's).

    Args:
        test_corpus: leave this corpus out: it is the test set, whole, and no speaker of it trains or
            validates. Validation: of each other corpus with at least three speakers, the test group of its
            own ``speaker-folds`` fold ``fold`` (about 1/``folds`` of its speakers). Empty: every corpus is
            split by ``scheme`` at ``fold`` (corpora of fewer than three speakers only train).

    Raises:
        ValueError: an unknown test corpus, or no speaker left to validate or test on.
    """
    by_corpus: dict[str, dict[str, Mapping[str, str]]] = {}
    for s, meta in speakers.items():
        by_corpus.setdefault(meta.get("corpus", ""), {})[s] = meta
    if test_corpus and test_corpus not in by_corpus:
        raise ValueError(f"test corpus {test_corpus!r} is not among the records' corpora {sorted(by_corpus)}")
    train, validation, test = [], [], []
    for corpus, spk in sorted(by_corpus.items()):
        if corpus == test_corpus:
            test += spk
        elif len(spk) < 3:
            train += spk  # too few speakers to hold any out
        elif test_corpus:
            part = make_split(spk, "speaker-folds", fold % num_folds(spk, "speaker-folds", folds), folds=folds)
            validation += part.test
            train += part.train + part.val
        else:
            part = make_split(spk, scheme, fold % num_folds(spk, scheme, folds), folds=folds, val=val)
            train, validation, test = train + list(part.train), validation + list(part.val), test + list(part.test)
    if not validation or not test:
        raise ValueError(f"no speaker left to {'validate' if not validation else 'test'} on: the corpora "
                         f"{ {c: len(s) for c, s in by_corpus.items()} } (speakers each)")
    name = f"leave-one-corpus-out ({test_corpus})" if test_corpus else f"{scheme} per corpus"
    return Split(name, fold, folds, tuple(sorted(train)), tuple(sorted(validation)), tuple(sorted(test)))
