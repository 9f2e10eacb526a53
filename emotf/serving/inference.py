"""The emotion of one recording (the work of ``python -m emotf.predict``).

The recording goes through exactly the feature code of preprocessing, with the
settings the model's records were made with (`emotf.features.audio`,
`emotf.features.video`), into the arrays records store, which the model takes
as they are (its first layers colour and scale them).
With ``--mode clips`` (the default for models trained on 3-s clips) each clip
is classified and the class probabilities are averaged; ``--mode utterance``
makes one image of the whole file.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("emotf")


def feature_config(run, gain_db: float | None = None):
    """The `PreprocessConfig` the run's records were made with (``gain_db``: another spectrogram level shift)."""
    from emotf.config import PreprocessConfig

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
        ({"audio": (1, samples) float32, "audio_length": (1,) int32}, [(0, seconds)]).

    ``gain_db`` (None: the model's records' own) shifts the spectrogram level, to bring a recording
    made at another level to the training corpus's (``python -m emotf.preprocess --measure-level``).

    Raises:
        emotf.features.audio.BadInputError: unreadable, silent or otherwise unusable input, naming the file.
    """
    from emotf.features import audio

    pcfg = feature_config(run, gain_db)
    loaded = audio.load_audio(audio_path, pcfg.audio)
    return features_of_samples(run, loaded.samples, video_path, mode=mode, side=side, pcfg=pcfg,
                               key=Path(audio_path).stem)


def features_of_samples(run, samples: np.ndarray, video_path: str | Path | None = None, *, mode: str = "auto",
                        side: str = "", pcfg=None, key: str = "utterance", bucket_s: float = 2.0):
    """`features` of a waveform already loaded ((n,) float32 at the records' rate), e.g. a perturbed one.

    A waveform model's input is padded to a whole number of ``bucket_s`` (its ``audio_length``
    says how much is real), as evaluation batches are, so few input shapes occur.
    """
    from emotf.features import audio, video

    pcfg = pcfg or feature_config(run)
    if video_path and run.modality not in ("video", "av"):
        raise ValueError(f"the {run.arch} model hears the audio only, so --video {video_path} would be ignored; "
                         f"leave it out, or use an av or video_3dcnn run")
    if run.modality == "waveform":
        wave = audio.utterance_wave(samples, pcfg.audio)
        bucket = max(1, int(round(bucket_s * pcfg.audio.sample_rate_hz)))
        padded = np.pad(wave, (0, (-len(wave)) % bucket))
        return ({"audio": padded[None], "audio_length": np.array([len(wave)], np.int32)},
                [(0.0, len(wave) / pcfg.audio.sample_rate_hz)])
    segment = pcfg.segment if mode == "auto" else mode
    images = audio.utterance_images(samples, pcfg.audio, mode=segment, clean=pcfg.cleanup, key=key)
    spans = [(a, b) for _, a, b in images]
    x = {"audio": np.stack([img for img, _, _ in images])[..., None]}
    if run.modality in ("video", "av"):
        if not video_path:
            raise ValueError(f"the {run.arch} model needs the face video: pass --video")
        stacks = video.span_stacks(str(video_path), spans, side, pcfg.video_config)
        x["video"] = np.stack([s.frames for s in stacks])
    return x, spans


def model_inputs(run, x: dict[str, np.ndarray]):
    """What the run's model takes of `features`' output: one array, or the dict for two inputs."""
    return x if run.modality in ("av", "waveform") else x[run.modality]


def predict(run_dir: str | Path, audio_path: str | Path, video_path: str | Path | None = None, *,
            mode: str = "auto", side: str = "", gain_db: float | None = None, model=None) -> dict:
    """Class probabilities of one recording: {"label", "probabilities", "clips": [...]}."""
    from emotf.runs import open_run

    run = open_run(run_dir)
    model = model or run.load_model()
    x, spans = features(run, audio_path, video_path, mode=mode, side=side, gain_db=gain_db)
    inputs = model_inputs(run, x)
    # predict_on_batch runs the model as one compiled function; an eager call is several times slower
    # for the recurrent models (measured by bench/latency.py).
    probs = np.asarray(model.predict_on_batch(inputs), dtype=np.float64)
    mean = probs.mean(axis=0)
    names = run.class_names
    return {
        "file": str(audio_path), "label": names[int(mean.argmax())],
        "probabilities": {n: float(p) for n, p in zip(names, mean, strict=True)},
        "clips": [{"start_s": round(a, 3), "end_s": round(b, 3), "label": names[int(p.argmax())],
                   "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)}}
                  for (a, b), p in zip(spans, probs, strict=True)],
    }
