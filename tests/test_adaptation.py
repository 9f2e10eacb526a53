"""Speaker adaptation at test time: the cut model, the mapping onto the population, the per-speaker predictions."""

import importlib.util

import numpy as np
import pytest

from emotf import pretrained

pytestmark = pytest.mark.skipif(importlib.util.find_spec(pretrained.WHISPER_MODULE) is None,
                                reason=f"{pretrained.WHISPER_PACKAGE} is not installed (make install adds it)")


@pytest.fixture(scope="module")
def model():
    from emotf.models.whisper import build_whisper_tiny

    m = build_whisper_tiny(num_classes=3, spec_augment=False, fc_units=8)
    norm = m.get_layer("stats_norm")  # a population that is not the identity, as after training
    rng = np.random.default_rng(0)
    norm.moving_mean.assign(rng.normal(size=norm.moving_mean.shape).astype("float32"))
    norm.moving_variance.assign(rng.uniform(0.5, 2.0, size=norm.moving_variance.shape).astype("float32"))
    return m


def _batch(seed, n=4, samples=8000):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    wave = np.stack([0.2 * np.sin(2 * np.pi * (120 + 40 * i + 10 * seed) * t) + 0.02 * rng.standard_normal(samples)
                     for i in range(n)]).astype(np.float32)
    return {"audio": wave, "audio_length": np.full(n, samples, np.int32)}


def test_the_model_cut_at_its_pooled_features_gives_the_same_answers(model):
    from emotf.models import adaptation

    features, head = adaptation.split(model)
    x = _batch(1)
    np.testing.assert_allclose(np.asarray(head(features(x))), model.predict(x, verbose=0), atol=1e-5)
    assert features.output.shape == (None, 5 * 768)
    from emotf.models.whisper import build_whisper_tiny

    with pytest.raises(ValueError, match="pooled-statistics head"):
        adaptation.split(build_whisper_tiny(num_classes=3, head="mix", projection=8, attention_units=4, fc_units=8))


def test_a_speakers_offset_and_scale_vanish_and_the_population_is_restored(model):
    from emotf.models import adaptation

    norm = model.get_layer("stats_norm")
    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(12, 5 * 768)).astype(np.float32)
    shifted = pooled * 3.0 + 7.0  # the same speaker, another voice level and spread in every feature
    a, b = adaptation.adapt(pooled, norm), adaptation.adapt(shifted, norm)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.mean(0), np.asarray(norm.moving_mean), atol=1e-4)
    np.testing.assert_allclose(a.std(0), np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon), rtol=1e-3)


def test_predictions_are_adapted_per_speaker_and_a_lone_utterance_is_not(model):
    import tensorflow as tf

    from emotf.evaluation import adaptation

    def dataset(seed, n):
        x = _batch(seed, n)
        meta = {"utt_id": tf.constant([f"s{seed}-{i}" for i in range(n)]), "clip": tf.zeros(n, tf.int32),
                "label_name": tf.constant(["a"] * n)}
        return [(x, tf.constant(np.arange(n) % 3), meta)]

    pred = adaptation.predict_adapted(model, {"one": dataset(1, 4), "two": dataset(2, 3), "lone": dataset(3, 1)})
    assert pred["probs"].shape == (8, 3) and list(pred["speaker"]) == ["one"] * 4 + ["two"] * 3 + ["lone"]
    np.testing.assert_allclose(pred["probs"].sum(1), 1.0, rtol=1e-5)
    plain = model.predict(_batch(1, 4), verbose=0)
    assert not np.allclose(pred["probs"][:4], plain, atol=1e-3)  # adapted
    np.testing.assert_allclose(pred["probs"][7:], model.predict(_batch(3, 1), verbose=0), atol=1e-5)  # alone: as is
    from emotf import models

    recipe, _ = models.build("logmel_cnn", {"audio": (None,)}, 3, channels=(4, 4, 4, 4))
    assert adaptation.adapted_score(recipe, None, [], None, ()) is None  # nothing to adapt: no second report
