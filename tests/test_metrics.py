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
    from emotf.models.metrics import UnweightedAccuracy

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    probs = rng.random((50, 4)).astype("float32")
    m = UnweightedAccuracy(4)
    m.update_state(y[:20], probs[:20])
    m.update_state(y[20:], probs[20:])
    assert float(m.result()) == pytest.approx(metrics.report(y, probs.argmax(1), list("abcd"))["ua"], rel=1e-6)
    m.reset_state()
    assert float(m.result()) == 0.0
    again = keras.metrics.deserialize(keras.metrics.serialize(UnweightedAccuracy(3)))
    assert again.num_classes == 3


def test_a_compiled_model_of_every_architecture_reloads_after_importing_emotf_models_alone(tmp_path):
    """docs/training.md: model.keras reloads with keras.saving.load_model after `import emotf.models` (its compiled
    metrics and losses are emotf's own); in a fresh process that imports nothing else of emotf."""
    pytest.importorskip("keras")
    import subprocess
    import sys

    from emotf import models
    from emotf.catalog import ARCHS
    from emotf.training.objectives import compile_classifier

    spec, video, wave = (24, 36, 1), (10, 48, 48, 3), {"audio": (None,), "audio_length": ()}
    tiny = {"audio": {"filters": (2, 2, 2), "kernels": ((3, 3), (3, 3), (3, 3)), "fc_units": 4},
            "video": {"filters": (2, 2, 2, 2), "fc_units": 4}, "waveform": {"channels": (2, 2, 2, 2)}}
    paths = []
    for name, arch in ARCHS.items():
        if arch.modality == "av" or name == "whisper_tiny":  # av: its branches are below; whisper: test_whisper.py
            continue
        shape = {"audio": spec, "video": video, "waveform": wave}[arch.modality]
        kw = dict(tiny[arch.modality], **({"rnn_units": 4} if name in ("cnn_rnn", "cnn_lstm", "crnn") else {}))
        model, _ = models.build(name, shape, 3, **kw)
        compile_classifier(model, num_classes=3, lr=1e-3, weight_decay=0.01, jit_compile=False,
                           soft_labels=arch.modality == "waveform")
        paths.append(str(tmp_path / f"{name}.keras"))
        model.save(paths[-1])
    code = ("import sys, keras, emotf.models\n"
            "for p in sys.argv[1:]:\n"
            "    m = keras.saving.load_model(p)\n"
            "    assert m.compiled_loss is not None or m.loss is not None, p\n"
            "print('loaded', len(sys.argv) - 1)")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith(f"loaded {len(paths)}")
