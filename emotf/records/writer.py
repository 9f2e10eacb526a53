"""Preprocessing: a corpus → sharded TFRecords (the work of ``python -m emotf.preprocess``, ``make tfrecords``).

Work is planned as shards (at most ``shard_size`` utterances of one speaker
each). Utterances stream one at a time through a pool of worker processes
(audio decoding, cleanup, spectrogram, video decoding, face detection); the
workers also serialise the examples; the parent only writes them, in a fixed order. Memory therefore
stays bounded whatever the corpus size.

A shard is written under a temporary name, its summary goes to
``.shards/<shard>.json``, and only then is it renamed: a re-run skips every
shard whose final file exists and redoes the rest, so a killed run resumes
without duplicates or losses. ``manifest.json`` is rebuilt from the summaries
at the end of every run.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from emotf import corpora, interrupts
from emotf.config import SCHEMA_VERSION, PreprocessConfig
from emotf.features.audio import BadInputError
from emotf.records import folder, keys

log = logging.getLogger("emotf")
SYNTHETIC_CORPUS = "synth_iemocap"  # the records' corpus name of the embedded default


@dataclasses.dataclass
class PlannedShard:
    unit: str
    index: int
    count: int
    utterances: list[corpora.Utterance]

    @property
    def name(self) -> str:
        return folder.shard_name(self.unit, self.index, self.count)


def plan_shards(utts: list[corpora.Utterance], shard_size: int) -> list[PlannedShard]:
    """Group utterances by unit (speaker), in a stable order, into shards of at most ``shard_size``."""
    by_unit: dict[str, list[corpora.Utterance]] = collections.defaultdict(list)
    for u in sorted(utts, key=lambda u: (u.unit, u.utt_id)):
        by_unit[u.unit].append(u)
    shards = []
    for unit, items in sorted(by_unit.items()):
        n = math.ceil(len(items) / shard_size)
        shards += [PlannedShard(unit, i, n, items[i * shard_size:(i + 1) * shard_size]) for i in range(n)]
    return shards


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def prepare_worker_process() -> None:
    """Settings of a process that writes records (a pool worker, a Beam worker): quiet TensorFlow, if a face
    detector loads it, and an allocator that keeps the memory it frees.

    Each clip allocates a few arrays of 0.5-2 MB (the STFT's frames and spectrum). glibc serves blocks that size
    with mmap and returns them on free, or trims the heap top above a moving threshold, so every clip
    page-faulted its few MB afresh: 2 ms of system time a clip, 40 % of a worker's CPU. With both thresholds
    fixed, freed blocks are reused; the heap stays at the largest clip's working set (a few MB; measured in
    bench/preprocess.py's peak RSS). Elsewhere than glibc this does nothing.
    """
    import ctypes
    import ctypes.util

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest
    mallopt(m_trim_threshold, 64 << 20)


def _init_worker(cfg_dict: dict, with_video: bool, index: dict[str, int]) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: one message, not one per worker
    prepare_worker_process()
    _WORKER["cfg"] = PreprocessConfig.from_dict(cfg_dict)
    _WORKER["with_video"] = with_video
    _WORKER["index"] = index


def process_utterance(utt: corpora.Utterance, cfg: PreprocessConfig, with_video: bool) -> dict[str, Any]:
    """Features of one utterance: {"examples": [...], "converted": str, "face_fallbacks": int, "blank_frames": int,
    "band_limit_hz": float or None}.

    Raises:
        BadInputError: the audio or video of this utterance cannot be used.
    """
    from emotf.features import audio, video

    loaded = audio.load_audio(utt.audio_path, cfg.audio, utt.start_s, utt.end_s)
    if cfg.features == "wave":
        wave = audio.utterance_wave(loaded.samples, cfg.audio)
        ex = {"wave": audio.to_pcm16(wave), keys.WAVE_RATE: cfg.audio.sample_rate_hz, keys.CLIP_INDEX: 0,
              keys.CLIP_COUNT: 1, keys.CLIP_START: 0.0, keys.CLIP_END: len(wave) / cfg.audio.sample_rate_hz}
        return {"examples": [ex], "converted": loaded.converted, "face_fallbacks": 0, "blank_frames": 0,
                "band_limit_hz": loaded.band_limit_hz}
    images = audio.utterance_images(loaded.samples, cfg.audio, mode=cfg.segment, clean=cfg.cleanup, key=utt.utt_id)
    stacks = []
    if with_video:
        if not utt.video_path:
            raise BadInputError(utt.audio_path, "no video file for this utterance (video is on)")
        spans = [(utt.video_start_s + a, utt.video_start_s + b) for _, a, b in images]
        stacks = video.span_stacks(utt.video_path, spans, utt.speaker_side, cfg.video_config)
    examples = []
    for i, (img, a, b) in enumerate(images):
        ex = {"spec": img, keys.CLIP_INDEX: i, keys.CLIP_COUNT: len(images), keys.CLIP_START: a,
              keys.CLIP_END: b}
        if stacks:
            ex["video"] = video.encode_stack(stacks[i].frames, cfg.video_config)
            ex[keys.VIDEO_ENCODING] = cfg.video_config.encoding
            ex[keys.VIDEO_FRAMES], ex[keys.VIDEO_HEIGHT], ex[keys.VIDEO_WIDTH] = stacks[i].frames.shape[:3]
            ex[keys.VIDEO_FACE_FOUND] = int(stacks[i].face_found)
        examples.append(ex)
    return {"examples": examples, "converted": loaded.converted,
            "face_fallbacks": sum(not s.face_found for s in stacks),
            "blank_frames": sum(s.blank_frames for s in stacks), "band_limit_hz": loaded.band_limit_hz}


def _work(utt: corpora.Utterance) -> tuple[corpora.Utterance, dict | None, str]:
    cfg = _WORKER["cfg"]
    res, error = try_utterance(utt, cfg, _WORKER["with_video"])
    if res is not None:  # serialised here, in parallel: the parent only frames and writes the bytes
        res = {**{k: v for k, v in res.items() if k != "examples"},
               "records": utterance_records(utt, res, cfg, _WORKER["index"])}
    return utt, res, error


def try_utterance(utt: corpora.Utterance, cfg: PreprocessConfig, with_video: bool) -> tuple[dict | None, str]:
    """``process_utterance``'s result and "", or None and why the utterance is skipped (a deterministic
    failure is an outcome, not an exception: a runner that retries failed work must not retry it)."""
    try:
        return process_utterance(utt, cfg, with_video), ""
    except BadInputError as e:
        return None, str(e)
    except Exception as e:  # a decoder crashing on a bad file is bad input too; name it
        return None, f"{utt.audio_path}: {type(e).__name__}: {e}"


# --------------------------------------------------------------------------- parent side

def _utt_metadata(utt: corpora.Utterance, label: str, index: int) -> dict[str, Any]:
    return {keys.LABEL_INDEX: index, keys.LABEL_NAME: label, keys.LABEL_RAW: utt.raw_label,
            keys.SPEAKER: utt.speaker, keys.SESSION: utt.session, keys.GENDER: utt.gender, keys.UTT_ID: utt.utt_id,
            keys.CORPUS: utt.corpus, keys.MODE: utt.mode}


# Changes to what a feature computation outputs for the same configuration, by the part they touch. A records folder
# made before one of them is not resumed (its shards would mix two computations): the fingerprint names the
# revisions of the parts the folder uses, so folders that use neither are unaffected.
FEATURE_REVISIONS = {
    "video": (2, "blank (black lead-in) frames replaced by the nearest frame with a picture"),
    "cleanup": (3, "noise cleanup is emotf's own numpy gate (noisereduce's algorithm, 3x faster; equal to round-off, "
                   "which moved 20 pixels of 535 EmoDB images by one level)"),
}


def _fingerprint(cfg: PreprocessConfig, utts: list[corpora.Utterance], with_video: bool) -> dict[str, Any]:
    ids = hashlib.sha256("\n".join(sorted(u.utt_id for u in utts)).encode()).hexdigest()[:16]
    fingerprint = {"schema_version": SCHEMA_VERSION, "config": cfg.output_fingerprint(), "with_video": with_video,
                   "utterances": len(utts), "utterance_ids_sha256": ids}
    used = {"video": with_video, "cleanup": cfg.features == "image" and cfg.cleanup}
    revisions = {part: FEATURE_REVISIONS[part][0] for part, on in used.items() if on}
    if revisions:
        fingerprint["feature_revisions"] = revisions
    return fingerprint


class PreprocessError(RuntimeError):
    pass


def _read_corpus(cfg: PreprocessConfig) -> tuple[list[corpora.Utterance], list[corpora.Problem]]:
    kwargs = ({"side_rule": cfg.video_config.iemocap_side_rule} if cfg.corpus == "iemocap"
              else {"label_map": cfg.label_map} if cfg.corpus == "csv" else {})
    return corpora.read_corpus(cfg.corpus, cfg.data, **kwargs)


def _reasons(skipped: list[dict[str, str]], show: int = 3) -> str:
    """The commonest reasons for skipping, counted (without the file names)."""
    # a listing problem has its path apart; a processing one starts with it ("<path>: <reason>")
    counts = collections.Counter(i["reason"] if "path" in i else i["reason"].split(": ", 1)[-1]
                                 for i in skipped).most_common()
    more = f"; {len(counts) - show} other reason(s)" if len(counts) > show else ""
    return "; ".join(f"{n} x {r}" for r, n in counts[:show]) + more


def _naming_hint(cfg: PreprocessConfig, listed: int) -> str:
    """" (these look like EmoDB: --corpus emodb lists 535 utterances)" when another reader lists more of the
    folder's files."""
    guess = corpora.guess_corpus(cfg.data, exclude=(cfg.corpus,))
    if guess is None or guess[1] <= listed:
        return ""
    return f" (these look like {guess[0]}: --corpus {guess[0]} lists {guess[1]} utterances)"


