import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from conftest import SHARED_DATA, tone, write_wav

from emotf.features import tf_audio as audio_tf

TFIO = audio_tf.tfio_status().usable
needs_tfio = pytest.mark.skipif(not TFIO, reason="tensorflow-io is not usable here (run `make test-tfio`)")
PATHS = [False, pytest.param(True, marks=[pytest.mark.tfio, needs_tfio])]


def test_status_says_which_path_it_takes():
    status = audio_tf.tfio_status()
    text = status.describe()
    assert text.startswith("emotf: tensorflow-io")
    assert ("is usable" in text) == status.usable
    if not status.usable:
        assert status.reason


@pytest.mark.parametrize("rate", [16000, 44100])
def test_sniff_rate_of_wav_and_flac(tmp_path, rate):
    for ext in ("wav", "flac"):
        p = write_wav(tmp_path / f"a.{ext}", tone(440, 0.2, rate), sr=rate)
        assert audio_tf.sniff_rate(p.read_bytes()[:65536]) == rate


def test_sniff_rate_of_real_mp3():
    mp3 = SHARED_DATA / "cremad_sample" / "1002_DFA_ANG_XX.mp3"
    if not mp3.is_file():
        pytest.skip("shared data absent")
    assert audio_tf.sniff_rate(mp3.read_bytes()[:65536]) == 44100


@pytest.mark.parametrize("use_tfio", PATHS)
def test_read_audio_in_a_parallel_tf_data_map_equals_soundfile(tmp_path, use_tfio):
    stereo = np.stack([tone(300, 0.5), tone(500, 0.5)], axis=1)
    files = [write_wav(tmp_path / "m.wav", tone(440, 0.7)), write_wav(tmp_path / "s.flac", stereo),
             write_wav(tmp_path / "r.wav", tone(440, 0.3, 22050), sr=22050)]
    ds = tf.data.Dataset.from_tensor_slices([str(f) for f in files]).map(
        lambda p: audio_tf.read_audio(p, use_tfio=use_tfio), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for f, (samples, rate) in zip(files, ds, strict=True):
        ref, ref_rate = sf.read(str(f), dtype="float32", always_2d=True)
        assert int(rate) == ref_rate
        np.testing.assert_allclose(samples.numpy(), ref.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("use_tfio", PATHS)
def test_read_real_mp3(use_tfio):
    mp3 = SHARED_DATA / "cremad_sample" / "1002_DFA_ANG_XX.mp3"
    if not mp3.is_file():
        pytest.skip("shared data absent")
    samples, rate = audio_tf.read_audio(tf.constant(str(mp3)), use_tfio=use_tfio)
    assert int(rate) == 44100
    assert abs(samples.shape[0] / 44100 - 2.6) < 0.1  # decoders differ by a frame of padding at most


@pytest.mark.parametrize("use_tfio", PATHS)
def test_spec_augment_masks_a_band_of_rows_and_columns(use_tfio):
    tf.random.set_seed(0)
    img = tf.fill([200, 300, 3], tf.constant(200, tf.uint8))
    out = audio_tf.spec_augment(img, freq_width=20, time_width=30, seed=tf.constant([1, 2]), use_tfio=use_tfio)
    assert out.shape == img.shape and out.dtype == img.dtype
    zero = out.numpy() == 0
    rows, cols = zero.all(axis=(1, 2)), zero.all(axis=(0, 2))
    assert rows.sum() <= 20 and cols.sum() <= 30
    assert np.array_equal(zero[..., 0], rows[:, None] | cols[None, :])  # only whole rows/columns are masked


def test_spec_augment_tf_path_is_seeded():
    img = tf.fill([50, 60, 1], tf.constant(9, tf.uint8))
    masks = [audio_tf.spec_augment(img, freq_width=10, time_width=10, seed=tf.constant([s, 0]), use_tfio=False)
             for s in (3, 3, 4, 5, 6)]
    assert np.array_equal(masks[0], masks[1])
    assert any(not np.array_equal(masks[0], m) for m in masks[2:])
