"""A user's own corpus, listed in a CSV manifest: path,label,speaker[,video,start,end,gender,session]."""

from __future__ import annotations

import csv
from pathlib import Path

from emotf.corpora.base import Problem, Utterance

CSV_REQUIRED = ("path", "label", "speaker")


def read_csv_manifest(csv_path: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read a user manifest: ``path,label,speaker[,video,start,end,gender,session]``.

    Relative paths are resolved against the manifest's folder. Labels are kept
    as written (lower-cased); use the canonical names (``happy``, ``sad``,
    ``angry``, ``neutral``, ...) to make the 4- and 3-class sets work.
    """
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "manifest.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: manifest CSV not found")
    base = csv_path.parent
    utts, problems = [], []
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
            audio = base / row["path"]
            video = base / row["video"] if row.get("video") else None
            utts.append(Utterance(
                utt_id=f"csv_{Path(row['path']).stem}_{n}", corpus="csv", speaker=row["speaker"],
                gender=row.get("gender", "") or "", session=row.get("session", "") or row["speaker"],
                label=row["label"].strip().lower(), raw_label=row["label"], audio_path=str(audio),
                start_s=start, end_s=end, video_path=str(video) if video else "", video_start_s=start,
            ))
    return utts, problems
