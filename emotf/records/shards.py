"""What both preprocessing runners share: one utterance → its records, and one shard written whole.

The local pool (`emotf.records.writer`) and the Beam pipeline (`emotf.records.beam`) plan the same shards
(`plan_shards`), process each utterance the same way (`try_utterance`: a bad file is an outcome, not an
exception) and write every shard through `ShardBuilder`, so a shard's bytes and summary do not depend on
the runner.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any

from emotf import corpora
from emotf.config import PreprocessConfig
from emotf.features import audio, video
from emotf.features.audio import BadInputError
from emotf.records import folder, keys
from emotf.records.schema import ShardWriter, serialize_example

log = logging.getLogger("emotf")


class PreprocessError(RuntimeError):
    """Preprocessing cannot go on (a user error: the message names the file or folder and what to do)."""


@dataclasses.dataclass
class UtteranceResult:
    """One processed utterance.

    Attributes:
        examples: each clip's features, as `emotf.records.schema.serialize_example` takes them (without the
            utterance's metadata).
        converted: how the audio was converted on reading ("" when it was read as it is).
        face_fallbacks: clips whose face was not found (the whole frame stands in).
        blank_frames: black frames replaced by the nearest frame with a picture.
        band_limit_hz: the audio's band limit where it was recorded at a lower rate, else None.
        records: the serialised tf.train.Examples (metadata + features), where a worker made them; ``examples``
            is then left empty, so the features do not travel back twice.
    """

    examples: list[dict[str, Any]]
    converted: str = ""
    face_fallbacks: int = 0
    blank_frames: int = 0
    band_limit_hz: float | None = None
    records: list[bytes] | None = None


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


def prepare_worker_process() -> None:
    """Settings of a process that writes records (a pool worker, a Beam worker): quiet TensorFlow, if a face
    detector loads it, and an allocator that keeps the memory it frees.

    Each clip allocates a few arrays of 0.5-2 MB (the STFT's frames and spectrum). glibc serves blocks that size
    with mmap and returns them on free, or trims the heap top above a moving threshold, so every clip
    page-faulted its few MB afresh: 2 ms of system time a clip, 40 % of a worker's CPU. With both thresholds
    fixed, freed blocks are reused; the heap stays at the largest clip's working set (a few MB; measured in
    bench/preprocess.py's peak RSS). Elsewhere than glibc this does nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest
    mallopt(m_trim_threshold, 64 << 20)


def process_utterance(utt: corpora.Utterance, cfg: PreprocessConfig, with_video: bool) -> UtteranceResult:
    """Features of one utterance.

    Raises:
        BadInputError: the audio or video of this utterance cannot be used.
    """
    loaded = audio.load_audio(utt.audio_path, cfg.audio, utt.start_s, utt.end_s)
    if cfg.features == "wave":
        wave = audio.utterance_wave(loaded.samples, cfg.audio)
        ex = {"wave": audio.to_pcm16(wave), keys.WAVE_RATE: cfg.audio.sample_rate_hz, keys.CLIP_INDEX: 0,
              keys.CLIP_COUNT: 1, keys.CLIP_START: 0.0, keys.CLIP_END: len(wave) / cfg.audio.sample_rate_hz}
        # the face stack spans the whole utterance as read (the trimmed waveform shortens pauses inside it, so it
        # is no one stretch of the video), as the whole-utterance image variant's does
        clips = [(ex, 0.0, len(loaded.samples) / cfg.audio.sample_rate_hz)]
    else:
        images = audio.utterance_images(loaded.samples, cfg.audio, mode=cfg.segment, clean=cfg.cleanup,
                                        key=utt.utt_id)
        clips = [({"spec": img, keys.CLIP_INDEX: i, keys.CLIP_COUNT: len(images), keys.CLIP_START: a,
                   keys.CLIP_END: b}, a, b) for i, (img, a, b) in enumerate(images)]
    stacks = []
    if with_video:
        if not utt.video_path:
            raise BadInputError(utt.audio_path, "no video file for this utterance (video is on)")
        spans = [(utt.video_start_s + a, utt.video_start_s + b) for _, a, b in clips]
        stacks = video.span_stacks(utt.video_path, spans, utt.speaker_side, cfg.video_config)
    examples = []
    for i, (ex, _, _) in enumerate(clips):
        if stacks:
            ex["video"] = video.encode_stack(stacks[i].frames, cfg.video_config)
            ex[keys.VIDEO_ENCODING] = cfg.video_config.encoding
            ex[keys.VIDEO_FRAMES], ex[keys.VIDEO_HEIGHT], ex[keys.VIDEO_WIDTH] = stacks[i].frames.shape[:3]
            ex[keys.VIDEO_FACE_FOUND] = int(stacks[i].face_found)
        examples.append(ex)
    return UtteranceResult(examples, loaded.converted, face_fallbacks=sum(not s.face_found for s in stacks),
                           blank_frames=sum(s.blank_frames for s in stacks), band_limit_hz=loaded.band_limit_hz)


def try_utterance(utt: corpora.Utterance, cfg: PreprocessConfig,
                  with_video: bool) -> tuple[UtteranceResult | None, str]:
    """``process_utterance``'s result and "", or None and why the utterance is skipped (a deterministic
    failure is an outcome, not an exception: a runner that retries failed work must not retry it)."""
    try:
        return process_utterance(utt, cfg, with_video), ""
    except BadInputError as e:
        return None, str(e)
    except Exception as e:  # a decoder crashing on a bad file is bad input too; name it
        return None, f"{utt.audio_path}: {type(e).__name__}: {e}"


def _utt_metadata(utt: corpora.Utterance, label: str, index: int) -> dict[str, Any]:
    return {keys.LABEL_INDEX: index, keys.LABEL_NAME: label, keys.LABEL_RAW: utt.raw_label,
            keys.SPEAKER: utt.speaker, keys.SESSION: utt.session, keys.GENDER: utt.gender, keys.UTT_ID: utt.utt_id,
            keys.CORPUS: utt.corpus, keys.MODE: utt.mode}


class ShardBuilder:
    """One shard's records and summary, fed its utterances' results in the planned order; written atomically.

    The local pool and the Beam pipeline (`emotf.records.beam`) both write through it, so a shard's bytes and
    summary do not depend on the runner.
    """

    def __init__(self, cfg: PreprocessConfig, out_dir: Path, shard: str, index: dict[str, int], with_video: bool,
                 warned: set[str] | None = None):
        self.cfg, self.out_dir, self.index, self.with_video = cfg, Path(out_dir), index, with_video
        self.warned = set() if warned is None else warned  # the warnings said once per run
        self.writer = ShardWriter(self.out_dir / shard)
        self.summary = {"shard": shard, "records": 0, "utterances": 0, "per_label": collections.Counter(),
                        "per_speaker": collections.Counter(), "skipped": [], "converted": collections.Counter(),
                        "face_fallbacks": 0, "blank_frames": 0, "video_clips": 0, "band_limited": {}}

    def add(self, utt: corpora.Utterance, res: UtteranceResult | None, error: str) -> None:
        """One utterance's result (or None and why it was skipped), in the planned order.

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
        records = res.records if res.records is not None else utterance_records(utt, res, self.cfg, self.index)
        for record in records:
            self.writer.write(record)
        label = corpora.map_label(utt.label, merge_exc=self.cfg.merge_exc)
        n = len(records)
        summary["records"] += n
        summary["utterances"] += 1
        summary["per_label"][label] += n
        summary["per_speaker"][utt.speaker] += n
        if res.converted:
            summary["converted"][res.converted] += 1
        summary["face_fallbacks"] += res.face_fallbacks
        summary["blank_frames"] += res.blank_frames
        if res.band_limit_hz:
            if "band" not in self.warned:
                log.warning("%s: recorded at %g Hz, so nothing above %g Hz: its features are empty there "
                            "(counted in the manifest's band_limited; --band-limited reject skips such "
                            "files)", utt.audio_path, 2 * res.band_limit_hz, res.band_limit_hz)
                self.warned.add("band")
            summary["band_limited"][utt.utt_id] = res.band_limit_hz
        summary["video_clips"] += n if self.with_video else 0

    def commit(self) -> None:
        """Summary first, then the shard under its final name: a shard with its final name is complete."""
        self.summary["sha256"] = self.writer.digest()
        folder.write_summary(self.out_dir, self.summary)
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


def utterance_records(utt: corpora.Utterance, res: UtteranceResult, cfg: PreprocessConfig,
                      index: dict[str, int]) -> list[bytes]:
    """The serialised tf.train.Examples of one processed utterance (metadata + each clip's features)."""
    label = corpora.map_label(utt.label, merge_exc=cfg.merge_exc)
    meta = _utt_metadata(utt, label, index[label])
    return [serialize_example({**meta, **ex}) for ex in res.examples]
