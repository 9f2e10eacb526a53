"""End to end on the tiny synthetic records: fit, resume, evaluate, predict, export, mirrored."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from emotf import cli, evaluate, fit, predict  # noqa: E402
from emotf.evaluation import rescore  # noqa: E402
from emotf.features import inputs  # noqa: E402
from emotf.runs import open_run, read_history  # noqa: E402
from emotf.serving import exporter, inference  # noqa: E402

FAST = ["--batch-size", "16", "--lr", "1e-3", "--quiet"]
SMALL_VIDEO = {"filters": [8, 8, 8, 8], "fc_units": 32}
ROOT = Path(__file__).resolve().parents[1]


def _fit(*args) -> int:
    return fit.main([*args, *FAST])


def _event_tags(logdir) -> set[str]:
    import tensorflow as tf

    tags = set()
    for path in Path(logdir).glob("events.out.tfevents.*"):
        for raw in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            tags |= {v.tag for v in event.summary.value}
    return tags


def _metrics(out) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


@pytest.fixture(scope="module")
def cnn_rnn_run(tiny_records, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cnn_rnn"
    assert _fit("--arch", "cnn_rnn", "--records", str(tiny_records), "--out", str(out), "--epochs", "10") == 0
    return out


def test_cnn_rnn_learns_and_writes_every_output(cnn_rnn_run):
    m = _metrics(cnn_rnn_run)
    assert m["test"]["ua"] > 0.6 and m["test"]["wa"] > 0.6  # chance is 0.25 for these four classes
    for name in ("model.keras", "config.json", "history.json", "history.csv", "metrics.json", "confusion_test.png",
                 "confusion_val.png", "curves.png", "checkpoints/best.weights.npz"):
        assert (cnn_rnn_run / name).is_file(), name
    tags = _event_tags(cnn_rnn_run / "tensorboard" / "hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "test/ua", "validation/ua"} <= tags
    assert list((cnn_rnn_run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    history = json.loads((cnn_rnn_run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(10))
    assert {"loss", "wa", "ua", "val_loss", "val_wa", "val_ua", "train_samples_per_s"} <= set(history[0])
    cfg = json.loads((cnn_rnn_run / "config.json").read_text())
    assert cfg["config"]["weight_decay"] == 0.01 and cfg["runtime"]["jit_compile"] is False  # auto, on a CPU
    assert cfg["runtime"]["policy"] == "float32"
    # which records (their digest) and which machine made the run: both decide its numbers
    manifest = json.loads((Path(cfg["records"]["root"]) / "manifest.json").read_text())
    assert cfg["records"]["digest"] == manifest["digest"] and len(manifest["digest"]) == 64
    assert cfg["versions"]["cpu"] and cfg["versions"]["numpy"]
    split = cfg["split"]
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))
    assert m["selected_epoch"] == 1 + max(range(10), key=lambda e: (history[e]["val_ua"], -e))
    for part in ("test", "validation"):
        assert set(m[part]) >= {"wa", "ua", "macro_f1", "per_class", "confusion_matrix", "utterance"}


def test_finished_run_is_not_retrained_and_other_configs_are_refused(cnn_rnn_run, tiny_records, caplog):
    before = (cnn_rnn_run / "model.keras").stat().st_mtime
    assert _fit("--arch", "cnn_rnn", "--records", str(tiny_records), "--out", str(cnn_rnn_run),
                "--epochs", "10") == 0
    assert (cnn_rnn_run / "model.keras").stat().st_mtime == before
    assert _fit("--arch", "cnn_rnn", "--records", str(tiny_records), "--out", str(cnn_rnn_run),
                "--epochs", "11") == 2
    assert "another configuration" in caplog.text


def test_evaluate_recomputes_the_test_metrics(cnn_rnn_run, tiny_records):
    rep = rescore.evaluate(cnn_rnn_run, tiny_records)
    assert rep["speakers"] == _metrics(cnn_rnn_run)["split"]["test"]
    assert rep["ua"] == pytest.approx(_metrics(cnn_rnn_run)["test"]["ua"])
    assert (cnn_rnn_run / "eval" / "ravdess-ds1-test.json").is_file()


def test_evaluate_says_where_it_wrote(cnn_rnn_run, tiny_records, capsys):
    assert evaluate.main([str(cnn_rnn_run), "--records", str(tiny_records)]) == 0
    assert f"written to {cnn_rnn_run / 'eval' / 'ravdess-ds1-test.json'}" in capsys.readouterr().out


def test_evaluate_on_other_records_restricts_to_shared_classes(cnn_rnn_run, synth_ravdess, tmp_path):
    from emotf import preprocess

    root, _ = synth_ravdess  # neutral, happy, angry only
    assert preprocess.main(["--corpus", "ravdess", "--data", str(root), "--out", str(tmp_path), "--variant", "ds1",
                            "--spec-size", "48x72", "--video", "off", "--no-progress"]) == 0
    other = tmp_path / "ravdess" / "ds1"
    rep = rescore.evaluate(cnn_rnn_run, other)
    assert rep["predicted_classes"] == ["neutral", "happy", "angry"]
    assert rep["absent_classes"] == ["sad"]
    assert evaluate.main([str(cnn_rnn_run), "--records", str(other), "--speakers", "test"]) == 2
    # A second records folder of the same variant (here: 6 dB quieter) gets its own report.
    assert preprocess.main(["--corpus", "ravdess", "--data", str(root), "--out", str(tmp_path), "--variant", "ds1",
                            "--spec-size", "48x72", "--video", "off", "--no-progress", "--gain-db", "-6"]) == 0
    rescore.evaluate(cnn_rnn_run, tmp_path / "ravdess" / "ds1-gain-6")
    reports = sorted(p.name for p in (cnn_rnn_run / "eval").glob("ravdess-ds1*-all.json"))
    assert reports == ["ravdess-ds1-all.json", "ravdess-ds1-gain-6-all.json"]


def test_predict_a_wav_with_the_preprocessing_features(cnn_rnn_run, tiny_records, capsys, caplog):
    corpus = tiny_records.parents[2] / "corpus"
    wav = sorted(corpus.glob("Actor_01/03-01-05-*.wav"))[0]  # angry
    r = inference.predict(cnn_rnn_run, wav)
    assert set(r["probabilities"]) == {"neutral", "happy", "sad", "angry"}
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert len(r["clips"]) == 1  # the model was trained on whole utterances (DS1)
    loud = inputs.features(open_run(cnn_rnn_run), wav)[0]["audio"]
    assert loud.shape == (1, 48, 72, 1) and loud.dtype == np.uint8  # the stored levels, as the records hold them
    quieter = inputs.features(open_run(cnn_rnn_run), wav, gain_db=-30.0)[0]["audio"]
    assert quieter.mean() < loud.mean() - 10  # 30 dB is 64 levels where the floor does not clip
    clips = inference.predict(cnn_rnn_run, wav, mode="clips")
    assert len(clips["clips"]) >= 1 and clips["clips"][0]["end_s"] <= 3.0 + 1e-6
    assert predict.main([str(cnn_rnn_run), str(wav)]) == 0
    assert str(wav) in capsys.readouterr().out
    bad = corpus / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt ")
    assert predict.main([str(cnn_rnn_run), str(bad)]) == 2
    assert "bad.wav" in caplog.text
    # a face video for a model that only hears: said, not ignored
    assert predict.main([str(cnn_rnn_run), str(wav), "--video", str(wav)]) == 2
    assert "hears the audio only, so --video" in caplog.text


def test_predict_names_a_damaged_model_file(cnn_rnn_run, tiny_records, tmp_path, caplog):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cnn_rnn_run, run)
    (run / "model.keras").write_bytes(b"PK\x03\x04 not a whole zip")
    wav = sorted((tiny_records.parents[2] / "corpus").glob("Actor_01/*.wav"))[0]
    assert predict.main([str(run), str(wav)]) == 2
    assert f"{run / 'model.keras'}: cannot be loaded" in caplog.text and "--overwrite" in caplog.text
    (run / "config.json").write_text("{half")
    assert predict.main([str(run), str(wav)]) == 2
    assert f"{run / 'config.json'}: damaged" in caplog.text


def test_export_saved_model_and_tflite_agree_with_keras(cnn_rnn_run):
    saved = exporter.export(cnn_rnn_run, "saved_model")
    assert saved["max_abs_diff"] < 1e-5
    lite = exporter.export(cnn_rnn_run, "tflite")
    assert Path(lite["path"]).is_file() and lite["max_abs_diff"] < 1e-4


def test_video_branch_alone_learns_from_faces(tiny_records, tmp_path):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(SMALL_VIDEO))
    out = tmp_path / "video"
    assert _fit("--arch", "video_3dcnn", "--records", str(tiny_records), "--out", str(out), "--epochs", "15",
                "--hparams", str(hp)) == 0
    m = _metrics(out)
    assert m["test"]["ua"] > 0.5  # chance 0.25: the frames reach the model
    assert json.loads((out / "config.json").read_text())["config"]["model"] == SMALL_VIDEO


def test_av_with_contrastive_pretraining_trains_end_to_end(tiny_records, tmp_path):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({f"video_{k}": v for k, v in SMALL_VIDEO.items()}))
    out = tmp_path / "av"
    assert _fit("--arch", "av", "--records", str(tiny_records), "--out", str(out), "--epochs", "3",
                "--pretrain-epochs", "2", "--hparams", str(hp)) == 0
    done = json.loads((out / "pretrain" / "done.json").read_text())
    assert done["epochs"] == 2 and all(np.isfinite(h["loss"]) for h in done["history"])
    assert (out / "pretrain" / "video_encoder.weights.h5").is_file()
    m = _metrics(out)
    assert 0.0 <= m["test"]["ua"] <= 1.0 and m["epochs_run"] == 3


def _spawn(args, log):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "emotf.fit", *args], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def test_killed_run_resumes_where_it_stopped_and_equals_an_uninterrupted_run(tiny_records, tmp_path):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"filters": [4, 4, 4], "fc_units": 8}))
    out = tmp_path / "run"
    # dropout, augmentation in the stream, early stopping: every state that carries across epochs
    common = ["--arch", "cnn", "--records", str(tiny_records), "--epochs", "6", "--hparams", str(hp),
              "--batch-size", "8", "--augment", "crop,rotate", "--patience", "5"]
    args = [*common, "--out", str(out)]
    with open(tmp_path / "first.log", "w") as log:
        proc = _spawn(args, log)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if len(read_history(out / "history.csv")) >= 2:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = len(read_history(out / "history.csv"))
    assert 2 <= done_before < 6 and not (out / "metrics.json").exists()
    with open(tmp_path / "second.log", "w") as log:
        assert _spawn(args, log).wait(timeout=300) == 0
    second = (tmp_path / "second.log").read_text()
    assert "Epoch 1/6" not in second and "Epoch 6/6" in second
    assert [h["epoch"] for h in read_history(out / "history.csv")] == list(range(6))
    assert (out / "metrics.json").is_file() and not (out / "backup").exists()
    ref = tmp_path / "uninterrupted"
    with open(tmp_path / "ref.log", "w") as log:
        assert _spawn([*common, "--out", str(ref)], log).wait(timeout=300) == 0

    def numbers(run):
        rows = [{k: v for k, v in h.items() if k != "train_samples_per_s"} for h in read_history(run / "history.csv")]
        m = _metrics(run)
        parts = ("test", "validation")
        return rows, {part: {k: m[part][k] for k in ("wa", "ua", "confusion_matrix")} for part in parts}

    assert numbers(out) == numbers(ref)  # to the last digit: same machine, same seed


@pytest.mark.slow  # whole-pipeline: training on two logical devices; make test-slow (CI runs it)
def test_mirrored_strategy_over_two_logical_cpus(tiny_records, tmp_path):
    out = tmp_path / "mirrored"
    args = ["--arch", "cnn", "--records", str(tiny_records), "--out", str(out), "--epochs", "2", "--strategy",
            "mirrored", "--logical-cpus", "2", "--batch-size", "8", "--max-steps-per-epoch", "3"]
    with open(tmp_path / "log", "w") as log:
        rc = _spawn(args, log).wait(timeout=300)
    assert rc == 0, (tmp_path / "log").read_text()[-3000:]
    rt = json.loads((out / "config.json").read_text())["runtime"]
    assert rt["strategy"] == "MirroredStrategy" and rt["replicas"] == 2 and rt["jit_compile"] is False
    assert (out / "metrics.json").is_file()


def test_hparams_values_fill_config_fields_and_flags_win(tmp_path):
    hp = tmp_path / "best_hparams.json"
    hp.write_text(json.dumps({"hparams": {"lr": 3e-4, "weight_decay": 0.02, "dropout": 0.3, "rnn_units": 64}}))
    argv = ["--arch", "cnn_rnn", "--records", "x", "--hparams", str(hp), "--weight-decay", "0.05"]
    args = fit.build_parser().parse_args(argv)
    cfg = cli.train_config(args, argv, hparams=args.hparams)
    assert cfg.lr == 3e-4 and cfg.weight_decay == 0.05
    assert cfg.model == {"dropout": 0.3, "rnn_units": 64}


def test_robustness_report_of_a_paper_model_starts_from_the_records_answers(cnn_rnn_run):
    from emotf.evaluation import robustness

    rep = robustness.robustness(cnn_rnn_run)
    assert rep["speakers"] == "test" and set(rep["conditions"]) == {"clean", *robustness.PERTURBATIONS}
    # the clean audio through the prediction path gives the answers the model gave the records
    assert rep["conditions"]["clean"]["ua"] == pytest.approx(_metrics(cnn_rnn_run)["test"]["utterance"]["ua"])
    assert all(0 <= c["unchanged"] <= 1 for c in rep["conditions"].values())


def test_a_record_damaged_mid_file_stops_fit_and_evaluate_in_one_line_naming_the_shard(
        cnn_rnn_run, tiny_records, tmp_path, caplog):
    import shutil

    root = tmp_path / "ravdess" / "ds1"
    shutil.copytree(tiny_records, root)
    victim = sorted(root.glob("*.tfrecord"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2 + 37] ^= 0xFF  # the framing stays whole: only TensorFlow's CRC, mid-epoch, sees it
    victim.write_bytes(bytes(data))
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"filters": [4, 4, 4], "fc_units": 8}))
    caplog.set_level("ERROR", logger="emotf")
    assert _fit("--arch", "cnn", "--records", str(root), "--out", str(tmp_path / "run"), "--epochs", "1",
                "--hparams", str(hp)) == 2
    assert evaluate.main([str(cnn_rnn_run), "--records", str(root), "--speakers", "all"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    for msg in errors:
        assert str(victim) in msg and "SHA-256" in msg and "python -m emotf.preprocess" in msg and "\n" not in msg
