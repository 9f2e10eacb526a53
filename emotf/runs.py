"""Reading a finished run folder back: its configuration, model and record settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Run:
    path: Path
    config: dict[str, Any]

    @property
    def arch(self) -> str:
        return self.config["config"]["arch"]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.config["class_names"])

    @property
    def modality(self) -> str:
        arch = self.arch
        return "av" if arch == "av" else ("video" if arch == "video_3dcnn" else "audio")

    @property
    def colormap(self) -> str:
        return self.config["config"].get("colormap", "seismic")

    @property
    def preprocess(self) -> dict[str, Any]:
        return self.config["records"]["preprocess"]

    def load_model(self):
        """The selected model (``model.keras``), uncompiled."""
        import keras

        import emotf.layers  # noqa: F401  (registers the custom objects)
        import emotf.losses  # noqa: F401
        import emotf.metrics  # noqa: F401

        path = self.path / "model.keras"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no model; the run has not finished training")
        return keras.saving.load_model(str(path), compile=False)


def open_run(path: str | Path) -> Run:
    """A run folder written by ``python -m emotf.fit``.

    Raises:
        FileNotFoundError: not a run folder.
    """
    path = Path(path)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{cfg}: not a run folder of python -m emotf.fit (no config.json)")
    return Run(path, json.loads(cfg.read_text()))
