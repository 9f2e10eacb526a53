"""The builders under a second Keras backend (JAX), where installed: build, one step, save/load."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    from emotf import models
    from emotf.models.losses import ContrastiveLoss
    from emotf.models.metrics import UnweightedAccuracy
    assert keras.backend.backend() == "jax", keras.backend.backend()
    out = {}
    rng = np.random.default_rng(0)
    spec, video = (48, 72, 1), (10, 48, 48, 3)
    tiny = {"filters": (4, 6, 8), "kernels": ((5, 5), (3, 3), (3, 3)), "fc_units": 8, "rnn_units": 8}
    x = rng.integers(0, 256, (4, *spec), dtype=np.uint8)
    y = np.array([0, 1, 2, 1])
    for arch in ("cnn_rnn", "crnn", "cnn_lstm"):
        m = models.get_builder(arch)(spec, 3, **tiny)
        m.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=[UnweightedAccuracy(3)])
        logs = m.train_on_batch(x, y, return_dict=True)
        out[arch] = {"loss": float(logs["loss"]), "params": m.count_params()}
    enc = models.build_encoders({"audio": spec, "video": video}, audio_kwargs=tiny,
                                video_kwargs={"filters": (4, 4, 4, 4), "fc_units": 16})
    s = models.build_siamese({"audio": spec, "video": video}, encoders=enc)
    s.compile(optimizer="adam", loss=ContrastiveLoss(1.0))
    xs = {"audio": x, "video": rng.integers(0, 256, (4, *video), dtype=np.uint8),
          "partner": np.array([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]], "int32")}
    out["siamese"] = float(s.train_on_batch(xs, np.tile([[1.0, 0.0, 0.0]], (4, 1)).astype("float32")))
    tf_model = keras.saving.load_model(sys.argv[1])  # saved under TensorFlow
    out["tf_saved_predictions"] = np.asarray(tf_model.predict(np.load(sys.argv[2]), verbose=0)).tolist()
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow  # whole-pipeline: every model under JAX (the GPU check trains them under JAX too); CI runs it
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX (a second Keras backend) is not installed")
def test_models_train_and_reload_under_jax(tmp_path):
    import keras

    from emotf import models

    m = models.build_cnn_rnn((48, 72, 1), 3, filters=(4, 6, 8), kernels=((5, 5), (3, 3), (3, 3)), fc_units=8,
                             rnn_units=8)
    x = np.random.default_rng(1).integers(0, 256, (2, 48, 72, 1), dtype=np.uint8)
    m.save(tmp_path / "tf.keras")
    np.save(tmp_path / "x.npy", x)
    want = np.asarray(m.predict(x, verbose=0))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "tf.keras"), str(tmp_path / "x.npy")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    for arch in ("cnn_rnn", "crnn", "cnn_lstm"):
        assert np.isfinite(out[arch]["loss"])
    assert out["cnn_rnn"]["params"] == m.count_params()
    assert np.isfinite(out["siamese"])
    np.testing.assert_allclose(out["tf_saved_predictions"], want, rtol=1e-4, atol=1e-5)
    assert keras.backend.backend() == "tensorflow"
