"""Builders: shapes, the paper's parameter counts, a training step, .keras round trips."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from emotf import models  # noqa: E402

SPEC = (48, 72, 3)
VIDEO = (10, 48, 48, 3)
TINY_AUDIO = {"filters": (4, 6, 8), "kernels": ((5, 5), (3, 3), (3, 3)), "fc_units": 8}


def _trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("arch, total, trainable", [
    ("cnn", 1_967_756, 1_967_756),
    ("cnn_rnn", 7_798_924, 7_798_924),
    ("cnn_lstm", 31_046_188, 30_986_332),  # + 59,856 batch-norm moving statistics
])
def test_paper_audio_parameter_counts(arch, total, trainable):
    m = models.get_builder(arch)((200, 300, 3), 4)
    assert m.output.shape == (None, 4)
    assert m.count_params() == total
    assert _trainable(m) == trainable


def test_paper_video_and_av_parameter_counts():
    assert models.build_video_3dcnn((20, 60, 100, 3), None).count_params() == 5_813_568
    assert models.build_cnn_rnn((200, 300, 3), None).count_params() == 7_798_664  # the audio branch
    av = models.build_av({"audio": (200, 300, 3), "video": (20, 60, 100, 3)}, 4)
    assert av.count_params() == 13_620_748
    assert av.output.shape == (None, 4)


def test_reference_rnn_sees_one_step_and_crnn_sees_time():
    rnn = models.build_cnn_rnn((200, 300, 3), 4)
    assert rnn.get_layer("as_length_one_sequence").output.shape == (None, 1, 29600)
    crnn = models.build_crnn((200, 300, 3), 4)
    assert crnn.get_layer("time_steps").output.shape == (None, 37, 800)


@pytest.mark.parametrize("arch", ["cnn", "cnn_rnn", "cnn_lstm", "crnn"])
def test_audio_builder_steps_and_round_trips(arch, tmp_path):
    kw = dict(TINY_AUDIO, rnn_units=8) if arch != "cnn" else TINY_AUDIO
    m = models.get_builder(arch)(SPEC, 3, **kw)
    _step_and_round_trip(m, np.random.rand(4, *SPEC).astype("float32"), tmp_path)


def test_video_builder_steps_and_round_trips(tmp_path):
    m = models.build_video_3dcnn(VIDEO, 3, filters=(4, 4, 4, 4), fc_units=16)
    assert m.output.shape == (None, 3)
    _step_and_round_trip(m, np.random.rand(4, *VIDEO).astype("float32"), tmp_path)


def test_av_builder_steps_and_round_trips(tmp_path):
    m = models.build_av({"audio": SPEC, "video": VIDEO}, 3, audio_kwargs=dict(TINY_AUDIO, rnn_units=8),
                        video_kwargs={"filters": (4, 4, 4, 4), "fc_units": 16})
    x = {"audio": np.random.rand(4, *SPEC).astype("float32"), "video": np.random.rand(4, *VIDEO).astype("float32")}
    _step_and_round_trip(m, x, tmp_path)


def test_siamese_shares_encoders_with_av_and_round_trips(tmp_path):
    from emotf.losses import ContrastiveLoss

    shapes = {"audio": SPEC, "video": VIDEO}
    enc = models.build_encoders(shapes, audio_kwargs=dict(TINY_AUDIO, rnn_units=8),
                                video_kwargs={"filters": (4, 4, 4, 4), "fc_units": 16})
    siamese = models.build_siamese(shapes, encoders=enc)
    av = models.build_av(shapes, 3, encoders=enc)
    assert siamese.count_params() == sum(e.count_params() for e in enc)
    x = {"audio": np.random.rand(4, *SPEC).astype("float32"), "video": np.random.rand(4, *VIDEO).astype("float32"),
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
