import json

import numpy as np
import pytest
from conftest import shared

from emotf.config import AudioConfig, PreprocessConfig, VideoConfig
from emotf.features import audio, video
from emotf.features.audio import BadInputError
from emotf.records import folder

FIXED = VideoConfig(detector="fixed")


def test_frame_times_are_evenly_spaced_inside_the_span():
    t = video.span_frame_times(1.0, 4.0, 20)
    assert len(t) == 20 and t[0] > 1.0 and t[-1] < 4.0
    np.testing.assert_allclose(np.diff(t), 0.15)


@pytest.mark.parametrize("face, shape", [((10, 10, 40, 60), (240, 320)), ((0, 0, 300, 300), (240, 320)),
                                         ((300, 200, 20, 30), (240, 320))])
def test_crop_box_has_the_output_aspect_and_stays_inside(face, shape):
    x, y, w, h = video.crop_box(np.array(face, float), shape, FIXED)
    assert 0 <= x and 0 <= y and x + w <= shape[1] and y + h <= shape[0]
    assert w / h == pytest.approx(100 / 60, rel=0.05)


def test_face_stack_from_a_synthetic_ravdess_video(synth_ravdess):
    root, _ = synth_ravdess
    mp4 = sorted(root.rglob("02-01-*.mp4"))[0]
    stacks = video.span_stacks(str(mp4), [(0.0, 1.5), (1.5, 2.9)], "", VideoConfig())
    assert len(stacks) == 2
    for s in stacks:
        assert s.frames.shape == (20, 60, 100, 3) and s.frames.dtype == np.uint8
        assert s.face_found  # MTCNN finds the drawn face
        assert s.frames.std() > 10
    # The mouth moves with the voice: frames differ over time.
    assert np.abs(np.diff(stacks[0].frames.astype(int), axis=0)).max() > 50


def test_speaker_half_and_side_changes_the_crop(synth_iemocap):
    root, index = synth_iemocap
    avi = sorted(root.rglob("*.avi"))[0]
    u = index[0]
    left, right = (video.span_stacks(str(avi), [(u["start"], u["end"])], side, FIXED)[0].frames
                   for side in ("left", "right"))
    assert not np.array_equal(left, right)
    # The two halves have different background colours in the synthetic dialog.
    assert np.abs(left[:, 0, 0].astype(int).mean(0) - right[:, 0, 0].astype(int).mean(0)).max() > 5


def test_video_shorter_than_needed_is_bad_input(synth_ravdess):
    root, _ = synth_ravdess
    mp4 = sorted(root.rglob("02-01-*.mp4"))[0]
    with pytest.raises(BadInputError, match="video shorter than needed"):
        video.span_stacks(str(mp4), [(0.0, 30.0)], "", FIXED)


def test_unreadable_video_is_bad_input(tmp_path):
    junk = tmp_path / "x.avi"
    junk.write_bytes(b"junk" * 100)
    with pytest.raises(BadInputError, match="x.avi: cannot open video"):
        video.read_frames(str(junk), np.array([0.1]))


def test_encoding_round_trip():
    import cv2

    stack = np.random.default_rng(0).integers(0, 255, (20, 60, 100, 3), dtype=np.uint8)
    raw = video.encode_stack(stack, VideoConfig(encoding="raw"))
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(stack.shape), stack)
    smooth = np.repeat(np.linspace(0, 255, 100, dtype=np.uint8)[None, None, :, None], 60, 1).repeat(20, 0).repeat(3, 3)
    jpg = video.encode_stack(smooth, VideoConfig())
    back = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].reshape(smooth.shape)
    assert len(jpg) < smooth.nbytes / 5 and np.abs(back.astype(int) - smooth).max() < 12


