"""Builders: shapes, the paper's parameter counts, a training step, .keras round trips."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from emotf import models  # noqa: E402

SPEC = (48, 72, 1)  # the stored spectrogram: one uint8 channel, coloured inside the model
VIDEO = (10, 48, 48, 3)
TINY_AUDIO = {"filters": (4, 6, 8), "kernels": ((5, 5), (3, 3), (3, 3)), "fc_units": 8}
TINY_VIDEO = {"filters": (4, 4, 4, 4), "fc_units": 16}


def _stored(shape, n=4, seed=0):
    """A batch of stored arrays (uint8 levels), as records and predict give them to a model."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("arch, total, trainable", [
    ("cnn", 1_967_756, 1_967_756),
    ("cnn_rnn", 7_798_924, 7_798_924),
    ("cnn_lstm", 31_046_188, 30_986_332),  # + 59,856 batch-norm moving statistics
])
def test_paper_audio_parameter_counts(arch, total, trainable):
    m = models.get_builder(arch)((200, 300, 1), 4)
    assert m.output.shape == (None, 4)
    assert m.input.dtype == "uint8" and m.get_layer("audio_colors").colormap == "seismic"
    assert m.count_params() == total
    assert _trainable(m) == trainable


def test_paper_video_and_av_parameter_counts():
    assert models.build_video_3dcnn((20, 60, 100, 3), None).count_params() == 5_813_568
    assert models.build_cnn_rnn((200, 300, 1), None).count_params() == 7_798_664  # the audio branch
    av = models.build_av({"audio": (200, 300, 1), "video": (20, 60, 100, 3)}, 4)
    assert av.count_params() == 13_620_748
    assert av.output.shape == (None, 4)


def test_reference_rnn_sees_one_step_and_crnn_sees_time():
    rnn = models.build_cnn_rnn((200, 300, 1), 4)
    assert rnn.get_layer("as_length_one_sequence").output.shape == (None, 1, 29600)
    crnn = models.build_crnn((200, 300, 1), 4)
    assert crnn.get_layer("time_steps").output.shape == (None, 37, 800)


@pytest.mark.parametrize("arch", ["cnn", "cnn_rnn", "cnn_lstm", "crnn"])
def test_audio_builder_steps_and_round_trips(arch, tmp_path):
    kw = dict(TINY_AUDIO, rnn_units=8) if arch != "cnn" else TINY_AUDIO
    m = models.get_builder(arch)(SPEC, 3, **kw)
    _step_and_round_trip(m, _stored(SPEC), tmp_path)


def test_video_builder_steps_and_round_trips(tmp_path):
    m = models.build_video_3dcnn(VIDEO, 3, **TINY_VIDEO)
    assert m.output.shape == (None, 3) and m.input.dtype == "uint8"
    _step_and_round_trip(m, _stored(VIDEO), tmp_path)


def test_av_builder_steps_and_round_trips(tmp_path):
    m = models.build_av({"audio": SPEC, "video": VIDEO}, 3, audio_kwargs=dict(TINY_AUDIO, rnn_units=8),
                        video_kwargs=TINY_VIDEO)
    x = {"audio": _stored(SPEC), "video": _stored(VIDEO, seed=1)}
    _step_and_round_trip(m, x, tmp_path)


def test_siamese_shares_encoders_with_av_and_round_trips(tmp_path):
    from emotf.models.losses import ContrastiveLoss

    shapes = {"audio": SPEC, "video": VIDEO}
    enc = models.build_encoders(shapes, audio_kwargs=dict(TINY_AUDIO, rnn_units=8), video_kwargs=TINY_VIDEO)
    siamese = models.build_siamese(shapes, encoders=enc)
    av = models.build_av(shapes, 3, encoders=enc)
    assert siamese.count_params() == sum(e.count_params() for e in enc)
    x = {"audio": _stored(SPEC), "video": _stored(VIDEO, seed=1),
         "partner": np.array([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]], "int32")}
    y = np.tile(np.array([[1.0, 0.0, 0.0]], "float32"), (4, 1))
    siamese.compile(optimizer="adam", loss=ContrastiveLoss(1.0))
    before = av.get_layer("video_encoder").get_weights()[0].copy()
    siamese.train_on_batch(x, y)
    # Pre-training moved the weights the av model uses: the encoders are shared, not copied.
    assert not np.allclose(av.get_layer("video_encoder").get_weights()[0], before)
    d = siamese.predict(x, verbose=0)
    assert d.shape == (4, 3) and (d > 0).all()
    path = tmp_path / "siamese.keras"
    siamese.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), d, rtol=1e-5, atol=1e-6)


