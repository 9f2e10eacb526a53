"""The records folder: its layout, written by preprocessing and read by the data pipeline, here only.

    records/<corpus>/<variant>/<unit>-<i:05d>-of-<n:05d>.tfrecord   the shards (one speaker each)
    records/<corpus>/<variant>/.shards/<shard>.json                 each shard's summary, written before it
    records/<corpus>/<variant>/config.json                          fingerprint of what made them (resume check)
    records/<corpus>/<variant>/manifest.json                        everything above, merged, with the digest

A shard's summary holds its record count, the records per label and speaker,
what was skipped and why, and a SHA-256 of its records; the manifest merges the
summaries and adds one digest for the whole folder. `load_records` reads it
back as a `RecordsInfo`, which the pipeline, the splits and the models' input
shapes are all taken from. Only `RecordsInfo.speakers` reads a record (it needs
TensorFlow); the rest is JSON.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import platform
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from emotf import __version__
from emotf.catalog import CLASS_SETS, SYNTHETIC_CORPUS, VARIANTS, reads_wave
from emotf.config import SAMPLE_RATE_HZ, SCHEMA_VERSION, AudioConfig, PreprocessConfig, VideoConfig
from emotf.records import keys, schema

MANIFEST = "manifest.json"
FINGERPRINT = "config.json"
SUMMARIES = ".shards"


def shard_name(unit: str, index: int, count: int) -> str:
    """``<unit>-<index:05d>-of-<count:05d>.tfrecord``: one speaker per file, so a split selects whole files."""
    return f"{unit}-{index:05d}-of-{count:05d}.tfrecord"


def folder_name(variant: str, gain_db: float = 0.0, level_dbfs: float | None = None, *,
                trim_silence: bool | None = None, band_norm: bool = False, sample_rate_hz: int = SAMPLE_RATE_HZ,
                face_crop: str = "paper", faces: bool = False, vad_tilt: float | None = None) -> str:
    """The records folder name of a variant and the options that change its content.

    E.g. "ds2", "ds2-gain-19.5", "ds2-level-35", "ds2-trim-norm" (silence trimmed, bands
    normalised), "wave", "wave-notrim" (``trim_silence`` None: the variant's default), "wave-vadtilt-4" (the
    VAD deciding on a copy with its slope set to -4 dB per octave), "wave-8k"
    (another sample rate than `SAMPLE_RATE_HZ`), "ds2-facefill" (face stacks the face fills), "wave-faces"
    (waveforms with face stacks: ``faces``, which only the waveform variant names, since an image variant of a
    corpus with video holds them by default).
    """
    name = (variant + (f"-{sample_rate_hz / 1000:g}k" if sample_rate_hz != SAMPLE_RATE_HZ else "")
            + (f"-level{level_dbfs:+g}" if level_dbfs is not None else "")
            + (f"-gain{gain_db:+g}" if gain_db else ""))
    if trim_silence is not None and trim_silence != default_trim(variant):
        name += "-trim" if trim_silence else "-notrim"
    name += f"-vadtilt{vad_tilt:+g}" if vad_tilt is not None else ""
    name += "-norm" if band_norm else ""
    name += "-faces" if faces and VARIANTS[variant]["features"] == "wave" else ""
    return name + ("-facefill" if face_crop == "fill" else "")


def default_trim(variant: str) -> bool:
    """Whether a variant trims silence unless told otherwise: the waveform variant does, the paper's do not."""
    return VARIANTS[variant]["features"] == "wave"


class RecordsError(ValueError):
    """Damaged or unfinished records; the message names the file, what is wrong and how to repair it."""


# --------------------------------------------------------------------------- a shard's integrity
# A TFRecord file is a sequence of frames: length (uint64, little-endian), the length's
# masked CRC32C (4 bytes), the record, the record's masked CRC32C (4 bytes). Walking the
# lengths finds a truncated file and counts records without TensorFlow, in a few reads per
# record; the SHA-256 of the records (what the writer keeps in the summary) finds any other
# change.
_HEADER, _FOOTER = 12, 4


