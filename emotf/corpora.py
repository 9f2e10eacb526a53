"""Corpus readers: a corpus folder becomes a list of uniform `Utterance` records.

Every reader returns `(utterances, problems)`. A problem is an item that could
not even be listed (missing label file, unknown label code, ...); it is reported
with its path and reason, never silently dropped.

Label names are canonical across corpora (``neutral``, ``happy``, ``sad``,
``angry``, ...), so that a model trained on one corpus can be evaluated on
another for the classes they share.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".flv", ".mov", ".mkv")

# The paper's 4 classes, in its index order (hap=0, sad=1, ang=2, neu=3), and its 3.
CLASS_SETS = {
    "4": ("happy", "sad", "angry", "neutral"),
    "3": ("sad", "angry", "neutral"),
}

IEMOCAP_CODES = {
    "neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry",
    "fru": "frustrated", "fea": "fearful", "sur": "surprised", "dis": "disgust",
    "oth": "other", "xxx": "no_agreement",
}
RAVDESS_CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
    "06": "fearful", "07": "disgust", "08": "surprised",
}
CREMAD_CODES = {
    "ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad",
}
EMODB_CODES = {
    "W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral",
}
EMODB_MALE_SPEAKERS = {"03", "10", "11", "12", "15"}

# The full label list of each corpus, in a fixed order ("all" classes).
CORPUS_LABELS = {
    "iemocap": tuple(v for k, v in IEMOCAP_CODES.items() if k != "xxx"),
    "ravdess": tuple(RAVDESS_CODES.values()),
    "cremad": tuple(CREMAD_CODES.values()),
    "emodb": tuple(EMODB_CODES.values()),
}


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


# --------------------------------------------------------------------------- IEMOCAP

_IEMOCAP_LINE = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\s+(?P<utt>\S+)\s+(?P<emo>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$"
)
_IEMOCAP_UTT = re.compile(
    r"^Ses(?P<session>\d\d)(?P<mocap>[FM])_(?P<kind>impro|script)[^_]*(?:_[^_]+)*_(?P<gender>[FM])\d+$"
)


def iemocap_speaker_side(mocap_gender: str, speaker_gender: str, rule: str) -> str:
    """Which half of an IEMOCAP dialog frame shows the speaker.

    IEMOCAP's videos show both actors side by side. The reference code always
    took the right half (a bug). The rule here is the one its authors intended:
    the actor who wore the motion-capture markers (the letter after ``SesNN``)
    sits on the left (``mocap-left``); ``mocap-right`` swaps it, and
    ``left``/``right`` force one side. See docs/preprocessing.md.
    """
    if rule in ("left", "right"):
        return rule
    is_mocap = speaker_gender == mocap_gender
    if rule == "mocap-left":
        return "left" if is_mocap else "right"
    return "right" if is_mocap else "left"


def parse_iemocap_labels(path: Path) -> tuple[list[dict], list[Problem]]:
    """Parse one EmoEvaluation file into rows of start, end, utt_id, code, vad."""
    rows, problems = [], []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith("["):
            continue
        m = _IEMOCAP_LINE.match(line.strip())
        if not m:
            problems.append(Problem(f"{path}:{n}", f"malformed label line: {line.strip()[:80]!r}"))
            continue
        try:
            vad = [float(v) for v in m["vad"].split(",")]
        except ValueError:
            vad = []
        rows.append(dict(start=float(m["start"]), end=float(m["end"]), utt=m["utt"], code=m["emo"], vad=vad))
    return rows, problems


def read_iemocap(root: str | Path, *, side_rule: str = "mocap-left") -> tuple[list[Utterance], list[Problem]]:
    """Read IEMOCAP in its release layout (all sessions found under ``root``).

    ``Session*/dialog/EmoEvaluation/<dialog>.txt`` gives the labels,
    ``Session*/sentences/wav/<dialog>/<utt>.wav`` the audio and
    ``Session*/dialog/avi/DivX/<dialog>.avi`` the video.
    """
    root = Path(root)
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{root}: no Session* folders (is this the IEMOCAP root?)")
    utts, problems = [], []
    for sdir in sessions:
        label_dir = sdir / "dialog" / "EmoEvaluation"
        wav_root = sdir / "sentences" / "wav"
        dialogs = sorted({p.name for p in wav_root.iterdir() if p.is_dir()}) if wav_root.is_dir() else []
        dialogs += sorted({p.stem for p in label_dir.glob("Ses*.txt")} - set(dialogs)) if label_dir.is_dir() else []
        for dialog in dialogs:
            label_file = label_dir / f"{dialog}.txt"
            if not label_file.is_file():
                problems.append(Problem(str(label_file), f"missing label file for dialog {dialog}"))
                continue
            rows, bad = parse_iemocap_labels(label_file)
            problems += bad
            avi = sdir / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
            for row in rows:
                m = _IEMOCAP_UTT.match(row["utt"])
                where = f"{label_file}: {row['utt']}"
                if not m:
                    problems.append(Problem(where, f"unrecognised utterance id {row['utt']!r}"))
                    continue
                if row["code"] not in IEMOCAP_CODES:
                    problems.append(Problem(where, f"unknown label code {row['code']!r}"))
                    continue
                gender = m["gender"]
                utts.append(Utterance(
                    utt_id=row["utt"], corpus="iemocap",
                    speaker=f"Ses{m['session']}{gender}", gender=gender, session=f"Session{int(m['session'])}",
                    label=IEMOCAP_CODES[row["code"]], raw_label=row["code"],
                    audio_path=str(wav_root / dialog / f"{row['utt']}.wav"),
                    video_path=str(avi) if avi.is_file() else "", video_start_s=row["start"],
                    speaker_side=iemocap_speaker_side(m["mocap"], gender, side_rule),
                    mode="improvised" if m["kind"] == "impro" else "scripted",
                ))
    return utts, problems


# --------------------------------------------------------------------------- RAVDESS

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
    problems = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS or not path.is_file():
            continue
        m = _RAVDESS_NAME.match(path.stem)
        if not m:
            problems.append(Problem(str(path), "name does not follow the RAVDESS MM-VV-EE-II-SS-RR-AA pattern"))
            continue
        if m["emo"] not in RAVDESS_CODES:
            problems.append(Problem(str(path), f"unknown emotion code {m['emo']!r}"))
            continue
        take = path.stem[3:]
        takes.setdefault(take, {})[m["mod"]] = path
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
            label=RAVDESS_CODES[emo], raw_label=emo, audio_path=str(audio),
            video_path=str(video) if video else "", mode="song" if voc == "02" else "speech",
        ))
    return utts, problems


# --------------------------------------------------------------------------- CREMA-D

_CREMAD_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sent>[A-Z]{3})_(?P<emo>[A-Z]{3})_(?P<lvl>[A-Z]{2})$")


def _cremad_genders(root: Path) -> dict[str, str]:
    demo = next(iter(root.rglob("VideoDemographics.csv")), None)
    if demo is None:
        return {}
    with open(demo, newline="") as f:
        return {row["ActorID"]: {"Male": "M", "Female": "F"}.get(row.get("Sex", ""), "") for row in csv.DictReader(f)}


def read_cremad(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read CREMA-D: ``AudioWAV/*.wav``, ``AudioMP3/*.mp3`` and ``VideoFlash/*.flv`` (or one flat folder).

    Files of one clip are grouped by name: audio from the wav, else the mp3,
    else the flv's soundtrack; video from the flv.
    """
    root = Path(root)
    clips: dict[str, dict[str, Path]] = {}
    problems = []
    for path in sorted(root.rglob("*")):
        ext = path.suffix.lower()
        if ext not in (".wav", ".mp3", ".flv") or not path.is_file():
            continue
        m = _CREMAD_NAME.match(path.stem)
        if not m:
            problems.append(Problem(str(path), "name does not follow the CREMA-D Actor_Sentence_Emotion_Level pattern"))
            continue
        if m["emo"] not in CREMAD_CODES:
            problems.append(Problem(str(path), f"unknown emotion code {m['emo']!r}"))
            continue
        clips.setdefault(path.stem, {})[ext] = path
    if not clips and not problems:
        raise FileNotFoundError(f"{root}: no CREMA-D files found")
    genders = _cremad_genders(root)
    utts = []
    for stem, files in sorted(clips.items()):
        m = _CREMAD_NAME.match(stem)
        audio = files.get(".wav") or files.get(".mp3") or files.get(".flv")
        utts.append(Utterance(
            utt_id=f"cremad_{stem}", corpus="cremad", speaker=m["actor"], gender=genders.get(m["actor"], ""),
            session=m["actor"], label=CREMAD_CODES[m["emo"]], raw_label=m["emo"], audio_path=str(audio),
            video_path=str(files.get(".flv", "")),
        ))
    return utts, problems


