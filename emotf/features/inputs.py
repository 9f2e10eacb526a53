"""A recording → the arrays a run's model takes, made exactly as its records were.

The recording goes through the feature code of preprocessing (`emotf.features.audio`,
`emotf.features.video`) with the settings the model's records were made with (the run's
``config.json``), into the arrays records store; the model takes them as they are (its first
layers colour and scale them). Prediction (`emotf.serving.inference`) and the robustness report
(`emotf.evaluation.robustness`) both start here. ``run`` is an `emotf.runs.RunDir`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emotf.config import WAVE_BUCKET_S, PreprocessConfig, bucket_samples
from emotf.features import audio, video


def feature_config(run, gain_db: float | None = None):
    """The `PreprocessConfig` the run's records were made with (``gain_db``: another spectrogram level shift)."""
    pcfg = PreprocessConfig.from_dict(run.preprocess)
    if gain_db is not None:
        pcfg = dataclasses.replace(pcfg, audio=dataclasses.replace(pcfg.audio, gain_db=gain_db))
    return pcfg


def features(run, audio_path: str | Path, video_path: str | Path | None = None, *, mode: str = "auto",
             side: str = "", gain_db: float | None = None) -> tuple[dict[str, np.ndarray], list[tuple[float, float]]]:
    """Model inputs of one recording, as records store them, and the clips' spans.

    Returns:
        ({"audio": (n, h, w, 1) uint8, "video": (n, frames, h, w, 3) uint8 (video models only)},
        [(start_s, end_s) of each clip]); for waveform models
        ({"audio": (1, samples) float32, "audio_length": (1,) int32}, [(0, seconds)]), with "video" (1, frames, h,
        w, 3) for ``av`` with a waveform audio branch.

    ``gain_db`` (None: the model's records' own) shifts the spectrogram level, to bring a recording
    made at another level to the training corpus's (``python -m emotf.preprocess --measure-level``).

    Raises:
        emotf.features.audio.BadInputError: unreadable, silent or otherwise unusable input, naming the file.
    """
    pcfg = feature_config(run, gain_db)
    loaded = audio.load_audio(audio_path, pcfg.audio)
    return features_of_samples(run, loaded.samples, video_path, mode=mode, side=side, pcfg=pcfg,
                               key=Path(audio_path).stem)


def features_of_samples(run, samples: np.ndarray, video_path: str | Path | None = None, *, mode: str = "auto",
                        side: str = "", pcfg=None, key: str = "utterance", bucket_s: float = WAVE_BUCKET_S,
                        video_offset_s: float = 0.0, faces_found: list | None = None):
    """`features` of a waveform already loaded ((n,) float32 at the records' rate), e.g. a perturbed one.

    A waveform model's input is padded to a whole number of ``bucket_s`` (its ``audio_length``
    says how much is real), as evaluation batches are, so few input shapes occur. ``samples`` start
    ``video_offset_s`` into the video (a window of a long recording); ``faces_found``, where given, is
    appended with each clip's face-detection outcome.
    """
    pcfg = pcfg or feature_config(run)
    if video_path and run.modality not in ("video", "av"):
        raise ValueError(f"the {run.arch} model hears the audio only, so --video {video_path} would be ignored; "
                         f"leave it out, or use an av or video_3dcnn run")
    if run.reads_wave:
        wave = audio.utterance_wave(samples, pcfg.audio)
        bucket = bucket_samples(pcfg.audio.sample_rate_hz, bucket_s)
        padded = np.pad(wave, (0, (-len(wave)) % bucket))
        x = {"audio": padded[None], "audio_length": np.array([len(wave)], np.int32)}
        spans = [(0.0, len(wave) / pcfg.audio.sample_rate_hz)]
        # the face stack spans the recording as read, as the records' does (`emotf.records.shards`)
        faces_span = [(0.0, len(samples) / pcfg.audio.sample_rate_hz)]
    else:
        segment = pcfg.segment if mode == "auto" else mode
        images = audio.utterance_images(samples, pcfg.audio, mode=segment, clean=pcfg.cleanup, key=key)
        spans = faces_span = [(a, b) for _, a, b in images]
        x = {"audio": np.stack([img for img, _, _ in images])[..., None]}
    if run.modality in ("video", "av"):
        if not video_path:
            raise ValueError(f"the {run.arch} model needs the face video: pass --video")
        stacks = video.span_stacks(str(video_path), [(a + video_offset_s, b + video_offset_s) for a, b in faces_span],
                                   side, pcfg.video_config)
        x["video"] = np.stack([s.frames for s in stacks])
        if faces_found is not None:
            faces_found.extend(s.face_found for s in stacks)
    return x, spans


def model_inputs(run, x: dict[str, np.ndarray]):
    """What the run's model takes of `features`' output: one array, or the dict for several inputs."""
    return x if run.modality in ("av", "waveform") else x[run.modality]
