"""The pretrained encoder's inference throughput: emotf's Keras Whisper encoder against CTranslate2 on the same window.

    python bench/encoder.py [--windows 3 10] [--batch 8] [--repeat 3] [--threads 2]

For each window length, one batch of RAVDESS speech (the start of each clip, zero-padded to the
window; random speech-like noise where ../shared/data is absent) goes through Whisper's log-mel
(emotf's `WhisperLogMel`, timed apart) and then through the encoder:

* **keras**: `emotf.models.whisper.build_whisper_encoder_model` (TensorFlow backend, float32, the
  compiled ``predict`` function called on the batch, all layers' states out);
* **ctranslate2**: ``ctranslate2.models.Whisper.encode`` on the same features (float32 compute,
  ``--threads`` intra-op threads), the optimised reference.

The two are timed alternately, ``--repeat`` rounds, after a warm-up; the figure is the median
utterances per second (the work itself, not the process start). Prints a table and writes
bench/results/encoder.json. ctranslate2 is in the ``dev`` extra.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import RESULTS, machine, print_table, ravdess_files, write_json


def speech(n: int, batch: int) -> np.ndarray:
    """(batch, n) float32: the start of ``batch`` RAVDESS clips, zero-padded; synthetic noise without the data."""
    files = ravdess_files(limit=batch)
    out = np.zeros((batch, n), np.float32)
    if not files:
        rng = np.random.default_rng(0)
        out[:] = 0.05 * rng.standard_normal((batch, n)).astype(np.float32)
        return out
    import soundfile as sf

    for i, f in enumerate(files[:batch]):
        x, _ = sf.read(f, dtype="float32")
        out[i, :min(n, len(x))] = x[:n]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/encoder.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--windows", type=float, nargs="+", default=[3.0, 10.0], help="window lengths, seconds")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="ctranslate2's intra-op threads")
    p.add_argument("--out", default=str(RESULTS / "encoder.json"))
    args = p.parse_args(argv)

    import ctranslate2
    import keras

    from emotf.models.whisper import WhisperLogMel, build_whisper_encoder_model
    from emotf.pretrained import whisper_weights_path

    encoder = build_whisper_encoder_model()
    front = WhisperLogMel()
    reference = ctranslate2.models.Whisper(str(whisper_weights_path().parent), device="cpu", compute_type="float32",
                                           intra_threads=args.threads)
    rows = []
    for window in args.windows:
        n = int(round(window * 16000))
        x = {"audio": speech(n, args.batch), "audio_length": np.full(args.batch, n, np.int32)}
        mel = np.asarray(front([x["audio"], x["audio_length"]]))
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.transpose(0, 2, 1)))

        def run_keras(x=x):
            encoder.predict_on_batch(x)

        def run_reference(features=features):
            reference.encode(features, to_cpu=True)

        def run_front(x=x):
            keras.ops.convert_to_numpy(front([x["audio"], x["audio_length"]]))

        timed = {"keras": [], "ctranslate2": [], "front end": []}
        for fn in (run_keras, run_reference, run_front):  # warm-up: tracing, thread pools
            fn()
        for _ in range(args.repeat):
            for name, fn in (("keras", run_keras), ("ctranslate2", run_reference), ("front end", run_front)):
                t0 = time.perf_counter()
                fn()
                timed[name].append(args.batch / (time.perf_counter() - t0))
        keras_rate, ref_rate = statistics.median(timed["keras"]), statistics.median(timed["ctranslate2"])
        rows.append({"window_s": window, "batch": args.batch, "keras_utt_per_s": round(keras_rate, 1),
                     "ctranslate2_utt_per_s": round(ref_rate, 1), "keras_vs_ctranslate2": round(keras_rate / ref_rate,
                                                                                                 2),
                     "front_end_utt_per_s": round(statistics.median(timed["front end"]), 1),
                     "rounds": {k: [round(v, 1) for v in vs] for k, vs in timed.items()}})
    print_table(rows, ["window_s", "batch", "keras_utt_per_s", "ctranslate2_utt_per_s", "keras_vs_ctranslate2",
                       "front_end_utt_per_s"])
    path = write_json(args.out, {"command": "python bench/encoder.py " + " ".join(argv or []),
                                 "machine": machine(), "ctranslate2": ctranslate2.__version__, "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