def test_builder_arguments_change_the_model():
    small = models.build_cnn_rnn(SPEC, 4, **dict(TINY_AUDIO, rnn_units=8))
    wide = models.build_cnn_rnn(SPEC, 4, **dict(TINY_AUDIO, rnn_units=16, rnn_dropout=0.3, dropout=0.4))
    assert wide.count_params() > small.count_params()
    assert wide.get_layer("rnn1_dropout").rate == 0.3
    assert wide.get_layer("head_dropout").rate == 0.4
    with pytest.raises(ValueError, match="cell must be one of"):
        models.build_crnn(SPEC, 4, cell="transformer")
    with pytest.raises(ValueError, match="unknown architecture"):
        models.get_builder("resnet")


def test_no_lambda_layers_anywhere():
    av = models.build_av({"audio": SPEC, "video": VIDEO}, 3, audio_kwargs=TINY_AUDIO,
                         video_kwargs={"filters": (4, 4, 4, 4)})
    names = {type(layer).__name__ for layer in av._flatten_layers()}
    assert "Lambda" not in names


def test_the_colour_map_is_inside_the_model():
    """A model fed the stored levels equals the same weights fed the coloured image (the old input)."""
    kw = dict(TINY_AUDIO, dropout=0.0)
    new = models.build_cnn(SPEC, 3, **kw)
    old = models.build_cnn((48, 72, 3), 3, colormap=None, **kw)  # an image input, coloured outside
    old.set_weights(new.get_weights())
    x = _stored(SPEC)
    rgb = models.layers.seismic_lut()[x[..., 0]]
    np.testing.assert_allclose(new.predict(x, verbose=0), old.predict(rgb, verbose=0), rtol=1e-5, atol=1e-6)
    assert new.count_params() == old.count_params()
    grey = models.build_cnn(SPEC, 3, colormap="gray", **kw)
    assert grey.get_layer("audio_colors").colormap == "gray"
    with pytest.raises(ValueError, match="one channel"):
        models.build_cnn((48, 72, 3), 3)


def test_one_build_path_for_every_architecture_in_the_catalog():
    from emotf.catalog import ARCHS

    shapes = {"audio": SPEC, "video": VIDEO, "waveform": {"audio": (None,), "audio_length": ()}}
    av_kw = {**{f"audio_{k}": v for k, v in dict(TINY_AUDIO, rnn_units=8).items()},
             **{f"video_{k}": v for k, v in TINY_VIDEO.items()}, "fusion_units": 12}
    for name, spec in ARCHS.items():
        shape = shapes if spec.modality == "av" else shapes[spec.modality]
        kw = {"audio": dict(TINY_AUDIO, **({} if name == "cnn" else {"rnn_units": 8})), "video": TINY_VIDEO,
              "av": av_kw, "waveform": {"channels": (4, 4, 4, 4)}}[spec.modality]
        kw = {"projection": 8, "attention_units": 4, "fc_units": 8} if name == "whisper_tiny" else kw
        model, encoders = models.build(name, shape, 3, colormap="gray", **kw)
        assert model.output.shape == (None, 3), name
        assert (encoders is not None) == (spec.modality == "av"), name
        if spec.modality in ("audio", "av"):
            colors = encoders[0].get_layer("audio_colors") if encoders else model.get_layer("audio_colors")
            assert colors.colormap == "gray", name
    av, (audio_enc, video_enc) = models.build("av", shapes, 3, **av_kw)
    assert av.get_layer("fusion_fc").units == 12 and video_enc.get_layer("fc").units == 16
    assert models.split_branch_kwargs({"audio_rnn_units": 8, "audio_arch": "crnn", "video_dropout": 0.1, "x": 1}) == (
        {"rnn_units": 8}, {"dropout": 0.1}, {"x": 1})


