"""Train-step speed per architecture: samples/s of the optimiser step alone, on in-memory batches.

    python bench/train.py                                   # every arch, batch 64, as emotf.fit runs it here
    python bench/train.py --archs cnn_rnn crnn --jit-compile on off
    python bench/train.py --mixed-precision off on          # float32 vs mixed_float16 (a GPU; slower on CPU)

Each (arch, XLA, precision) runs in a fresh process (the dtype policy is
global) that builds the model with its ``emotf.models`` builder, compiles it
as ``emotf.fit`` does (AdamW, cross-entropy, WA/UA metrics), runs a warm-up
step (tracing, XLA compilation) and then times ``--steps`` steps (from a callback: the
time between the ends of consecutive steps, median; not the wall time of ``fit``, which
can sit idle for seconds after its last step) of
``Model.fit`` over one repeated batch of stored 200x300x1 uint8 spectrograms
(and 20x60x100x3 uint8 frame stacks), as the records hold them, or for the
waveform model 3-s waveforms (``--crop-s``, its training crops, SpecAugment
on), so no input pipeline is in the figure (bench/pipeline.py measures that).
Prints a table and writes JSON to bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import RESULTS, peak_rss_mb, print_table, write_json

from emotf.config import SPEC_SHAPE, VIDEO_SHAPE

SHAPES = {"audio": (*SPEC_SHAPE, 1), "video": (*VIDEO_SHAPE, 3)}  # the builders' defaults


def measure(arch: str, *, batch_size: int, steps: int, jit_compile: str, mixed_precision: str,
            num_classes: int = 4, crop_s: float = 3.0) -> dict:
    """One configuration, in this process: {"samples_per_s", "step_ms", "compile_s", ...}."""
    import keras
    import numpy as np
    import tensorflow as tf

    from emotf import models
    from emotf.catalog import ARCHS
    from emotf.training import runtime
    from emotf.training.objectives import compile_classifier

    rt = runtime.configure(mixed_precision=mixed_precision, jit_compile=jit_compile, arch=arch)
    modality = ARCHS[arch].modality
    waveform = {"audio": (None,), "audio_length": ()}
    shape = waveform if modality == "waveform" else (SHAPES if modality == "av" else SHAPES[modality])
    model, _ = models.build(arch, shape, num_classes, augment=("specaugment",))
    compile_classifier(model, num_classes=num_classes, lr=1e-4, weight_decay=0.01, jit_compile=rt.jit_compile)
    rng = np.random.default_rng(0)

    def batch(s):
        return rng.integers(0, 256, (batch_size, *s), dtype=np.uint8)

    if modality == "waveform":
        samples = int(crop_s * 16000)
        x = {"audio": (rng.standard_normal((batch_size, samples)) * 0.1).astype(np.float32),
             "audio_length": np.full(batch_size, samples, np.int32)}
    else:
        x = {k: batch(s) for k, s in SHAPES.items()} if modality == "av" else batch(shape)
    y = rng.integers(0, num_classes, batch_size).astype(np.int32)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()

    class StepClock(keras.callbacks.Callback):
        """When each training step ended."""

        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    clock = StepClock()
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, callbacks=[clock])
    compile_s = clock.ends[0] - t0
    clock.ends.clear()
    model.fit(ds, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=[clock])
    # The time between the ends of consecutive steps: the step itself. Not the wall time of fit, which
    # after the last step can sit idle for up to ~10 s before returning (docs/benchmarks.md).
    gaps = sorted(b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False))
    step_s = gaps[len(gaps) // 2]
    return {"arch": arch, "params": model.count_params(), "batch": batch_size, "steps": steps,
            "xla": rt.jit_compile, "policy": rt.policy, "device": rt.devices[0],
            "first_step_s": round(compile_s, 1), "step_ms": round(1000 * step_s, 1),
            "step_ms_min_max": [round(1000 * gaps[0], 1), round(1000 * gaps[-1], 1)],
            "samples_per_s": round(batch_size / step_s, 2), "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from emotf.catalog import ARCHS

    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed steps after the warm-up step")
    p.add_argument("--jit-compile", nargs="+", default=["auto"], choices=["auto", "on", "off"])
    p.add_argument("--mixed-precision", nargs="+", default=["auto"], choices=["auto", "on", "off"])
    p.add_argument("--crop-s", type=float, default=3.0, help="waveform model: seconds per training sample")
    p.add_argument("--json", default=str(RESULTS / "train.json"))
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        arch, jit, mp = a.child.split(",")
        print(json.dumps(measure(arch, batch_size=a.batch_size, steps=a.steps, jit_compile=jit, mixed_precision=mp,
                                 crop_s=a.crop_s)))
        return 0
    rows = []
    for arch in a.archs:
        for jit in a.jit_compile:
            for mp in a.mixed_precision:
                cmd = [sys.executable, __file__, "--child", f"{arch},{jit},{mp}", "--batch-size", str(a.batch_size),
                       "--steps", str(a.steps), "--crop-s", str(a.crop_s)]
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"bench/train.py: {arch} (XLA {jit}, mixed precision {mp}) failed")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{arch}: {row['samples_per_s']} samples/s ({row['policy']}, XLA {row['xla']})", flush=True)
    print()
    print_table(rows, ["arch", "params", "policy", "xla", "batch", "first_step_s", "step_ms", "samples_per_s",
                       "peak_rss_mb", "device"])
    write_json(a.json, {"runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
