"""What the speed benchmarks share: the machine's description, the table printer, the JSON writer."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess_speech"


# Environment variables that change which kernels run (and so the figures): recorded with every result.
KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "OMP_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES")


def machine() -> dict[str, Any]:
    """CPU count, model and vector extensions, load average, the kernel-choosing environment, Python,
    TensorFlow/Keras versions, GPUs TensorFlow sees."""
    from emotf.training.runtime import cpu_model

    info: dict[str, Any] = {"cpus": os.cpu_count(), "cpu": cpu_model(), "load_average": os.getloadavg(),
                            "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
                            "platform": platform.platform(), "python": platform.python_version()}
    if "tensorflow" in sys.modules:
        import keras
        import tensorflow as tf

        info.update(tensorflow=tf.__version__, keras=keras.__version__, backend=keras.backend.backend(),
                    gpus=[d.name for d in tf.config.list_physical_devices("GPU")])
    return info


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A fixed-width table of ``columns`` (numbers right-aligned)."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    num = [all(_is_number(r.get(c)) for r in rows) for c in columns]
    print("  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(columns, widths, num, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, num, strict=True)))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def write_json(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` (with the command line and the machine) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": " ".join(["python", *sys.argv]), "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return path


def ravdess_files(data: str | Path = RAVDESS, limit: int = 0) -> list[Path]:
    """RAVDESS speech clips (``03-01-*``), sorted; empty where the folder is absent."""
    data = Path(data)
    files = sorted(data.rglob("03-01-*.*")) if data.is_dir() else []
    return files[:limit] if limit else files