def _check_skipped(cfg: PreprocessConfig, inputs: int, skipped: list[dict[str, str]], records: int,
                   listed: int) -> None:
    """Nothing written, or more than ``cfg.max_skipped`` of the inputs skipped, is a failure, said with the
    commonest reasons (and another corpus whose naming the files follow)."""
    share = len(skipped) / inputs if inputs else 0.0
    if records and share <= cfg.max_skipped:
        return
    what = ("no records written" if not records else
            f"{share:.0%} of the inputs skipped, more than the {cfg.max_skipped:.0%} allowed (--max-skipped)")
    why = f"{len(skipped)} of {inputs} input(s) skipped: {_reasons(skipped)}" if skipped else (
        "the corpus lists no utterance" if not inputs else "every utterance was left out by the class set")
    raise PreprocessError(f"{cfg.data}: {what}; {why}{_naming_hint(cfg, listed)}")


def measure_levels(cfg: PreprocessConfig, *, limit: int = 0) -> dict[str, Any]:
    """Speech level of a corpus's utterances (`emotf.features.audio.active_level_dbfs`), without writing records.

    Args:
        limit: score at most this many utterances, a seeded random choice (0: all).

    Returns:
        {"corpus", "utterances", "skipped", "p10", "median", "p90"} with levels in dBFS.
    """
    import numpy as np

    from emotf.features import audio

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
        corpus_name: str | None = None, progress: bool = True, runner: str = "local",
        beam_options: Sequence[str] | str = ()) -> dict[str, Any]:
    """Preprocess ``cfg.corpus`` at ``cfg.data`` into ``out_dir`` (the records of one variant).

    Args:
        runner: "local" (a pool of ``workers`` processes) or "beam" (an Apache Beam pipeline,
            `emotf.records.beam`, run with ``beam_options``). Both write the same records.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        PreprocessError: in strict mode, on the first bad item; when ``out_dir``
            holds records of another configuration and ``overwrite`` is off; when nothing
            is written or more than ``cfg.max_skipped`` of the inputs are skipped (what
            was written is kept, manifest included).
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    utts, problems = _read_corpus(cfg)
    if corpus_name:
        utts = [dataclasses.replace(u, corpus=corpus_name) for u in utts]
    if cfg.strict and problems:
        raise PreprocessError(f"{len(problems)} bad item(s) while listing the corpus; first: {problems[0]}")
    inputs = len(utts) + len(problems)
    if problems and (not utts or len(problems) / inputs > cfg.max_skipped):  # say so before any work is done
        _check_skipped(cfg, inputs, [{"path": p.path, "reason": p.reason} for p in problems], 0, len(utts))
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
    if cfg.features == "wave" and cfg.video == "on":
        raise PreprocessError(f"the {cfg.variant} variant stores waveforms only; face stacks come with the image "
                              f"variants (--video off, or --variant ds1..ds4)")
    with_video = cfg.features == "image" and (cfg.video == "on" or (cfg.video == "auto" and has_video))

    fingerprint = _fingerprint(cfg, kept, with_video)
    if out_dir.exists() and any(out_dir.iterdir()):
        old = folder.read_fingerprint(out_dir)
        if overwrite:
            shutil.rmtree(out_dir)
        elif old is not None and old != fingerprint and {**old, "feature_revisions": None} == {
                **fingerprint, "feature_revisions": None}:
            changed = [f"{part}: {FEATURE_REVISIONS[part][1]}" for part, rev in fingerprint["feature_revisions"].items()
                       if old.get("feature_revisions", {}).get(part) != rev]
            raise PreprocessError(f"{out_dir} holds records of this configuration made by an earlier emotf, whose "
                                  f"features differ ({'; '.join(changed)}); pass --overwrite to remake them")
        elif old is not None and old != fingerprint:
            raise PreprocessError(f"{out_dir} holds records of another configuration or corpus "
                                  f"(see {out_dir / folder.FINGERPRINT}); pass --overwrite to replace them or choose "
                                  f"another --out")
    folder.summary_path(out_dir, "x").parent.mkdir(parents=True, exist_ok=True)
    folder.write_fingerprint(out_dir, fingerprint)

    shards = plan_shards(kept, cfg.shard_size)
    pending = []
    for s in shards:
        if folder.is_complete(out_dir, s.name):
            problem = folder.damaged(out_dir, s.name)
            if not problem:
                continue
            log.warning("rewriting a damaged shard: %s", problem)
            (out_dir / s.name).unlink()
        pending.append(s)
    for tmp in [*out_dir.glob("*.tmp"), *(out_dir / folder.SUMMARIES).glob("*.tmp")]:
        tmp.unlink(missing_ok=True)
    done_before = len(shards) - len(pending)
    log.info("%s: %d utterances in %d shards (%d already complete), %s, video %s -> %s",
             cfg.corpus, len(kept), len(shards), done_before, cfg.variant, "on" if with_video else "off", out_dir)
    if runner not in ("local", "beam"):
        raise ValueError(f"runner must be local or beam. Received: {runner!r}")
    if pending and runner == "beam":
        try:
            from emotf.records import beam
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("apache_beam"):
                raise
            raise PreprocessError("--runner beam needs Apache Beam: pip install -e '.[beam]' (make install "
                                  "includes it)") from None
        beam.write_shards(cfg, out_dir, pending, index, with_video, workers=workers, options=beam_options,
                          progress=progress)
    elif pending:
        _write_shards(cfg, out_dir, pending, index, with_video, workers, progress)
    manifest = folder.build_manifest(cfg, out_dir, [(s.name, s.unit) for s in shards], names, problems, excluded,
                                     with_video, corpus_name)
    manifest["seconds_this_run"] = round(time.time() - t0, 2)
    manifest["shards_resumed"] = done_before
    manifest["runner"] = runner
    folder.write_manifest(out_dir, manifest)
    _check_skipped(cfg, inputs, manifest["skipped"], manifest["records"], len(utts))
    return manifest


class ShardBuilder:
    """One shard's records and summary, fed its utterances' results in the planned order; written atomically.

    The local pool and the Beam pipeline (`emotf.records.beam`) both write through it, so a shard's bytes and
    summary do not depend on the runner.
    """

    def __init__(self, cfg: PreprocessConfig, out_dir: Path, shard: str, index: dict[str, int], with_video: bool,
                 warned: set[str] | None = None):
        from emotf.records.schema import ShardWriter

        self.cfg, self.out_dir, self.index, self.with_video = cfg, Path(out_dir), index, with_video
        self.warned = set() if warned is None else warned  # the warnings said once per run
        self.writer = ShardWriter(self.out_dir / shard)
        self.summary = {"shard": shard, "records": 0, "utterances": 0, "per_label": collections.Counter(),
                        "per_speaker": collections.Counter(), "skipped": [], "converted": collections.Counter(),
                        "face_fallbacks": 0, "blank_frames": 0, "video_clips": 0, "band_limited": {}}

    def add(self, utt: corpora.Utterance, res: dict | None, error: str) -> None:
        """One utterance's result (``process_utterance``'s dict, or None and why; its serialised records under
        "records" where the worker made them, `utterance_records`).

        Raises:
            PreprocessError: a bad utterance in strict mode.
        """
        summary = self.summary
        if res is None:
            if self.cfg.strict:
                raise PreprocessError(f"bad input (strict mode): {error}")
            log.warning("skipped %s", error)
            summary["skipped"].append({"utt_id": utt.utt_id, "reason": error})
            return
        records = res["records"] if "records" in res else utterance_records(utt, res, self.cfg, self.index)
        for record in records:
            self.writer.write(record)
        label = corpora.map_label(utt.label, merge_exc=self.cfg.merge_exc)
        n = len(records)
        summary["records"] += n
        summary["utterances"] += 1
        summary["per_label"][label] += n
        summary["per_speaker"][utt.speaker] += n
        if res["converted"]:
            summary["converted"][res["converted"]] += 1
        summary["face_fallbacks"] += res["face_fallbacks"]
        summary["blank_frames"] += res["blank_frames"]
        if res["band_limit_hz"]:
            if "band" not in self.warned:
                log.warning("%s: recorded at %g Hz, so nothing above %g Hz: its features are empty there "
                            "(counted in the manifest's band_limited; --band-limited reject skips such "
                            "files)", utt.audio_path, 2 * res["band_limit_hz"], res["band_limit_hz"])
                self.warned.add("band")
            summary["band_limited"][utt.utt_id] = res["band_limit_hz"]
        summary["video_clips"] += n if self.with_video else 0

    def commit(self) -> None:
        """Summary first, then the shard under its final name: a shard with its final name is complete."""
        self.summary["sha256"] = self.writer.digest()
        folder.write_summary(self.out_dir, self.summary)
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


def utterance_records(utt: corpora.Utterance, res: dict, cfg: PreprocessConfig, index: dict[str, int]) -> list[bytes]:
    """The serialised tf.train.Examples of one processed utterance (metadata + each clip's features)."""
    from emotf.records.schema import serialize_example

    label = corpora.map_label(utt.label, merge_exc=cfg.merge_exc)
    meta = _utt_metadata(utt, label, index[label])
    return [serialize_example({**meta, **ex}) for ex in res["examples"]]


def _write_shards(cfg, out_dir, pending, index, with_video, workers, progress) -> None:
    # No TensorFlow here or in the workers (emotf.records.schema writes the TFRecords with protobuf and CRC32C); a
    # worker loads it only for the MTCNN face detector.
    workers = workers or os.cpu_count() or 1
    queue = [u for s in pending for u in s.utterances]
    ctx = mp.get_context("spawn")  # never fork a process that may hold TensorFlow threads
    bar = _progress(len(queue), progress)
    # An executor, not multiprocessing.Pool: a Pool replaces a worker that dies (killed, out of memory, a decoder
    # crashing) and waits forever for the utterance it held; the executor says so (BrokenProcessPool).
    pool = futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                       initargs=(cfg.to_dict(), with_video, index))
    # Utterances go to the workers in runs of up to 16: a task costs the executor ~0.5 ms of CPU (pickling, queue
    # threads, wake-ups), a fifth of an audio utterance's features; at least 8 runs per worker keep the ends even.
    # A face video takes 100x longer than its audio, so with video every utterance is its own task.
    chunk = 1 if with_video else max(1, min(16, len(queue) // (8 * workers)))
    results = pool.map(_work, queue, chunksize=chunk)
    builder, warned = None, set()
    try:
        for shard in pending:
            builder = ShardBuilder(cfg, out_dir, shard.name, index, with_video, warned)
            for waited in shard.utterances:
                try:
                    utt, res, error = next(results)
                except BrokenProcessPool:
                    raise PreprocessError(
                        f"a worker process died (killed, out of memory, crashed inside a decoder, or could not start: "
                        f"a script that calls emotf needs `if __name__ == '__main__':`) while "
                        f"{waited.audio_path} or an utterance after it was being processed; the finished shards "
                        f"are kept: run the same command again to resume (with --workers 1 --strict to find the "
                        f"file, if it happens again)") from None
                interrupts.check()
                bar.update(1)
                builder.add(utt, res, error)
            builder.commit()
            builder = None
    finally:
        if builder is not None:
            builder.abort()
        pool.shutdown(wait=True, cancel_futures=True)  # the utterances being processed finish; no others start
        bar.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def ensure_default_records(root: str | Path = "records") -> Path:
    """The embedded default: the synthetic IEMOCAP-layout corpus, generated and preprocessed (DS2) on first use.

    Returns:
        The records folder, ``root/synth_iemocap/ds2``.
    """
    from emotf.corpora import synthetic

    path = Path(root) / SYNTHETIC_CORPUS / "ds2"
    if (path / folder.MANIFEST).is_file():
        log.info("No --records given: using the embedded synthetic records in %s", path)
        return path
    data = Path(root) / ".synthetic" / "iemocap"
    log.info("No --records given: generating the embedded synthetic corpus (IEMOCAP layout) in %s and "
             "preprocessing it into %s", data, path)
    synthetic.ensure_iemocap(data)
    run(PreprocessConfig(corpus="iemocap", data=str(data)), path, corpus_name=SYNTHETIC_CORPUS, progress=False)
    return path
