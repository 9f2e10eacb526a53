"""What every figure emotf draws shares: pyplot on a file-only backend, one colour per emotion, a time axis.

Used by the run's figures (`emotf.evaluation.plots`) and the timeline of long recordings
(`emotf.serving.timeline`), so a class has the same colour in all of them.
"""

from __future__ import annotations


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported here: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# One colour per emotion, the same in every figure emotf draws (colour-blind-safe Okabe-Ito first).
CLASS_COLOURS = {"neutral": "#999999", "calm": "#56B4E9", "happy": "#E69F00", "excited": "#F0E442",
                 "sad": "#0072B2", "angry": "#D55E00", "frustrated": "#CC79A7", "fearful": "#009E73",
                 "disgust": "#6B8E23", "surprised": "#8A2BE2", "boredom": "#A0522D", "other": "#333333"}


def class_colour(name: str) -> str:
    """The colour of a class (emotf's label names; any other name gets a stable colour of its own)."""
    if name in CLASS_COLOURS:
        return CLASS_COLOURS[name]
    palette = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
    return palette[sum(map(ord, name)) % len(palette)]


def clock(seconds: float) -> str:
    """``m:ss``, ``h:mm:ss`` past an hour: every time emotf shows a person."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


def time_axis(ax, duration_s: float) -> None:
    """An x axis in `clock` time over [0, duration_s]."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlim(0, max(duration_s, 1e-3))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: clock(v)))
    ax.set_xlabel("time (m:ss)")