@pytest.mark.realdata
def test_real_cremad_flv_gives_a_face_stack():
    flv = shared("cremad_sample") / "1001_DFA_HAP_XX.flv"
    (s,) = video.span_stacks(str(flv), [(0.0, 1.9)], "", VideoConfig())
    assert s.frames.shape == (20, 60, 100, 3) and s.face_found
    # A face crop: skin tones dominate the centre (red channel above blue).
    centre = s.frames[:, 20:40, 40:60].astype(float)
    assert centre[..., 0].mean() > centre[..., 2].mean()


def test_blank_frames_are_replaced_by_the_nearest_frame_with_a_picture():
    frames = [np.full((4, 6, 3), v, np.uint8) for v in (0, 3, 100, 0, 0, 150, 0)]
    out, n = video.fill_blank(frames, 24)
    assert n == 5 and [int(f[0, 0, 0]) for f in out] == [100, 100, 100, 100, 150, 150, 150]
    assert video.fill_blank(frames, 0) == (frames, 0)  # 0: kept as they are
    dark = [np.zeros((4, 6, 3), np.uint8)] * 3
    assert video.fill_blank(dark, 24) == (dark, 0)  # nothing to copy from: left for the fallback count
    with pytest.raises(ValueError, match="blank_level"):
        VideoConfig(blank_level=300)


@pytest.mark.realdata
def test_real_javanese_mp4_with_mp3_sound_and_a_black_lead_in():
    """The path predict and preprocessing share: the MP3 soundtrack of an MP4, and the face stack of a clip whose
    first 8 frames are black."""
    mp4 = shared("javanese_av") / "dataset-resize" / "02-01-03_01.mp4"
    loaded = audio.load_audio(mp4, AudioConfig())
    assert loaded.converted == "downmixed, resampled 44100->16000"
    assert loaded.samples.dtype == np.float32 and 2.0 < len(loaded.samples) / 16000 < 4.0
    assert np.sqrt(np.mean(loaded.samples ** 2)) > 0.005  # speech, not silence
    first, rest = video.span_stacks(str(mp4), [(0.0, 1.5), (1.5, 3.0)], "", VideoConfig())
    assert first.face_found and rest.face_found and first.frames.shape == (20, 60, 100, 3)
    assert first.blank_frames == 4 and rest.blank_frames == 0  # frames 1, 3, 5 and 7 fall in the lead-in (0-7)
    assert min(int(f.max()) for f in first.frames) > 100  # no black frame is stored
    kept, _ = video.span_stacks(str(mp4), [(0.0, 1.5)], "", VideoConfig(blank_level=0))[0], None
    assert kept.blank_frames == 0 and int(kept.frames[0].max()) < 24


def test_a_crop_the_face_fills_keeps_the_face_box_and_the_paper_crop_its_fingerprint(tmp_path):
    face = np.array([100.0, 50.0, 40.0, 50.0])  # x, y, w, h: a face taller than wide
    x, y, w, h = video.crop_box(face, (240, 320), VideoConfig(detector="fixed", face_crop="fill"))
    assert (w, h) == (50, 62) and abs(x + w / 2 - 120) <= 1 and abs(y + h / 2 - 75) <= 1  # the face, 25 % more
    px, py, pw, ph = video.crop_box(face, (240, 320), FIXED)
    assert pw > 2 * w and ph == h  # the paper's: as tall, widened to 100:60 around it
    # a folder made before the option resumes: its fingerprint reads back with the default crop
    paper = PreprocessConfig().output_fingerprint()
    before = {**paper, "video_config": {k: v for k, v in paper["video_config"].items() if k != "face_crop"}}
    (tmp_path / folder.FINGERPRINT).write_text(json.dumps({"config": before}))
    assert folder.read_fingerprint(tmp_path)["config"] == paper
    fill = PreprocessConfig(video_config=VideoConfig(face_crop="fill")).output_fingerprint()
    assert fill["video_config"]["face_crop"] == "fill" != paper["video_config"]["face_crop"]
    with pytest.raises(ValueError, match="face_crop"):
        VideoConfig(face_crop="tight")
