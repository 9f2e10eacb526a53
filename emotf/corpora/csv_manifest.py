"""A user's own corpus, listed in a CSV manifest: path,label,speaker[,video,start,end,gender,session]."""

from __future__ import annotations

import collections
import csv
import difflib
from collections.abc import Iterable
from pathlib import Path

from emotf.corpora.base import CANONICAL_LABELS, Problem, Utterance

CSV_REQUIRED = ("path", "label", "speaker")


def read_csv_manifest(csv_path: str | Path, label_map: Iterable[tuple[str, str]] = ()
                      ) -> tuple[list[Utterance], list[Problem]]:
    """Read a user manifest: ``path,label,speaker[,video,start,end,gender,session]``.

    Relative paths are resolved against the manifest's folder. Labels (compared in
    lower case) must be emotf's canonical names (`CANONICAL_LABELS`: ``happy``, ``sad``,
    ``angry``, ``neutral``, ...), or names that ``label_map`` maps onto them, so that the
    class sets, and models of other corpora, mean the same thing.

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: a missing column, or labels that are neither canonical nor mapped (the
            message lists each with its rows and the closest canonical name).
    """
    mapping = {k.strip().lower(): v.strip().lower() for k, v in label_map}
    bad_targets = sorted({v for v in mapping.values() if v not in CANONICAL_LABELS})
    if bad_targets:
        raise ValueError(f"label map: {bad_targets} are not emotf labels; map onto {', '.join(CANONICAL_LABELS)}")
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "manifest.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: manifest CSV not found")
    base = csv_path.parent
    utts, problems = [], []
    unknown: dict[str, list[int]] = collections.defaultdict(list)
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}; "
                             f"expected header path,label,speaker[,video,start,end]")
        for n, row in enumerate(reader, 2):
            where = f"{csv_path}:{n}"
            if not (row.get("path") and row.get("label") and row.get("speaker")):
                problems.append(Problem(where, "empty path, label or speaker"))
                continue
            try:
                start = float(row.get("start") or 0.0)
                end = float(row["end"]) if row.get("end") else None
            except ValueError:
                problems.append(Problem(where, f"start/end are not numbers: {row.get('start')!r}, {row.get('end')!r}"))
                continue
            if end is not None and end <= start:
                problems.append(Problem(where, f"end {end} is not after start {start}"))
                continue
            label = row["label"].strip().lower()
            label = mapping.get(label, label)
            if label not in CANONICAL_LABELS:
                unknown[row["label"].strip()].append(n)
                continue
            audio = base / row["path"]
            video = base / row["video"] if row.get("video") else None
            utts.append(Utterance(
                utt_id=f"csv_{Path(row['path']).stem}_{n}", corpus="csv", speaker=row["speaker"],
                gender=row.get("gender", "") or "", session=row.get("session", "") or row["speaker"],
                label=label, raw_label=row["label"], audio_path=str(audio),
                start_s=start, end_s=end, video_path=str(video) if video else "", video_start_s=start,
            ))
    if unknown:
        raise ValueError(f"{csv_path}: unknown label(s) " + "; ".join(
            f"{name!r} (row{'s' if len(rows) > 1 else ''} {_rows(rows)}{_closest(name)})"
            for name, rows in sorted(unknown.items())) + f". emotf's labels: {', '.join(CANONICAL_LABELS)}; "
            f"map your own names with --label-map (e.g. --label-map mad=angry,glad=happy)")
    return utts, problems


def _rows(rows: list[int], show: int = 5) -> str:
    return ", ".join(map(str, rows[:show])) + (f" and {len(rows) - show} more" if len(rows) > show else "")


def _closest(name: str) -> str:
    near = difflib.get_close_matches(name.lower(), CANONICAL_LABELS, n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else ""
