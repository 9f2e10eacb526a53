"""Serving: predict, Keras and TFLite on the same stored input; run folders made before the colour-map layer."""

import json
import logging
import os
import shutil

import numpy as np
import pytest
from conftest import shared

pytest.importorskip("tensorflow")

from emotf import export, fit, predict  # noqa: E402
from emotf.features import inputs  # noqa: E402
from emotf.runs import open_run  # noqa: E402
from emotf.serving import exporter, inference  # noqa: E402

TINY_CNN = {"filters": [4, 4, 4], "fc_units": 8}


@pytest.fixture(scope="module")
def real_ravdess_run(tmp_path_factory):
    """A one-step cnn run on real RAVDESS records at the default 200x300 size (3 actors, 4 clips each)."""
    from emotf import preprocess

    src = shared("ravdess_speech")
    root = tmp_path_factory.mktemp("real")
    corpus = root / "corpus"
    for actor in ("Actor_01", "Actor_02", "Actor_03"):
        (corpus / actor).mkdir(parents=True)
        for f in sorted((src / actor).glob("03-01-0[1-5]-01-01-01-*"))[:4]:
            (corpus / actor / f.name).symlink_to(f)
    assert preprocess.main(["--corpus", "ravdess", "--data", str(corpus), "--out", str(root / "records"),
                            "--variant", "ds2", "--workers", "2", "--no-progress"]) == 0
    hp = root / "hp.json"
    hp.write_text(json.dumps(TINY_CNN))
    out = root / "run"
    assert fit.main(["--arch", "cnn", "--records", str(root / "records" / "ravdess" / "ds2"), "--out", str(out),
                     "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "4", "--hparams", str(hp),
                     "--jit-compile", "off", "--quiet"]) == 0
    return out, src


@pytest.mark.realdata
def test_predict_keras_and_tflite_agree_on_a_real_ravdess_clip(real_ravdess_run, capsys):
    run_dir, src = real_ravdess_run
    assert export.main([str(run_dir), "--format", "tflite"]) == 0
    lite = run_dir / "export" / "model.tflite"
    runner = exporter.TFLiteRunner(lite)
    assert runner.num_threads == os.cpu_count()  # TFLite alone would use one thread
    assert exporter.TFLiteRunner(lite, num_threads=1).num_threads == 1
    (spec,) = runner.inputs
    assert spec["dtype"] == np.uint8 and tuple(spec["shape"][1:]) == (200, 300, 1)  # the stored spectrogram
    clip = sorted((src / "Actor_10").glob("03-01-05-02-*"))[0]  # an actor the model never saw
    x, spans = inputs.features(open_run(run_dir), clip)
    assert x["audio"].dtype == np.uint8 and x["audio"].shape == (len(spans), 200, 300, 1)
    keras_probs = open_run(run_dir).load_model().predict(x["audio"], verbose=0)
    lite_probs = runner([x["audio"]])
    np.testing.assert_allclose(lite_probs, keras_probs, atol=1e-4)
    result = inference.predict(run_dir, clip)
    np.testing.assert_allclose([c["probabilities"][n] for c in result["clips"] for n in open_run(run_dir).class_names],
                               keras_probs.ravel(), atol=1e-5)
    assert predict.main([str(run_dir), str(clip)]) == 0 and result["label"] in capsys.readouterr().out


