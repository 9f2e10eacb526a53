import numpy as np
import pytest

keras = pytest.importorskip("keras")

from emotf.models.layers import PairDistance, SpectrogramColors, colormap_lut, seismic_lut  # noqa: E402


def test_pair_distance_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3)).astype("float32")
    v = rng.normal(size=(5, 3)).astype("float32")
    partner = np.array([[0, 1], [1, 4], [2, 2], [3, 0], [4, 3]], "int32")
    d = np.asarray(PairDistance()([a, v, partner]))
    want = np.linalg.norm(a[:, None, :] - v[partner], axis=-1)
    np.testing.assert_allclose(d, want, rtol=1e-5)
    assert PairDistance.from_config(PairDistance(epsilon=1e-9).get_config()).epsilon == 1e-9


def test_seismic_lut_matches_matplotlib():
    mpl = pytest.importorskip("matplotlib")
    ref = mpl.colormaps["seismic"](np.arange(256))[:, :3]
    assert np.abs(seismic_lut() - ref).max() < 1.5 / 255
    assert seismic_lut()[128] == pytest.approx([1, 1, 1], abs=0.01)  # 0 dB is white


def test_spectrogram_colors_is_the_colour_map_lookup():
    spec = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    rgb = np.asarray(SpectrogramColors()(spec))
    assert rgb.shape == (1, 16, 16, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb.reshape(256, 3), seismic_lut())
    grey = np.asarray(SpectrogramColors("gray")(spec)).reshape(256, 3)
    np.testing.assert_allclose(grey, np.repeat(np.arange(256)[:, None] / 255.0, 3, axis=1), atol=1e-6)
    with pytest.raises(ValueError, match="colormap must be one of"):
        colormap_lut("viridis")


def test_spectrogram_colors_has_no_weights_and_round_trips(tmp_path):
    inputs = keras.Input((16, 16, 1), dtype="uint8")
    model = keras.Model(inputs, SpectrogramColors("gray", name="colors")(inputs))
    assert model.count_params() == 0 and not model.weights
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.get_layer("colors").colormap == "gray"
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_spectrogram_colors_under_mixed_precision():
    layer = SpectrogramColors(dtype="mixed_float16")
    out = layer(np.full((1, 2, 2, 1), 255, np.uint8))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(out, np.float32)[0, 0, 0], seismic_lut()[255], atol=1e-3)


# --------------------------------------------------------------------------- the waveform front end

def _speechlike(n=24000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = sum(np.sin(2 * np.pi * f * t) * a for f, a in ((180, 0.3), (360, 0.2), (1100, 0.05), (2500, 0.02)))
    return (x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + rng.standard_normal(n) * 0.003).astype("float32")


def test_logmel_matches_librosa_and_a_gain_only_shifts_it():
    librosa = pytest.importorskip("librosa")
    from emotf.models.layers import LogMel, mel_filterbank

    x = _speechlike()
    layer = LogMel(floor_db=200.0)
    got = np.asarray(layer([x[None], np.array([len(x)], np.int32)]))[0]
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=160, win_length=400, window="hann", center=True)) ** 2
    want = 10 * np.log10(np.maximum(power.T @ mel_filterbank(512, 16000, 64, 50.0, 7800.0), 1e-30))
    inner = slice(3, -3)  # librosa pads the edges by reflection; the frames inside are the same
    np.testing.assert_allclose(got[inner], want[inner], atol=0.05)
    quieter = np.asarray(LogMel()([x[None] * 0.01, np.array([len(x)], np.int32)]))[0]
    louder = np.asarray(LogMel()([x[None], np.array([len(x)], np.int32)]))[0]
    np.testing.assert_allclose(louder - quieter, 40.0, atol=1e-3)  # the relative floor moves with it


def test_utterance_norm_removes_level_and_any_fixed_filter_exactly():
    from emotf.models.layers import UtteranceNorm

    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 50, 8)).astype("float32")
    frames = np.array([40], np.int32)  # the last 10 frames are padding
    offset = rng.normal(size=(1, 1, 8)).astype("float32") * 20  # a gain and a tilt/EQ: a constant per band in dB
    a = np.asarray(UtteranceNorm("mean")([x, frames]))
    b = np.asarray(UtteranceNorm("mean")([x + offset, frames]))
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(a[0, :40].mean(axis=0)).max() < 1e-5 and (a[0, 40:] == 0).all()
    v = np.asarray(UtteranceNorm("meanvar")([x * 3.0 + offset, frames]))[0, :40]
    np.testing.assert_allclose(v.std(axis=0), 1.0, atol=1e-3)
    with pytest.raises(ValueError, match="mode must be"):
        UtteranceNorm("max")


def test_spec_augment_masks_in_training_only_and_is_seeded():
    from emotf.models.layers import SpecAugment

    x = np.ones((3, 100, 64), "float32")
    frames = np.array([100, 60, 30], np.int32)
    assert np.array_equal(np.asarray(SpecAugment(seed=1)([x, frames], training=False)), x)
    a = np.asarray(SpecAugment(seed=1)([x, frames], training=True))
    b = np.asarray(SpecAugment(seed=1)([x, frames], training=True))
    np.testing.assert_array_equal(a, b)
    assert 0 < (a == 0).mean() < 0.5  # some bands and stretches masked, most kept
    zero_rows = (a == 0).all(axis=2)  # time masks: whole frames; they stay inside each utterance's 10 %
    assert zero_rows[1].sum() <= 2 * 6 and zero_rows[2].sum() <= 2 * 3


def test_attentive_pooling_ignores_the_padding():
    from emotf.models.layers import AttentiveStatsPooling

    layer = AttentiveStatsPooling(8)
    h = np.random.default_rng(2).normal(size=(1, 12, 4)).astype("float32")
    padded = np.concatenate([h, np.full((1, 5, 4), 99.0, "float32")], axis=1)
    a = np.asarray(layer([h, np.array([12], np.int32)]))
    b = np.asarray(layer([padded, np.array([12], np.int32)]))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (1, 8)
