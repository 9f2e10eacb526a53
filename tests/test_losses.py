import numpy as np
import pytest

keras = pytest.importorskip("keras")

from emotf.models.losses import ContrastiveLoss  # noqa: E402


def test_contrastive_loss_hand_computed():
    loss = ContrastiveLoss(margin=1.0, reduction="none")
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0], "float32")
    d = np.array([0.5, 2.0, 0.25, 1.0, 3.0], "float32")
    # positives: d^2; negatives: max(1 - d, 0)^2
    want = [0.25, 4.0, 0.5625, 0.0, 0.0]
    np.testing.assert_allclose(np.asarray(loss(y, d)), want, rtol=1e-6)
    mean = ContrastiveLoss(margin=2.0)(y, d)
    np.testing.assert_allclose(float(mean), np.mean([0.25, 4.0, 1.75 ** 2, 1.0, 0.0]), rtol=1e-6)


def test_negatives_closer_than_the_margin_are_pushed_apart():
    import tensorflow as tf

    loss = ContrastiveLoss(margin=1.0)
    d = tf.Variable([0.4], dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = loss(tf.constant([0.0]), d)
    grad = float(tape.gradient(value, d)[0])
    assert grad < 0  # gradient descent increases the distance of a close negative
    with tf.GradientTape() as tape:
        value = loss(tf.constant([0.0]), d + 1.0)  # beyond the margin: no force at all
    assert float(tape.gradient(value, d)[0]) == 0.0
    with tf.GradientTape() as tape:
        value = loss(tf.constant([1.0]), d)
    assert float(tape.gradient(value, d)[0]) > 0  # positives are pulled together


def test_contrastive_loss_serialises_and_validates():
    loss = ContrastiveLoss(margin=0.7)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, ContrastiveLoss) and again.margin == pytest.approx(0.7)
    with pytest.raises(ValueError, match="margin must be positive"):
        ContrastiveLoss(margin=0)