def _frames(path: Path) -> Iterator[tuple[int, int]]:
    """(offset of the record's bytes, length) of each record of a shard.

    Raises:
        RecordsError: the file ends inside a record.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos, index = 0, 0
        while pos < size:
            header = f.read(_HEADER)
            length = int.from_bytes(header[:8], "little")
            end = pos + _HEADER + length + _FOOTER
            if len(header) < _HEADER or end > size:
                raise RecordsError(f"{path}: truncated or damaged: record {index + 1}, at byte {pos:,}, does not "
                                   f"fit in the file ({size:,} bytes)")
            yield pos + _HEADER, length
            pos, index = end, index + 1
            f.seek(pos)


def count_records(path: str | Path) -> int:
    """The number of records of a shard, from its framing.

    Raises:
        RecordsError: the file is truncated.
    """
    return sum(1 for _ in _frames(Path(path)))


def shard_digest(path: str | Path) -> str:
    """SHA-256 of a shard's records as `emotf.records.schema.ShardWriter.digest` computes it.

    Raises:
        RecordsError: the file is truncated.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for offset, length in _frames(Path(path)):
            f.seek(offset)
            record = f.read(length)
            h.update(length.to_bytes(8, "little"))
            h.update(record)
    return h.hexdigest()


def shard_problem(path: str | Path, records: int, sha256: str | None = None, *, digest: bool = False) -> str:
    """What is wrong with a shard ("" when nothing): missing, truncated, another record count, or (``digest``)
    records that are not the ones written (``sha256``, the summary's; not checked where it is None)."""
    path = Path(path)
    if not path.is_file():
        return f"{path}: missing"
    try:
        n = count_records(path)
        if n != records:
            return f"{path}: holds {n} records, its summary says {records}"
        if digest and sha256 and shard_digest(path) != sha256:
            return f"{path}: damaged: its records' SHA-256 differs from the one written with it"
    except RecordsError as e:
        return str(e)
    return ""


def repair_hint(root: str | Path) -> str:
    """How to rewrite a folder's damaged shards: the preprocessing command that wrote it (a re-run redoes only
    the shards that are missing or damaged)."""
    root = Path(root)
    try:
        m = json.loads((root / MANIFEST).read_text())
        cfg, corpus = m["config"], m["corpus"]
    except (OSError, ValueError, KeyError):
        return "re-run the preprocessing command that wrote this folder"
    argv = ["python", "-m", "emotf.preprocess"]
    if corpus != SYNTHETIC_CORPUS:
        argv += ["--corpus", cfg["corpus"], "--data", cfg["data"]]
    argv += ["--variant", cfg["variant"], "--out", str(root.parent.parent)]
    return (f"re-run the command that wrote it with the same options ({shlex.join(argv)} ...): it rewrites only "
            f"the damaged shards")


def verify(path: str | Path, *, digest: bool = True) -> list[tuple[Path, str]]:
    """Every problem of the shards of a records folder (or of several joined by commas): (folder, one line).

    Checks that each shard listed in the manifest is there, whole, holds the records its
    summary counts and (``digest``) exactly the records written (SHA-256).

    Raises:
        FileNotFoundError: no manifest.json.
    """
    problems = []
    for one in (p for p in str(path).split(",") if p):
        root = Path(one)
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(f"{mpath}: no manifest.json; write records with `make tfrecords` first")
        for s in json.loads(mpath.read_text())["shards"]:
            problem = shard_problem(root / s["file"], int(s["records"]), s.get("sha256"), digest=digest)
            if problem:
                problems.append((root, problem))
    return problems


def damage_error(path: str | Path, detail: str = "") -> RecordsError:
    """The one-line error for records found damaged while reading them (e.g. TensorFlow's DataLossError
    mid-epoch): the shards' digests are checked to name the file."""
    problems = verify(path)
    if problems:
        root, first = problems[0]
        more = f" (and {len(problems) - 1} more shard(s): python -m emotf.verify {path})" if len(problems) > 1 else ""
        return RecordsError(f"{first}{more}; {repair_hint(root)}")
    what = detail.splitlines()[0] if detail else "unknown"
    first = str(path).split(",")[0]
    return RecordsError(f"{path}: reading the records failed ({what}) but every shard matches its digest; check "
                        f"the disk, then {repair_hint(first)}")


# --------------------------------------------------------------------------- the writing side

def summary_path(root: Path, shard: str) -> Path:
    return Path(root) / SUMMARIES / f"{shard}.json"


def is_complete(root: Path, shard: str) -> bool:
    """The shard and its summary are both there (the summary is written first, the shard renamed last)."""
    return (Path(root) / shard).is_file() and summary_path(root, shard).is_file()


def damaged(root: Path, shard: str) -> str:
    """What is wrong with a complete shard against its summary (""): truncated, another record count, or
    other records than the ones written (SHA-256)."""
    d = json.loads(summary_path(root, shard).read_text())
    return shard_problem(Path(root) / shard, int(d["records"]), d.get("sha256"), digest=True)