# --------------------------------------------------------------------------- EmoDB

_EMODB_NAME = re.compile(r"^(?P<spk>\d\d)(?P<text>[ab]\d\d)(?P<emo>[A-Z])(?P<ver>[a-z])$")


def read_emodb(root: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """Read Berlin EmoDB: ``wav/SSTTTEV.{wav,flac}`` (speaker, text, emotion letter, version)."""
    root = Path(root)
    utts, problems = [], []
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no EmoDB audio files found")
    for path in files:
        m = _EMODB_NAME.match(path.stem)
        if not m:
            problems.append(Problem(str(path), "name does not follow the EmoDB SSTTTEV pattern"))
            continue
        if m["emo"] not in EMODB_CODES:
            problems.append(Problem(str(path), f"unknown emotion letter {m['emo']!r}"))
            continue
        spk = m["spk"]
        utts.append(Utterance(
            utt_id=f"emodb_{path.stem}", corpus="emodb", speaker=f"spk{spk}",
            gender="M" if spk in EMODB_MALE_SPEAKERS else "F", session=f"spk{spk}",
            label=EMODB_CODES[m["emo"]], raw_label=m["emo"], audio_path=str(path),
        ))
    return utts, problems


# --------------------------------------------------------------------------- CSV manifest

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


READERS = {
    "iemocap": read_iemocap,
    "ravdess": read_ravdess,
    "cremad": read_cremad,
    "emodb": read_emodb,
    "csv": read_csv_manifest,
}


def read_corpus(corpus: str, root: str | os.PathLike, **kwargs) -> tuple[list[Utterance], list[Problem]]:
    """Dispatch to the reader of ``corpus`` (one of `READERS`)."""
    if corpus not in READERS:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(READERS)}")
    if not Path(root).exists():
        raise FileNotFoundError(f"{root}: corpus folder not found")
    reader = READERS[corpus]
    if corpus == "iemocap":
        return reader(root, **kwargs)
    return reader(root)
