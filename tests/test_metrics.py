import numpy as np
import pytest

from emotf.evaluation import metrics


def test_report_hand_computed():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 1]
    rep = metrics.report(y_true, y_pred, ["a", "b", "c"])
    assert rep["wa"] == pytest.approx(5 / 8)
    assert rep["ua"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert rep["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    p = {"a": 3 / 4, "b": 1 / 3, "c": 1.0}
    r = {"a": 3 / 4, "b": 1 / 2, "c": 1 / 2}
    f1 = [2 * p[k] * r[k] / (p[k] + r[k]) for k in "abc"]
    assert rep["macro_f1"] == pytest.approx(np.mean(f1))
    assert rep["per_class"]["b"]["support"] == 2


def test_absent_classes_are_left_out_of_ua():
    rep = metrics.report([0, 0, 1], [0, 2, 1], ["a", "b", "c"])
    assert rep["absent_classes"] == ["c"]
    assert rep["ua"] == pytest.approx((0.5 + 1.0) / 2)


def test_streaming_ua_equals_the_report():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    probs = rng.random((50, 4)).astype("float32")
    m = metrics.UnweightedAccuracy(4)
    m.update_state(y[:20], probs[:20])
    m.update_state(y[20:], probs[20:])
    assert float(m.result()) == pytest.approx(metrics.report(y, probs.argmax(1), list("abcd"))["ua"], rel=1e-6)
    m.reset_state()
    assert float(m.result()) == 0.0
    again = keras.metrics.deserialize(keras.metrics.serialize(metrics.UnweightedAccuracy(3)))
    assert again.num_classes == 3