def test_models_saved_with_rgb_inputs_are_wrapped_to_take_the_stored_arrays(tmp_path):
    old = models.build_cnn((48, 72, 3), 3, colormap=None, **TINY_AUDIO)
    assert models.with_stored_inputs(models.build_cnn(SPEC, 3, **TINY_AUDIO)).input.dtype == "uint8"
    wrapped = models.with_stored_inputs(old, "seismic")
    x = _stored(SPEC)
    want = old.predict(models.layers.seismic_lut()[x[..., 0]], verbose=0)
    np.testing.assert_allclose(wrapped.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    # a two-input model of floats in [0, 1] (audio image, frames)
    a_in, v_in = keras.Input((48, 72, 3), name="audio"), keras.Input(VIDEO, name="video")
    merged = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(a_in),
                                         keras.layers.GlobalAveragePooling3D()(v_in)])
    old_av = keras.Model({"audio": a_in, "video": v_in}, keras.layers.Dense(2, activation="softmax")(merged))
    wrapped = models.with_stored_inputs(old_av, "gray")
    xs = {"audio": x, "video": _stored(VIDEO, seed=1)}
    want = old_av.predict({"audio": np.repeat(x / 255.0, 3, axis=-1), "video": xs["video"] / 255.0}, verbose=0)
    np.testing.assert_allclose(wrapped.predict(xs, verbose=0), want, rtol=1e-5, atol=1e-6)
    wrapped.save(tmp_path / "wrapped.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "wrapped.keras").predict(xs, verbose=0), want,
                               rtol=1e-5, atol=1e-6)


def _step_and_round_trip(model, x, tmp_path):
    y = np.array([0, 1, 2, 1])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy")
    first = model.train_on_batch(x, y)
    assert np.isfinite(first)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-5)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), pred, rtol=1e-5, atol=1e-6)
    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()


# --------------------------------------------------------------------------- the waveform model

WAVE = {"audio": (None,), "audio_length": ()}


def _waves(lengths, seed=0, total=None):
    rng = np.random.default_rng(seed)
    x = np.zeros((len(lengths), total or max(lengths)), "float32")
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=n) * 0.1
    return {"audio": x, "audio_length": np.array(lengths, np.int32)}


def test_logmel_cnn_is_compact_and_scores_an_utterance_alike_alone_or_padded(tmp_path):
    model, _ = models.build("logmel_cnn", WAVE, 4)
    assert model.count_params() == 205_269 < 1_000_000
    both = _waves([30000, 50000])
    alone = {"audio": both["audio"][:1, :30000], "audio_length": both["audio_length"][:1]}
    np.testing.assert_allclose(model.predict(alone, verbose=0)[0], model.predict(both, verbose=0)[0], atol=1e-5)
    quieter = dict(both, audio=both["audio"] * 0.01)  # -40 dB: the features are the same
    np.testing.assert_allclose(model.predict(quieter, verbose=0), model.predict(both, verbose=0), atol=1e-4)
    path = tmp_path / "m.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(both, verbose=0),
                               model.predict(both, verbose=0), atol=1e-6)
    y = np.array([0, 3])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(both, y))
    assert "SpecAugment" not in {type(x).__name__ for x in models.build("logmel_cnn", WAVE, 4)[0].layers}
    augmented, _ = models.build("logmel_cnn", WAVE, 4, augment=("specaugment",))
    assert "SpecAugment" in {type(x).__name__ for x in augmented.layers}
