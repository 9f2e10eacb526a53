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
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from emotf import corpora, interrupts
from emotf.catalog import SYNTHETIC_CORPUS
from emotf.config import SCHEMA_VERSION, PreprocessConfig
from emotf.corpora import synthetic
from emotf.features import audio
from emotf.records import folder
from emotf.records.shards import (
    PlannedShard,
    PreprocessError,
    ShardBuilder,
    UtteranceResult,
    plan_shards,
    prepare_worker_process,
    try_utterance,
    utterance_records,
)

log = logging.getLogger("emotf")


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def _init_worker(cfg_dict: dict, with_video: bool, index: dict[str, int]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: one message, not one per worker
    prepare_worker_process()
    _WORKER["cfg"] = PreprocessConfig.from_dict(cfg_dict)
    _WORKER["with_video"] = with_video
    _WORKER["index"] = index


def _work(utt: corpora.Utterance) -> tuple[corpora.Utterance, UtteranceResult | None, str]:
    cfg = _WORKER["cfg"]
    res, error = try_utterance(utt, cfg, _WORKER["with_video"])
    if res is not None:  # serialised here, in parallel: the parent only frames and writes the bytes
        res = dataclasses.replace(res, examples=[], records=utterance_records(utt, res, cfg, _WORKER["index"]))
    return utt, res, error


# --------------------------------------------------------------------------- parent side

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
    utts = sorted(_read_corpus(cfg)[0], key=lambda u: u.utt_id)
    if limit and len(utts) > limit:
        pick = np.random.default_rng(0).choice(len(utts), limit, replace=False)
        utts = [utts[i] for i in sorted(pick)]
    levels, skipped = [], []
    for u in utts:
        try:
            x = audio.load_audio(u.audio_path, cfg.audio, u.start_s, u.end_s).samples
        except audio.BadInputError as e:
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
    if runner not in ("local", "beam"):
        raise ValueError(f"runner must be local or beam. Received: {runner!r}")
    utts, problems = _list_corpus(cfg, corpus_name)
    names, kept, excluded = _keep_classes(cfg, utts)
    with_video = _with_video(cfg, kept)
    _claim_folder(out_dir, _fingerprint(cfg, kept, with_video), overwrite)
    shards = plan_shards(kept, cfg.shard_size)
    pending = _pending(out_dir, shards)
    log.info("%s: %d utterances in %d shards (%d already complete), %s, video %s -> %s",
             cfg.corpus, len(kept), len(shards), len(shards) - len(pending), cfg.variant,
             "on" if with_video else "off", out_dir)
    index = {n: i for i, n in enumerate(names)}
    if pending and runner == "beam":
        _beam_runner().write_shards(cfg, out_dir, pending, index, with_video, workers=workers, options=beam_options,
                                    progress=progress)
    elif pending:
        _write_shards(cfg, out_dir, pending, index, with_video, workers, progress)
    manifest = folder.build_manifest(cfg, out_dir, [(s.name, s.unit) for s in shards], names, problems, excluded,
                                     with_video, corpus_name)
    manifest.update(seconds_this_run=round(time.time() - t0, 2), shards_resumed=len(shards) - len(pending),
                    runner=runner)
    folder.write_manifest(out_dir, manifest)
    _check_skipped(cfg, len(utts) + len(problems), manifest["skipped"], manifest["records"], len(utts))
    return manifest


def _list_corpus(cfg: PreprocessConfig, corpus_name: str | None) -> tuple[list[corpora.Utterance],
                                                                          list[corpora.Problem]]:
    """The corpus's utterances (under ``corpus_name`` where given) and the items it could not list; fails before
    any work where listing alone already breaks strict mode or the skip limit."""
    utts, problems = _read_corpus(cfg)
    if corpus_name:
        utts = [dataclasses.replace(u, corpus=corpus_name) for u in utts]
    if cfg.strict and problems:
        raise PreprocessError(f"{len(problems)} bad item(s) while listing the corpus; first: {problems[0]}")
    inputs = len(utts) + len(problems)
    if problems and (not utts or len(problems) / inputs > cfg.max_skipped):
        _check_skipped(cfg, inputs, [{"path": p.path, "reason": p.reason} for p in problems], 0, len(utts))
    for p in problems:
        log.warning("skipped %s", p)
    return utts, problems


def _keep_classes(cfg: PreprocessConfig, utts: list[corpora.Utterance]) -> tuple[
        tuple[str, ...], list[corpora.Utterance], collections.Counter]:
    """The class names (in index order), the utterances of those classes, and the count of the others by label."""
    names = corpora.class_names(cfg.corpus, cfg.classes, tuple(u.label for u in utts), merge_exc=cfg.merge_exc)
    kept, excluded = [], collections.Counter()
    for u in utts:
        if corpora.map_label(u.label, merge_exc=cfg.merge_exc) in names:
            kept.append(u)
        else:
            excluded[u.label] += 1
    return names, kept, excluded


def _with_video(cfg: PreprocessConfig, kept: list[corpora.Utterance]) -> bool:
    """Whether the records hold face stacks: ``--video on``, or ``auto``, an image variant and a corpus with videos.

    The waveform variant stores faces only when asked (``--video on``: the audio-visual model with a waveform
    audio branch reads them), so its records of a corpus with video stay the audio models' small ones by default.
    """
    has_video = any(u.video_path for u in kept)
    if cfg.features == "wave":
        if cfg.video == "on" and not has_video:
            raise PreprocessError(f"--video on: no utterance of {cfg.corpus} has a video file")
        return cfg.video == "on"
    return cfg.video == "on" or (cfg.video == "auto" and has_video)


def _claim_folder(out_dir: Path, fingerprint: dict[str, Any], overwrite: bool) -> None:
    """Make ``out_dir`` this configuration's: new, resumed (same fingerprint), or emptied with ``overwrite``;
    records of another configuration are refused, naming what differs."""
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


def _pending(out_dir: Path, shards: list[PlannedShard]) -> list[PlannedShard]:
    """The shards still to write: missing ones, and complete ones found damaged (removed, with a warning); the
    temporary files of an interrupted run are removed."""
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
    return pending


def _beam_runner():
    """`emotf.records.beam`, imported only when asked for (Apache Beam is an extra, and slow to import)."""
    try:
        from emotf.records import beam
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("apache_beam"):
            raise
        raise PreprocessError("--runner beam needs Apache Beam: pip install -e '.[beam]' (make install "
                              "includes it)") from None
    return beam


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
    return tqdm(total=total, unit="utt", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def ensure_default_records(root: str | Path = "records") -> Path:
    """The embedded default: the synthetic IEMOCAP-layout corpus, generated and preprocessed (DS2) on first use.

    Returns:
        The records folder, ``root/synth_iemocap/ds2``.
    """
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
