"""``python -m emotf.predict RUN clip.wav [--video clip.mp4]``: the emotion of one recording.

    python -m emotf.predict runs/cnn_rnn-ravdess-ds2-c4-auto-f0 speech.wav
    python -m emotf.predict runs/av-... speech.wav --video face.mp4

The recording goes through exactly the feature code of preprocessing, with the
settings the model's records were made with (``emotf.audio``, ``emotf.video``).
With ``--mode clips`` (the default for models trained on 3-s clips) each clip
is classified and the class probabilities are averaged; ``--mode utterance``
makes one image of the whole file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("emotf")


def features(run, audio_path: str | Path, video_path: str | Path | None = None, *, mode: str = "auto",
             side: str = "", gain_db: float | None = None) -> tuple[dict[str, np.ndarray], list[tuple[float, float]]]:
    """Model inputs of one recording: ({"audio": (n, h, w, 3), "video": (n, f, h, w, 3)}, clip spans).

    ``gain_db`` (None: the model's records' own) shifts the spectrogram level, to bring a recording
    made at another level to the training corpus's (``python -m emotf.preprocess --measure-level``).

    Raises:
        emotf.audio.BadInputError: unreadable, silent or otherwise unusable input, naming the file.
    """
    from emotf import audio, video
    from emotf.config import PreprocessConfig

    pcfg = PreprocessConfig.from_dict(run.preprocess)
    if gain_db is not None:
        pcfg = dataclasses.replace(pcfg, audio=dataclasses.replace(pcfg.audio, gain_db=gain_db))
    segment = pcfg.segment if mode == "auto" else mode
    loaded = audio.load_audio(audio_path, pcfg.audio)
    images = audio.utterance_images(loaded.samples, pcfg.audio, mode=segment, clean=pcfg.cleanup,
                                    key=Path(audio_path).stem)
    spans = [(a, b) for _, a, b in images]
    spec = np.stack([img for img, _, _ in images])[..., None]
    if run.colormap == "seismic":
        x = {"audio": audio.seismic_lut()[spec[..., 0]]}
    else:
        x = {"audio": np.repeat(spec.astype(np.float32) / 255.0, 3, axis=-1)}
    if run.modality in ("video", "av"):
        if not video_path:
            raise ValueError(f"the {run.arch} model needs the face video: pass --video")
        stacks = video.span_stacks(str(video_path), spans, side, pcfg.video_config)
        x["video"] = np.stack([s.frames for s in stacks]).astype(np.float32) / 255.0
    return x, spans


def predict(run_dir: str | Path, audio_path: str | Path, video_path: str | Path | None = None, *,
            mode: str = "auto", side: str = "", gain_db: float | None = None, model=None) -> dict:
    """Class probabilities of one recording: {"label", "probabilities", "clips": [...]}."""
    from emotf import runs

    run = runs.open_run(run_dir)
    model = model or run.load_model()
    x, spans = features(run, audio_path, video_path, mode=mode, side=side, gain_db=gain_db)
    inputs = x if run.modality == "av" else x[run.modality]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emotf.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("audio", nargs="+", help="audio file(s): wav, flac, mp3, ... or a video's soundtrack")
    p.add_argument("--video", default="", help="face video (av and video models); one audio file only")
    p.add_argument("--mode", default="auto", choices=["auto", "utterance", "clips"],
                   help="auto: as the model's records (whole utterance or 3-s clips)")
    p.add_argument("--side", default="", choices=["", "left", "right"], help="half of the frame with the speaker")
    p.add_argument("--gain-db", type=float, default=None,
                   help="spectrogram level shift (default: the model's records'); see --measure-level of "
                        "python -m emotf.preprocess")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from emotf import runs
    from emotf.audio import BadInputError

    if args.video and len(args.audio) > 1:
        log.error("error: --video goes with a single audio file")
        return 2
    try:
        model = runs.open_run(args.run).load_model()
        results = [predict(args.run, a, args.video or None, mode=args.mode, side=args.side,
                           gain_db=args.gain_db, model=model)
                   for a in args.audio]
    except (BadInputError, ValueError, FileNotFoundError) as e:
        log.error("error: %s", e)
        return 2
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return 0
    for r in results:
        probs = "  ".join(f"{n} {p:.3f}" for n, p in sorted(r["probabilities"].items(), key=lambda kv: -kv[1]))
        print(f"{r['file']}: {r['label']}   ({probs}; {len(r['clips'])} clip(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
