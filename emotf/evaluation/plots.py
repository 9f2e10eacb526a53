"""PNG figures: a run's confusion matrix and training curves, a records folder's face crops (matplotlib, no
display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from emotf.figures import pyplot


def confusion_png(cm: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true rows, predicted columns), counts in the cells."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * k, 0.8 + 0.75 * k), dpi=120)
    im = ax.imshow(frac, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{frac[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="recall share")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def curves_png(history: Sequence[Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """Loss and WA/UA per epoch, training and validation."""
    plt = pyplot()
    epochs = [int(h["epoch"]) + 1 for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if history and key in history[0]:
            left.plot(epochs, [h[key] for h in history], style, label=key)
    for key, style in (("wa", "-"), ("ua", "-"), ("val_wa", "--"), ("val_ua", "--")):
        if history and key in history[0]:
            right.plot(epochs, [h[key] for h in history], style, label=key)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def faces_png(cells: Mapping[tuple[str, str], tuple[np.ndarray, bool]], speakers: Sequence[str],
              class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A contact sheet of face crops: one row per speaker, one column per class.

    Args:
        cells: {(speaker, class): (frames, found)}: ``frames`` (n, h, w, 3) uint8 RGB, a few frames of one
            stored face stack, shown side by side; ``found`` False where the fixed fallback box was used (the
            cell is framed in red). Missing cells stay blank.
    """
    plt = pyplot()
    rows, cols = len(speakers), len(class_names)
    sample = next(iter(cells.values()))[0] if cells else np.zeros((1, 60, 100, 3), np.uint8)
    n, h, w = sample.shape[:3]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * n * w / 100 * 0.9 + 0.8, rows * h / 100 * 0.9 + 0.6),
                             dpi=100, squeeze=False)
    for i, spk in enumerate(speakers):
        for j, name in enumerate(class_names):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if (spk, name) in cells:
                frames, found = cells[(spk, name)]
                ax.imshow(np.concatenate(list(frames), axis=1))
                if not found:
                    for side in ax.spines.values():
                        side.set_color("red")
                        side.set_linewidth(3)
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel(spk, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return Path(path)