def write_summary(root: Path, summary: dict[str, Any]) -> None:
    path = summary_path(root, summary["shard"])
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # whole or absent, whoever reads it
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_fingerprint(root: Path) -> dict[str, Any] | None:
    """What made the records in ``root`` (None where there is none), with the defaults of config fields
    added since it was written, so records made by an older emotf stay resumable."""
    path = Path(root) / FINGERPRINT
    if not path.is_file():
        return None
    fingerprint = json.loads(path.read_text())
    cfg = fingerprint.get("config", {})
    for key, cls in (("audio", AudioConfig), ("video_config", VideoConfig)):
        if isinstance(cfg.get(key), dict):
            cfg[key] = {**dataclasses.asdict(cls()), **cfg[key]}
    if isinstance(cfg, dict) and cfg:
        fingerprint["config"] = {**PreprocessConfig().output_fingerprint(), **cfg}
    return fingerprint


def write_fingerprint(root: Path, fingerprint: dict[str, Any]) -> None:
    (Path(root) / FINGERPRINT).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))


def build_manifest(cfg, root: Path, shards: Sequence[tuple[str, str]], names: Sequence[str], problems,
                   excluded: Mapping[str, int], with_video: bool, corpus_name: str | None) -> dict[str, Any]:
    """Merge the summaries of ``shards`` ((file name, unit) pairs, in order) into the manifest.

    Args:
        cfg: the `PreprocessConfig` of the run.
        problems: the items the corpus reader could not list (``.path``, ``.reason``).
        excluded: utterances per label left out by the class set.
    """
    per_label, per_speaker, converted = collections.Counter(), collections.Counter(), collections.Counter()
    fallbacks_per_speaker, blank_frames = collections.Counter(), 0
    skipped = [{"path": p.path, "reason": p.reason} for p in problems]
    files, total, utterances, fallbacks, clips, band_limited = [], 0, 0, 0, 0, {}
    for name, unit in shards:
        if not is_complete(root, name):
            continue
        d = json.loads(summary_path(root, name).read_text())
        files.append({"file": name, "unit": unit, "records": d["records"], "sha256": d.get("sha256")})
        total += d["records"]
        utterances += d["utterances"]
        per_label.update(d["per_label"])
        per_speaker.update(d["per_speaker"])
        converted.update(d["converted"])
        fallbacks += d["face_fallbacks"]
        if d["face_fallbacks"]:  # a shard holds one speaker (its unit)
            fallbacks_per_speaker[unit] += d["face_fallbacks"]
        blank_frames += d.get("blank_frames", 0)
        clips += d["video_clips"]
        skipped += d["skipped"]
        band_limited.update(d.get("band_limited", {}))
    return {
        "schema_version": SCHEMA_VERSION,
        "corpus": corpus_name or cfg.corpus,
        "variant": cfg.variant,
        "config": cfg.to_dict(),
        "class_names": list(names),
        "features": cfg.features,
        "sample_rate_hz": cfg.audio.sample_rate_hz,
        "with_video": with_video,
        "spec_shape": [cfg.audio.height, cfg.audio.width] if cfg.features == "image" else None,
        "video_shape": ([cfg.video_config.frames, cfg.video_config.height, cfg.video_config.width]
                        if with_video else None),
        "records": total,
        "utterances": utterances,
        "per_label": dict(sorted(per_label.items())),
        "per_speaker": dict(sorted(per_speaker.items())),
        "excluded_labels": dict(sorted(excluded.items())),
        "converted_audio": dict(converted),
        "face_fallbacks": fallbacks,
        # face stacks cut with the fixed fallback box (no face found), per speaker: where detection fails
        "face_fallbacks_per_speaker": dict(sorted(fallbacks_per_speaker.items())),
        "blank_frames": blank_frames,  # frames showing nothing (a black lead-in), replaced by their nearest picture
        "video_clips": clips,
        # utterances recorded below 2 * fmax_hz: {utt_id: their top frequency (Hz)}; features above it are empty
        "band_limited": dict(sorted(band_limited.items())),
        "skipped": skipped,
        "shards": files,
        "complete": len(files) == len(shards),
        "digest": records_digest(files),
        "versions": feature_versions(),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (Path(root) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def records_digest(files: list[dict[str, Any]]) -> str | None:
    """One SHA-256 over the shards' record digests, in shard order: equal digests, equal records.

    None where a shard was written before shards were hashed (its summary has no ``sha256``).
    """
    if not files or any(not f.get("sha256") for f in files):
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['file']}\t{f['sha256']}\n".encode())
    return h.hexdigest()


def feature_versions() -> dict[str, str]:
    """Versions of the libraries the features depend on (a records folder may be compared across machines)."""
    out = {"emotf": __version__, "python": platform.python_version()}
    for dist in ("numpy", "soundfile", "opencv-python-headless", "opencv-python", "webrtcvad-wheels", "soxr"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- the reading side

@dataclasses.dataclass(frozen=True)
class ShardInfo:
    file: Path
    unit: str
    records: int
    per_label: Mapping[str, int]
    corpus: str = ""


@dataclasses.dataclass(frozen=True)
class RecordsInfo:
    """What a records folder holds, from its manifest.json and shard summaries."""

    root: Path
    corpus: str
    variant: str
    class_names: tuple[str, ...]
    with_video: bool
    spec_shape: tuple[int, int] | None  # None: waveform records
    video_shape: tuple[int, int, int] | None
    shards: tuple[ShardInfo, ...]
    preprocess: Mapping
    digest: str | None = None  # SHA-256 of every record (None for records written before it was kept)
    features: str = "image"  # "image" (spectrogram images) or "wave" (waveforms)
    sample_rate: int = SAMPLE_RATE_HZ
    source: str = ""  # the folder, or the folders joined by commas (several corpora: see `load_records`)
    parts: tuple[RecordsInfo, ...] = ()  # several corpora: each folder's own RecordsInfo

    @property
    def corpora(self) -> list[str]:
        return sorted({s.corpus for s in self.shards})

    def corpus_of(self, unit: str) -> str:
        """The corpus of a speaker."""
        return next(s.corpus for s in self.shards if s.unit == unit)

    @property
    def units(self) -> list[str]:
        return sorted({s.unit for s in self.shards})

    @property
    def present_classes(self) -> tuple[str, ...]:
        """The classes with at least one record, in the manifest's order."""
        held = {name for s in self.shards for name, n in s.per_label.items() if n}
        return tuple(c for c in self.class_names if c in held)

    def files(self, units: Iterable[str]) -> list[str]:
        units = set(units)
        return [str(s.file) for s in self.shards if s.unit in units]

    def count(self, units: Iterable[str], class_names: Sequence[str]) -> dict[str, int]:
        """Records per class over the given speakers."""
        units, out = set(units), dict.fromkeys(class_names, 0)
        for s in self.shards:
            if s.unit in units:
                for name in class_names:
                    out[name] += int(s.per_label.get(name, 0))
        return out

    def select_classes(self, classes: str) -> tuple[str, ...]:
        """The classifier's classes: every class present in the records ("all"), or one of the paper's sets."""
        if classes == "all":
            return self.present_classes
        if classes not in CLASS_SETS:
            raise ValueError(f"classes must be all or one of {sorted(CLASS_SETS)}. Received: {classes!r}")
        wanted = CLASS_SETS[classes]
        missing = [c for c in wanted if c not in self.present_classes]
        if missing:
            raise ValueError(f"{self.root}: --classes {classes} needs {list(wanted)} but the records hold no "
                             f"{missing} (they hold {list(self.present_classes)})")
        return wanted

    def input_shapes(self, modality: str, wave_audio: bool = False) -> dict | tuple:
        """The stored arrays a model of ``modality`` reads: (h, w, 1) uint8 spectrogram, (frames, h, w, 3)
        uint8 face stack, or a dict of both; for the waveform modality {"audio": (samples,), "audio_length": ()}.

        Args:
            modality: what the model reads (`emotf.catalog.MODALITIES`).
            wave_audio: ``av`` only: its audio branch reads the waveform (a waveform architecture), so the records
                must be waveforms with face stacks and the dict holds {"audio", "audio_length", "video"}.
        """
        wave = reads_wave(modality, wave_audio)
        if modality != "video" and wave != (self.features == "wave"):
            held = "waveforms (--variant wave)" if self.features == "wave" else "spectrogram images"
            who = f"a {modality} model" if modality != "av" else (
                "an av model with a waveform audio branch" if wave else "an av model with a spectrogram audio branch")
            wanted = ("the waveform: preprocess with --variant wave" + (" --video on" if modality == "av" else "")
                      if wave else "spectrogram images: preprocess with --variant ds1, ds2, ds3 or ds4")
            raise ValueError(f"{self.root}: these records hold {held}, but {who} reads {wanted}")
        if modality == "waveform":
            return {"audio": (None,), "audio_length": ()}
        if modality == "audio":
            return (*self.spec_shape, 1)
        if not self.with_video:
            how = "--variant wave --video on" if self.features == "wave" else "--video on"
            raise ValueError(f"{self.root}: these records hold no video (preprocess a corpus with video, {how}) but "
                             f"the model needs it")
        video = (*self.video_shape, 3)
        if modality == "video":
            return video
        if wave:
            return {"audio": (None,), "audio_length": (), "video": video}
        return {"audio": (*self.spec_shape, 1), "video": video}

    def speakers(self) -> dict[str, dict[str, str]]:
        """{speaker: {"session", "gender"}} from the first record of each speaker's first shard."""
        import tensorflow as tf

        out: dict[str, dict[str, str]] = {}
        for s in self.shards:
            if s.unit in out or s.records == 0:
                continue
            raw = next(iter(tf.data.TFRecordDataset(str(s.file)).take(1)))
            ex = schema.parse_example(raw, spec_shape=self.spec_shape)
            out[s.unit] = {"session": ex[keys.SESSION].numpy().decode(), "gender": ex[keys.GENDER].numpy().decode(),
                           "corpus": s.corpus}
        return out


def load_records(path: str | Path, *, verify: bool = False) -> RecordsInfo:
    """Read a records folder written by ``python -m emotf.preprocess``, or several joined by commas.

    Several folders (one per corpus, e.g. ``records/ravdess/wave,records/emodb/wave``)
    read as one `RecordsInfo` whose speakers are named ``<corpus>/<speaker>``, so
    no two corpora share a speaker; they must hold the same kind of arrays.

    Every shard is checked against the manifest on the way (there, whole, its record
    count: a few reads per record); ``verify`` also checks each shard's SHA-256.

    Raises:
        FileNotFoundError: no manifest.json there.
        RecordsError: the preprocessing run did not finish, or a shard is missing or damaged.
        ValueError: the folders do not go together.
    """
    paths = [p for p in str(path).split(",") if p]
    if len(paths) > 1:
        return _merge([_load_one(p, verify) for p in paths], ",".join(paths))
    return _load_one(path, verify)


def _merge(infos: list[RecordsInfo], source: str) -> RecordsInfo:
    first = infos[0]
    corpora = [i.corpus for i in infos]
    if len(set(corpora)) < len(corpora):
        raise ValueError(f"{source}: each records folder must be another corpus. Received the corpora {corpora}")
    for i in infos[1:]:
        if (i.features, i.spec_shape, i.with_video, i.video_shape, i.sample_rate) != (
                first.features, first.spec_shape, first.with_video, first.video_shape, first.sample_rate):
            raise ValueError(f"{i.root} and {first.root} hold different arrays (features, shapes, video or rate); "
                             f"preprocess them with the same --variant and sizes")
    names = tuple(dict.fromkeys(n for i in infos for n in i.class_names))
    shards = tuple(dataclasses.replace(s, unit=f"{i.corpus}/{s.unit}") for i in infos for s in i.shards)
    digests = [i.digest for i in infos]
    # The features are made alike in every folder (checked above), so the first one's settings are the model's.
    return dataclasses.replace(first, corpus="+".join(corpora), class_names=names, shards=shards, source=source,
                               variant="+".join(dict.fromkeys(i.variant for i in infos)), parts=tuple(infos),
                               digest=None if None in digests else "+".join(digests))


def _load_one(path: str | Path, verify: bool = False) -> RecordsInfo:
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: no manifest.json; write records with `make tfrecords` "
                                f"(python -m emotf.preprocess) first")
    m = json.loads(mpath.read_text())
    if not m.get("complete", False):
        raise RecordsError(f"{mpath}: preprocessing did not finish; {repair_hint(root)}")
    shards = []
    for s in m["shards"]:
        f = root / s["file"]
        # cheap (the framing only): a missing, truncated or cut-short shard is named before TensorFlow reads it
        problem = shard_problem(f, int(s["records"]), s.get("sha256"), digest=verify)
        if problem:
            raise RecordsError(f"{problem}; {repair_hint(root)}")
        side = summary_path(root, s["file"])
        per_label = json.loads(side.read_text())["per_label"] if side.is_file() else {}
        shards.append(ShardInfo(f, s["unit"], int(s["records"]), per_label, m.get("corpus", "")))
    return RecordsInfo(root=root, corpus=m.get("corpus", ""), variant=m.get("variant", ""),
                       class_names=tuple(m["class_names"]), with_video=bool(m["with_video"]),
                       spec_shape=tuple(m["spec_shape"]) if m.get("spec_shape") else None,
                       video_shape=tuple(m["video_shape"]) if m.get("video_shape") else None,
                       shards=tuple(shards), preprocess=m.get("config", {}), digest=m.get("digest"),
                       features=m.get("features", "image"), sample_rate=int(m.get("sample_rate_hz", SAMPLE_RATE_HZ)),
                       source=str(root))