@pytest.mark.realdata
def test_predict_an_av_model_on_a_real_javanese_clip_with_its_face_video(real_javanese_records, tmp_path, capsys):
    """``predict RUN clip.mp4 --video clip.mp4``: the MP3 soundtrack and the face video of one real MP4."""
    records, src = real_javanese_records
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**{f"audio_{k}": v for k, v in TINY_CNN.items()},
                              "video_filters": [4, 4, 4, 4], "video_fc_units": 8}))
    run_dir = tmp_path / "av"
    assert fit.main(["--arch", "av", "--audio-arch", "cnn", "--records", str(records), "--split", "lospo",
                     "--out", str(run_dir), "--epochs", "1", "--pretrain-epochs", "0", "--max-steps-per-epoch", "1",
                     "--batch-size", "4", "--hparams", str(hp), "--quiet"]) == 0
    capsys.readouterr()
    clip = src / "10-02-06_01.mp4"  # a speaker and an emotion the model never saw
    assert predict.main([str(run_dir), str(clip), "--video", str(clip), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (only,) = result if isinstance(result, list) else [result]
    assert only["label"] in ("neutral", "happy") and len(only["clips"]) >= 1
    for c in only["clips"]:
        assert abs(sum(c["probabilities"].values()) - 1) < 1e-4
    x, spans = inputs.features(open_run(run_dir), clip, clip)
    assert x["video"].shape == (len(spans), 20, 60, 100, 3) and x["audio"].shape == (len(spans), 200, 300, 1)
    assert min(int(f.max()) for f in x["video"].reshape(-1, 60, 100, 3)) > 24  # faces, no black lead-in
    assert predict.main([str(run_dir), str(clip)]) == 2  # the face video is needed: said
    # --timeline with --video: each window's face stacks from the same span of the video
    from emotf.serving import timeline as tl

    cfg = tl.TimelineConfig(window_s=3.0, hop_s=0.5)
    t = tl.timeline(run_dir, clip, video=clip, cfg=cfg)
    assert t.windows and all(w["face_found"] == 1.0 and w["label"] for w in t.windows)
    import cv2  # a video of the same length that shows no face: its windows are marked, not scored

    blank = tmp_path / "wall.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 25, (360, 270))
    for _ in range(int(25 * t.duration_s) + 25):
        writer.write(np.full((270, 360, 3), 128, np.uint8))
    writer.release()
    wall = tl.timeline(run_dir, clip, video=blank, cfg=cfg)
    assert [w["start_s"] for w in wall.windows] == [w["start_s"] for w in t.windows]
    assert all(w["face_found"] == 0.0 and w["label"] == "" and w["happy"] is None for w in wall.windows)
    assert wall.segments == [] and wall.summary() == {}
    out = tmp_path / "tl"
    assert predict.main([str(run_dir), str(clip), "--timeline", "--video", str(blank), "--out", str(out)]) == 0
    assert "face_found" in (out / "timeline.csv").read_text().splitlines()[0]


def test_a_run_folder_whose_model_takes_rgb_images_still_loads_and_predicts(tiny_records, tmp_path, caplog):
    from emotf import models

    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(TINY_CNN))
    run_dir = tmp_path / "run"
    assert fit.main(["--arch", "cnn", "--records", str(tiny_records), "--out", str(run_dir), "--epochs", "1",
                     "--max-steps-per-epoch", "1", "--batch-size", "8", "--hparams", str(hp), "--colormap", "gray",
                     "--jit-compile", "off", "--quiet"]) == 0
    # The same weights in a model of the old contract: a (48, 72, 3) image in [0, 1], coloured outside.
    current = open_run(run_dir).load_model()
    old = models.build_cnn((48, 72, 3), len(open_run(run_dir).class_names), colormap=None, **TINY_CNN)
    old.set_weights(current.get_weights())
    legacy = tmp_path / "legacy"
    shutil.copytree(run_dir, legacy)
    old.save(legacy / "model.keras")
    wav = sorted((tiny_records.parents[2] / "corpus").glob("Actor_01/03-01-05-*.wav"))[0]
    caplog.set_level(logging.INFO, logger="emotf")
    want = inference.predict(run_dir, wav)
    got = inference.predict(legacy, wav)
    assert "predates the colour-map layer" in caplog.text and "gray" in caplog.text
    assert got["label"] == want["label"]
    for name, p in want["probabilities"].items():
        assert got["probabilities"][name] == pytest.approx(p, abs=1e-5)
    from emotf.evaluation import rescore

    assert rescore.evaluate(legacy, tiny_records)["ua"] == pytest.approx(rescore.evaluate(run_dir, tiny_records)["ua"])
