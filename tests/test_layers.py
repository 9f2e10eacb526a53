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
