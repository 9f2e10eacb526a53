"""Video: a time span of a video file becomes a (frames, 60, 100, 3) RGB uint8 face stack.

For each span (a whole utterance or one 3-s clip) 20 frames are taken at evenly
spaced times; the speaking actor's half of the frame is kept where the corpus
shows two actors; a face detector (MTCNN, whose weights ship inside its wheel)
looks at a few of the 20 frames and the median of its boxes is used for all of
them, so the crop does not jitter. Where no face is found a fixed box is used
and the fallback is counted. Blank frames (a black lead-in, as 66 of the 240
Javanese clips have for up to 0.73 s) are replaced by the nearest frame of the
stack that shows something, and counted: black frames would tell the model where
a recording starts, not what the face shows. The box is widened to the 100:60 aspect of the
output before resizing, so faces are not squashed.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from emotf.config import VideoConfig
from emotf.features.audio import BadInputError


@dataclasses.dataclass
class FaceStack:
    frames: np.ndarray  # (frames, height, width, 3) uint8 RGB
    face_found: bool  # False: the fixed fallback box was used
    blank_frames: int = 0  # frames that showed nothing, replaced by their nearest neighbour with a picture


def span_frame_times(start_s: float, end_s: float, n: int) -> np.ndarray:
    """Centres of ``n`` equal parts of [start_s, end_s): the frame sampling times."""
    return start_s + (np.arange(n) + 0.5) * (end_s - start_s) / n


def read_frames(path: str, times_s: np.ndarray) -> list[np.ndarray]:
    """Decode the frames shown at ``times_s`` (seconds of the file), as BGR arrays.

    Raises:
        BadInputError: the file cannot be opened, or it ends before the last time.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise BadInputError(path, "cannot open video (unknown format or corrupt file)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or fps <= 0 or not np.isfinite(fps):
            raise BadInputError(path, "video has no frame rate")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = np.floor(np.asarray(times_s) * fps + 1e-6).astype(int)
        if count > 0 and wanted.max() >= count:
            raise BadInputError(path, f"video shorter than needed: it has {count} frames ({count / fps:.2f} s), "
                                      f"the span needs up to {float(np.max(times_s)):.2f} s")
        first = int(wanted.min())
        # Seek only far into a file; short clips are decoded from the start (exact on every codec).
        pos = 0
        if first > 300:
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        frames: dict[int, np.ndarray] = {}
        needed = set(wanted.tolist())
        last = int(wanted.max())
        while pos <= last:
            if not cap.grab():
                raise BadInputError(path, f"video shorter than needed: decoding stopped at frame {pos} "
                                          f"({pos / fps:.2f} s), the span needs frame {last}")
            if pos in needed:
                ok, frame = cap.retrieve()
                if not ok:
                    raise BadInputError(path, f"cannot decode frame {pos}")
                frames[pos] = frame
            pos += 1
        return [frames[i] for i in wanted]
    finally:
        cap.release()


def speaker_half(frame: np.ndarray, side: str) -> np.ndarray:
    """The left or right half of a two-actor frame ("" keeps the whole frame)."""
    w = frame.shape[1]
    if side == "left":
        return frame[:, : w // 2]
    if side == "right":
        return frame[:, w // 2:]
    return frame


@functools.lru_cache(maxsize=1)
def _mtcnn():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mtcnn import MTCNN

    return MTCNN()


def detect_face_box(frames_rgb: list[np.ndarray], cfg: VideoConfig) -> tuple[np.ndarray, bool]:
    """Median (x, y, w, h) face box over ``frames_rgb``; the fixed fallback box when none is found."""
    boxes = []
    if cfg.detector == "mtcnn":
        for faces in _mtcnn().detect_faces(list(frames_rgb)):
            faces = [f for f in faces if f["confidence"] >= cfg.min_confidence]
            if faces:
                best = max(faces, key=lambda f: f["confidence"])
                boxes.append(best["box"])
    if boxes:
        return np.median(np.asarray(boxes, dtype=np.float64), axis=0), True
    return fallback_box(frames_rgb[0].shape[:2], cfg), False


def fallback_box(shape_hw: tuple[int, int], cfg: VideoConfig) -> np.ndarray:
    """A fixed head-sized box: centred, upper part of the frame (where a seated actor's head is)."""
    h, w = shape_hw
    bh = 0.45 * h
    bw = min(bh * 0.75, w)
    return np.array([(w - bw) / 2, 0.35 * h - bh / 2, bw, bh])


def crop_box(face: np.ndarray, shape_hw: tuple[int, int], cfg: VideoConfig) -> tuple[int, int, int, int]:
    """The (x, y, w, h) crop of a face box, clamped inside the frame: ``cfg.face_crop`` "paper" widens it to the
    output aspect (width:height) with a margin; "fill" keeps the face box's own shape with the margin (the
    resize to the stack then stretches it, and the face fills the frame)."""
    fh, fw = shape_hw
    x, y, w, h = face
    cx, cy = x + w / 2, y + h / 2
    ch = h * (1 + cfg.face_margin)
    cw = ch * cfg.width / cfg.height if cfg.face_crop == "paper" else w * (1 + cfg.face_margin)
    scale = min(1.0, fw / cw, fh / ch)
    cw, ch = cw * scale, ch * scale
    x0 = int(round(min(max(cx - cw / 2, 0), fw - cw)))
    y0 = int(round(min(max(cy - ch / 2, 0), fh - ch)))
    return x0, y0, max(1, int(round(cw))), max(1, int(round(ch)))


def fill_blank(frames: list[np.ndarray], level: int) -> tuple[list[np.ndarray], int]:
    """Replace each frame whose brightest pixel is below ``level`` by the nearest frame that is not blank.

    Returns:
        The frames (the same list where none is blank, or all are), and how many were replaced.
    """
    if level <= 0:
        return frames, 0
    shown = np.flatnonzero([int(f.max()) >= level for f in frames])
    if len(shown) in (0, len(frames)):
        return frames, 0
    nearest = shown[np.abs(shown[None, :] - np.arange(len(frames))[:, None]).argmin(axis=1)]
    return [frames[int(i)] for i in nearest], len(frames) - len(shown)


def face_stack(frames_bgr: list[np.ndarray], side: str, cfg: VideoConfig) -> FaceStack:
    """Crop the speaker's face out of ``frames_bgr`` into (frames, height, width, 3) RGB uint8."""
    import cv2

    frames_bgr, blank = fill_blank(frames_bgr, cfg.blank_level)
    rgb = [cv2.cvtColor(speaker_half(f, side), cv2.COLOR_BGR2RGB) for f in frames_bgr]
    probe = np.linspace(0, len(rgb) - 1, cfg.detect_frames).round().astype(int)
    face, found = detect_face_box([rgb[i] for i in probe], cfg)
    x0, y0, w, h = crop_box(face, rgb[0].shape[:2], cfg)
    out = np.stack([cv2.resize(f[y0:y0 + h, x0:x0 + w], (cfg.width, cfg.height), interpolation=cv2.INTER_AREA)
                    for f in rgb])
    return FaceStack(out, found, blank)


def span_stacks(path: str, spans: list[tuple[float, float]], side: str, cfg: VideoConfig) -> list[FaceStack]:
    """One face stack per (start_s, end_s) span of the video file, decoding the file once."""
    times = [span_frame_times(a, b, cfg.frames) for a, b in spans]
    frames = read_frames(path, np.concatenate(times))
    n = cfg.frames
    return [face_stack(frames[i * n:(i + 1) * n], side, cfg) for i in range(len(spans))]


def encode_stack(stack: np.ndarray, cfg: VideoConfig) -> bytes:
    """Frames → bytes: one JPEG "filmstrip" (frames stacked vertically) or raw uint8."""
    if cfg.encoding == "raw":
        return np.ascontiguousarray(stack, dtype=np.uint8).tobytes()
    import cv2

    strip = stack.reshape(-1, stack.shape[2], 3)[..., ::-1]  # RGB → BGR for OpenCV
    ok, buf = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
