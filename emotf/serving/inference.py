"""The emotion of one recording (the work of ``python -m emotf.predict``).

The recording becomes the model's inputs as its records were made (`emotf.features.inputs`).
With ``--mode clips`` (the default for models trained on 3-s clips) each clip
is classified and the class probabilities are averaged; ``--mode utterance``
makes one image of the whole file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotf.features.inputs import features, model_inputs
from emotf.runs import open_run


def predict(run_dir: str | Path, audio_path: str | Path, video_path: str | Path | None = None, *,
            mode: str = "auto", side: str = "", gain_db: float | None = None, model=None) -> dict:
    """Class probabilities of one recording: {"label", "probabilities", "clips": [...]}."""
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
