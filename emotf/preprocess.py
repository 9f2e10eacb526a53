"""``python -m emotf.preprocess``: a corpus → sharded TFRecords (``make tfrecords``).

Work is planned as shards (at most ``shard_size`` utterances of one speaker
each). Utterances stream one at a time through a pool of worker processes
(audio decoding, cleanup, spectrogram, video decoding, face detection); the
parent process only serialises and writes, in a fixed order. Memory therefore
stays bounded whatever the corpus size.

A shard is written under a temporary name, its summary goes to
``.shards/<shard>.json``, and only then is it renamed: a re-run skips every
shard whose final file exists and redoes the rest, so a killed run resumes
without duplicates or losses. ``manifest.json`` is rebuilt from the summaries
at the end of every run.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from emotf import corpora
from emotf.audio import BadInputError
from emotf.config import SCHEMA_VERSION, AudioConfig, PreprocessConfig, VideoConfig

log = logging.getLogger("emotf")


@dataclasses.dataclass
class Shard:
    unit: str
    index: int
    count: int
    utterances: list[corpora.Utterance]

    @property
    def name(self) -> str:
        return f"{self.unit}-{self.index:05d}-of-{self.count:05d}.tfrecord"


def plan_shards(utts: list[corpora.Utterance], shard_size: int) -> list[Shard]:
    """Group utterances by unit (speaker), in a stable order, into shards of at most ``shard_size``."""
    by_unit: dict[str, list[corpora.Utterance]] = collections.defaultdict(list)
    for u in sorted(utts, key=lambda u: (u.unit, u.utt_id)):
        by_unit[u.unit].append(u)
    shards = []
    for unit, items in sorted(by_unit.items()):
        n = math.ceil(len(items) / shard_size)
        shards += [Shard(unit, i, n, items[i * shard_size:(i + 1) * shard_size]) for i in range(n)]
    return shards


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def _init_worker(cfg_dict: dict, with_video: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _WORKER["cfg"] = PreprocessConfig.from_dict(cfg_dict)
    _WORKER["with_video"] = with_video


def process_utterance(utt: corpora.Utterance, cfg: PreprocessConfig, with_video: bool) -> dict[str, Any]:
    """Features of one utterance: {"examples": [...], "converted": str, "face_fallbacks": int}.

    Raises:
        BadInputError: the audio or video of this utterance cannot be used.
    """
    from emotf import audio, video

    loaded = audio.load_audio(utt.audio_path, cfg.audio, utt.start_s, utt.end_s)
    images = audio.utterance_images(loaded.samples, cfg.audio, mode=cfg.segment, clean=cfg.cleanup, key=utt.utt_id)
    stacks = []
    if with_video:
        if not utt.video_path:
            raise BadInputError(utt.audio_path, "no video file for this utterance (video is on)")
        spans = [(utt.video_start_s + a, utt.video_start_s + b) for _, a, b in images]
        stacks = video.span_stacks(utt.video_path, spans, utt.speaker_side, cfg.video_config)
    examples = []
    for i, (img, a, b) in enumerate(images):
        ex = {"spec": img, "clip/index": i, "clip/count": len(images), "clip/start_s": a, "clip/end_s": b}
        if stacks:
            ex["video"] = video.encode_stack(stacks[i].frames, cfg.video_config)
            ex["video/encoding"] = cfg.video_config.encoding
            ex["video/frames"], ex["video/height"], ex["video/width"] = stacks[i].frames.shape[:3]
            ex["video/face_found"] = int(stacks[i].face_found)
        examples.append(ex)
    return {"examples": examples, "converted": loaded.converted,
            "face_fallbacks": sum(not s.face_found for s in stacks)}


def _work(utt: corpora.Utterance) -> tuple[corpora.Utterance, dict | None, str]:
    try:
        return utt, process_utterance(utt, _WORKER["cfg"], _WORKER["with_video"]), ""
    except BadInputError as e:
        return utt, None, str(e)
    except Exception as e:  # a decoder crashing on a bad file is bad input too; name it
        return utt, None, f"{utt.audio_path}: {type(e).__name__}: {e}"


# --------------------------------------------------------------------------- parent side

def _utt_metadata(utt: corpora.Utterance, label: str, index: int) -> dict[str, Any]:
    return {"label/index": index, "label/name": label, "label/raw": utt.raw_label, "speaker": utt.speaker,
            "session": utt.session, "gender": utt.gender, "utt_id": utt.utt_id, "corpus": utt.corpus,
            "mode": utt.mode}


def _fingerprint(cfg: PreprocessConfig, utts: list[corpora.Utterance], with_video: bool) -> dict[str, Any]:
    ids = hashlib.sha256("\n".join(sorted(u.utt_id for u in utts)).encode()).hexdigest()[:16]
    return {"schema_version": SCHEMA_VERSION, "config": cfg.output_fingerprint(), "with_video": with_video,
            "utterances": len(utts), "utterance_ids_sha256": ids}


def _with_defaults(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """An older ``config.json`` with the defaults of config fields added since (records stay resumable)."""
    cfg = fingerprint.get("config", {})
    for key, cls in (("audio", AudioConfig), ("video_config", VideoConfig)):
        if isinstance(cfg.get(key), dict):
            cfg[key] = {**dataclasses.asdict(cls()), **cfg[key]}
    return fingerprint


class PreprocessError(RuntimeError):
    pass


def _read_corpus(cfg: PreprocessConfig) -> tuple[list[corpora.Utterance], list[corpora.Problem]]:
    kwargs = {"side_rule": cfg.video_config.iemocap_side_rule} if cfg.corpus == "iemocap" else {}
    return corpora.read_corpus(cfg.corpus, cfg.data, **kwargs)


def measure_levels(cfg: PreprocessConfig, *, limit: int = 0) -> dict[str, Any]:
    """Speech level of a corpus's utterances (`emotf.audio.active_level_dbfs`), without writing records.

    Args:
        limit: score at most this many utterances, a seeded random choice (0: all).

    Returns:
        {"corpus", "utterances", "skipped", "p10", "median", "p90"} with levels in dBFS.
    """
    import numpy as np

    from emotf import audio

    utts = sorted(_read_corpus(cfg)[0], key=lambda u: u.utt_id)
    if limit and len(utts) > limit:
        pick = np.random.default_rng(0).choice(len(utts), limit, replace=False)
        utts = [utts[i] for i in sorted(pick)]
    levels, skipped = [], []
    for u in utts:
        try:
            x = audio.load_audio(u.audio_path, cfg.audio, u.start_s, u.end_s).samples
        except BadInputError as e:
            skipped.append(str(e))
            continue
        levels.append(audio.active_level_dbfs(x, cfg.audio))
    if not levels:
        raise PreprocessError(f"{cfg.data}: no readable utterance to measure ({len(skipped)} skipped)")
    p10, median, p90 = (round(float(v), 2) for v in np.percentile(levels, [10, 50, 90]))
    return {"corpus": cfg.corpus, "data": cfg.data, "utterances": len(levels), "skipped": skipped,
            "p10": p10, "median": median, "p90": p90}


def run(cfg: PreprocessConfig, out_dir: str | Path, *, workers: int | None = None, overwrite: bool = False,
        corpus_name: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Preprocess ``cfg.corpus`` at ``cfg.data`` into ``out_dir`` (the records of one variant).

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        PreprocessError: in strict mode, on the first bad item; or when ``out_dir``
            holds records of another configuration and ``overwrite`` is off.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    utts, problems = _read_corpus(cfg)
    if corpus_name:
        utts = [dataclasses.replace(u, corpus=corpus_name) for u in utts]
    if cfg.strict and problems:
        raise PreprocessError(f"{len(problems)} bad item(s) while listing the corpus; first: {problems[0]}")
    for p in problems:
        log.warning("skipped %s", p)

    names = corpora.class_names(cfg.corpus, cfg.classes, tuple(u.label for u in utts), merge_exc=cfg.merge_exc)
    index = {n: i for i, n in enumerate(names)}
    kept, excluded = [], collections.Counter()
    for u in utts:
        label = corpora.map_label(u.label, merge_exc=cfg.merge_exc)
        if label in index:
            kept.append(u)
        else:
            excluded[u.label] += 1
    has_video = any(u.video_path for u in kept)
    with_video = cfg.video == "on" or (cfg.video == "auto" and has_video)

    fingerprint = _fingerprint(cfg, kept, with_video)
    fp_path = out_dir / "config.json"
    if out_dir.exists() and any(out_dir.iterdir()):
        old = _with_defaults(json.loads(fp_path.read_text())) if fp_path.is_file() else None
        if overwrite:
            shutil.rmtree(out_dir)
        elif old is not None and old != fingerprint:
            raise PreprocessError(f"{out_dir} holds records of another configuration or corpus "
                                  f"(see {fp_path}); pass --overwrite to replace them or choose another --out")
    (out_dir / ".shards").mkdir(parents=True, exist_ok=True)
    fp_path.write_text(json.dumps(fingerprint, indent=2, sort_keys=True))

    shards = plan_shards(kept, cfg.shard_size)
    pending = [s for s in shards
               if not (out_dir / s.name).is_file() or not (out_dir / ".shards" / f"{s.name}.json").is_file()]
    for tmp in out_dir.glob("*.tmp"):
        tmp.unlink()
    done_before = len(shards) - len(pending)
    log.info("%s: %d utterances in %d shards (%d already complete), %s, video %s -> %s",
             cfg.corpus, len(kept), len(shards), done_before, cfg.variant, "on" if with_video else "off", out_dir)
    if pending:
        _write_shards(cfg, out_dir, pending, names, index, with_video, workers, progress)
    manifest = build_manifest(cfg, out_dir, shards, names, problems, excluded, with_video, corpus_name)
    manifest["seconds_this_run"] = round(time.time() - t0, 2)
    manifest["shards_resumed"] = done_before
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _write_shards(cfg, out_dir, pending, names, index, with_video, workers, progress) -> None:
    from emotf import records  # TensorFlow is needed by the writer only, never by the workers

    workers = workers or os.cpu_count() or 1
    queue = [u for s in pending for u in s.utterances]
    ctx = mp.get_context("spawn")  # never fork a process that may hold TensorFlow threads
    bar = _progress(len(queue), progress)
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(cfg.to_dict(), with_video))
    results = pool.imap(_work, queue, chunksize=1)
    writer = None
    try:
        for shard in pending:
            writer = records.ShardWriter(out_dir / shard.name)
            summary = {"shard": shard.name, "records": 0, "utterances": 0, "per_label": collections.Counter(),
                       "per_speaker": collections.Counter(), "skipped": [], "converted": collections.Counter(),
                       "face_fallbacks": 0, "video_clips": 0}
            for _ in shard.utterances:
                utt, res, error = next(results)
                bar.update(1)
                if res is None:
                    if cfg.strict:
                        raise PreprocessError(f"bad input (strict mode): {error}")
                    log.warning("skipped %s", error)
                    summary["skipped"].append({"utt_id": utt.utt_id, "reason": error})
                    continue
                label = corpora.map_label(utt.label, merge_exc=cfg.merge_exc)
                meta = _utt_metadata(utt, label, index[label])
                for ex in res["examples"]:
                    writer.write(records.serialize_example({**meta, **ex}))
                n = len(res["examples"])
                summary["records"] += n
                summary["utterances"] += 1
                summary["per_label"][label] += n
                summary["per_speaker"][utt.speaker] += n
                if res["converted"]:
                    summary["converted"][res["converted"]] += 1
                summary["face_fallbacks"] += res["face_fallbacks"]
                summary["video_clips"] += n if with_video else 0
            summary["sha256"] = writer.digest()
            side = out_dir / ".shards" / f"{shard.name}.json"
            side.write_text(json.dumps(summary, indent=2, sort_keys=True))
            writer.commit()
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        pool.terminate()
        pool.join()
        bar.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def build_manifest(cfg, out_dir, shards, names, problems, excluded, with_video, corpus_name) -> dict[str, Any]:
    """Merge the per-shard summaries into one manifest."""
    per_label, per_speaker, converted = collections.Counter(), collections.Counter(), collections.Counter()
    skipped = [{"path": p.path, "reason": p.reason} for p in problems]
    files, total, utterances, fallbacks, clips = [], 0, 0, 0, 0
    for s in shards:
        side = out_dir / ".shards" / f"{s.name}.json"
        if not (out_dir / s.name).is_file() or not side.is_file():
            continue
        d = json.loads(side.read_text())
        files.append({"file": s.name, "unit": s.unit, "records": d["records"], "sha256": d.get("sha256")})
        total += d["records"]
        utterances += d["utterances"]
        per_label.update(d["per_label"])
        per_speaker.update(d["per_speaker"])
        converted.update(d["converted"])
        fallbacks += d["face_fallbacks"]
        clips += d["video_clips"]
        skipped += d["skipped"]
    return {
        "schema_version": SCHEMA_VERSION,
        "corpus": corpus_name or cfg.corpus,
        "variant": cfg.variant,
        "config": cfg.to_dict(),
        "class_names": list(names),
        "with_video": with_video,
        "spec_shape": [cfg.audio.height, cfg.audio.width],
        "video_shape": ([cfg.video_config.frames, cfg.video_config.height, cfg.video_config.width]
                        if with_video else None),
        "records": total,
        "utterances": utterances,
        "per_label": dict(sorted(per_label.items())),
        "per_speaker": dict(sorted(per_speaker.items())),
        "excluded_labels": dict(sorted(excluded.items())),
        "converted_audio": dict(converted),
        "face_fallbacks": fallbacks,
        "video_clips": clips,
        "skipped": skipped,
        "shards": files,
        "complete": len(files) == len(shards),
        "digest": records_digest(files),
        "versions": feature_versions(),
    }


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
    from importlib import metadata

    from emotf import __version__

    out = {"emotf": __version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "librosa", "soundfile", "noisereduce", "opencv-python-headless", "opencv-python"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emotf.preprocess", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default="iemocap", choices=sorted(corpora.READERS))
    p.add_argument("--data", default="", help="corpus folder (csv: the manifest file); empty: the embedded "
                                              "synthetic IEMOCAP-layout corpus")
    p.add_argument("--variant", default="ds2", choices=["ds1", "ds2", "ds3", "ds4"])
    p.add_argument("--out", default="records", help="records root; output goes to OUT/<corpus>/<variant>")
    p.add_argument("--classes", default="all", choices=["all", "4", "3"])
    p.add_argument("--no-merge-exc", action="store_true", help="IEMOCAP: keep excited apart from happy")
    p.add_argument("--video", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--face-detector", default="mtcnn", choices=["mtcnn", "fixed"])
    p.add_argument("--frame-encoding", default="jpeg", choices=["jpeg", "raw"])
    p.add_argument("--iemocap-side-rule", default="mocap-left",
                   choices=["mocap-left", "mocap-right", "left", "right"])
    p.add_argument("--no-convert", action="store_true", help="reject audio not already 16 kHz mono")
    p.add_argument("--gain-db", type=float, default=0.0,
                   help="level shift of every spectrogram, e.g. to match another corpus's recording level "
                        "(see --measure-level); records go to OUT/<corpus>/<variant>-gain<G>")
    p.add_argument("--level-dbfs", type=float, default=None,
                   help="scale every utterance to this speech level (dBFS), removing loudness as a cue; "
                        "records go to OUT/<corpus>/<variant>-level<L>")
    p.add_argument("--measure-level", type=int, nargs="?", const=0, default=None, metavar="N",
                   help="print the corpus's speech level (dBFS; N utterances, default all) and write nothing")
    p.add_argument("--spec-size", default="200x300", help="spectrogram image HEIGHTxWIDTH")
    p.add_argument("--video-size", default="20x60x100", help="face stack FRAMESxHEIGHTxWIDTH")
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=0, help="worker processes (0: all cores)")
    p.add_argument("--strict", action="store_true", help="stop on the first bad item")
    p.add_argument("--overwrite", action="store_true", help="replace records of another configuration")
    p.add_argument("--synth-dir", default="", help="where the embedded corpus is generated (default OUT/.synthetic)")
    p.add_argument("--no-progress", action="store_true")
    return p


def records_folder(variant: str, gain_db: float = 0.0, level_dbfs: float | None = None) -> str:
    """The records folder name of a variant, e.g. "ds2", "ds2-gain-19.5", "ds2-level-35"."""
    return (variant + (f"-level{level_dbfs:+g}" if level_dbfs is not None else "")
            + (f"-gain{gain_db:+g}" if gain_db else ""))


def _size(text: str, n: int, flag: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != n or min(dims) < 1:
        raise ValueError(f"{flag} takes {n} positive integers joined by 'x'. Received: {text!r}")
    return dims


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    corpus, data, corpus_name = args.corpus, args.data, None
    if not data:
        from emotf import synth

        data = args.synth_dir or os.path.join(args.out, ".synthetic", "iemocap")
        corpus, corpus_name = "iemocap", "synth_iemocap"
        log.info("No --data given: using the embedded synthetic corpus (IEMOCAP layout) at %s", data)
        synth.ensure_iemocap(data)
    try:
        spec, vid = _size(args.spec_size, 2, "--spec-size"), _size(args.video_size, 3, "--video-size")
        cfg = PreprocessConfig(
            corpus=corpus, data=str(data), variant=args.variant, classes=args.classes,
            merge_exc=not args.no_merge_exc, video=args.video, shard_size=args.shard_size, strict=args.strict,
            audio=AudioConfig(convert=not args.no_convert, height=spec[0], width=spec[1], gain_db=args.gain_db,
                              level_dbfs=args.level_dbfs),
            video_config=VideoConfig(detector=args.face_detector, encoding=args.frame_encoding,
                                     iemocap_side_rule=args.iemocap_side_rule, frames=vid[0], height=vid[1],
                                     width=vid[2]),
        )
        if args.measure_level is not None:
            print(json.dumps(measure_levels(cfg, limit=args.measure_level), indent=2))
            return 0
        out = Path(args.out) / (corpus_name or corpus) / records_folder(args.variant, args.gain_db, args.level_dbfs)
        m = run(cfg, out, workers=args.workers or None, overwrite=args.overwrite, corpus_name=corpus_name,
                progress=not args.no_progress)
    except (PreprocessError, FileNotFoundError, ValueError) as e:
        log.error("error: %s", e)
        return 2
    log.info("wrote %d records (%d utterances) in %d shards to %s; %d skipped, %d face fallbacks; "
             "manifest: %s", m["records"], m["utterances"], len(m["shards"]), out, len(m["skipped"]),
             m["face_fallbacks"], out / "manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
