"""The waveform recipe end to end on tiny synthetic corpora: fit, leave one corpus out, predict, TFLite,
the robustness report."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from conftest import WAVE_RECIPE as RECIPE  # noqa: E402
from conftest import WAVE_SMALL as SMALL  # noqa: E402

from emotf import evaluate, fit  # noqa: E402
from emotf.evaluation import robustness  # noqa: E402
from emotf.features import inputs  # noqa: E402
from emotf.runs import open_run  # noqa: E402
from emotf.serving import exporter, inference  # noqa: E402


def test_the_recipe_trains_with_its_schedule_augmentations_and_no_xla(wave_run):
    cfg = json.loads((wave_run / "config.json").read_text())
    assert cfg["runtime"]["jit_compile"] is False  # auto: XLA is slower for this model (emotf.catalog)
    assert cfg["config"]["augment"] == ["gain", "tilt", "noise", "speed", "specaugment", "mixup"]
    assert cfg["input_shape"] == {"audio": [None], "audio_length": []} and cfg["records"]["features"] == "wave"
    history = json.loads((wave_run / "history.json").read_text())
    assert len(history) == 3 and all(np.isfinite(h["loss"]) and 0 <= h["val_ua"] <= 1 for h in history)
    m = json.loads((wave_run / "metrics.json").read_text())
    assert m["params"] < 1_000_000 and m["test"]["n"] > 0 and 0 <= m["test"]["most_predicted"]["share"] <= 1
    model = open_run(wave_run).load_model()
    assert "SpecAugment" in {type(x).__name__ for x in model.layers}


def test_predict_and_tflite_agree_on_a_recording(wave_run, tiny_wave_records):
    wav = sorted((tiny_wave_records["ravdess"].parents[2] / "ravdess").glob("Actor_01/03-01-05-*.wav"))[0]
    run = open_run(wave_run)
    result = inference.predict(wave_run, wav)
    assert set(result["probabilities"]) == {"happy", "sad", "angry", "neutral"} and len(result["clips"]) == 1
    x, _ = inputs.features(run, wav)
    assert x["audio"].shape[1] % 32000 == 0 and x["audio_length"][0] <= x["audio"].shape[1]
    lite = exporter.export(wave_run, "tflite")
    assert lite["max_abs_diff"] < 1e-4
    got = exporter.TFLiteRunner(lite["path"])(x)
    np.testing.assert_allclose(got[0], [result["probabilities"][n] for n in run.class_names], atol=1e-4)


def test_robustness_report_and_a_gain_never_changes_the_recipe_s_answer(wave_run, tiny_wave_records, capsys):
    rep = robustness.robustness(wave_run)
    assert set(rep["conditions"]) == {"clean", *robustness.PERTURBATIONS} and rep["utterances"] > 0
    for name in ("gain -20 dB", "gain -10 dB", "gain +10 dB"):  # level-invariant features, end to end
        assert rep["conditions"][name]["unchanged"] == 1.0, name
    assert rep["conditions"]["clean"]["ua"] == pytest.approx(json.loads((wave_run / "metrics.json").read_text())[
        "test"]["utterance"]["ua"], abs=1e-6)  # from the audio again: the same answers as from the records
    assert (wave_run / "eval" / "ravdess-wave-test-robustness.json").is_file()
    assert evaluate.main([str(wave_run), "--records", str(tiny_wave_records["ravdess"]), "--robustness"]) == 0
    out = capsys.readouterr().out
    assert "| gain -20 dB |" in out and "most predicted:" in out


def test_leave_one_corpus_out(tiny_wave_records, tmp_path):
    rav, iem = tiny_wave_records["ravdess"], tiny_wave_records["iemocap"]
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(SMALL))
    out = tmp_path / "loco"
    assert fit.main([*RECIPE, "--records", f"{rav},{iem}", "--test-corpus", "iemocap", "--out", str(out),
                     "--epochs", "1", "--hparams", str(hp)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    split = cfg["split"]
    assert split["scheme"] == "leave-one-corpus-out (iemocap)"
    assert all(u.startswith("iemocap/") for u in split["test"])
    assert not any(u.startswith("iemocap/") for u in split["train"] + split["val"])
    assert cfg["counts"]["test"] == {k: v for k, v in cfg["counts"]["test"].items()} and sum(
        cfg["counts"]["test"].values()) == json.loads((Path(iem) / "manifest.json").read_text())["records"]
    assert fit.main([*RECIPE, "--records", str(rav), "--test-corpus", "iemocap", "--out", str(tmp_path / "x")]) == 2


def test_records_at_8_khz_train_a_front_end_at_8_khz(tiny_wave_records, tmp_path):
    """The records' sample rate reaches the model: its log-mel layer is built for 8 kHz (the same 25-ms frames
    and 10-ms hop, the band up to 3.9 kHz), and prediction converts a 16-kHz file to it."""
    from emotf import models, preprocess
    from emotf.models.layers import LogMel

    data = tiny_wave_records["ravdess"].parents[2] / "ravdess"
    assert preprocess.main(["--corpus", "ravdess", "--data", str(data), "--out", str(tmp_path / "records"),
                            "--variant", "wave", "--classes", "4", "--sample-rate", "8000", "--workers", "1",
                            "--no-progress"]) == 0
    records = tmp_path / "records" / "ravdess" / "wave-8k"
    assert json.loads((records / "manifest.json").read_text())["sample_rate_hz"] == 8000
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(SMALL))
    out = tmp_path / "run"
    assert fit.main([*RECIPE, "--records", str(records), "--out", str(out), "--epochs", "1", "--max-steps-per-epoch",
                     "2", "--hparams", str(hp)]) == 0
    front = next(layer for layer in open_run(out).load_model().layers if isinstance(layer, LogMel))
    assert (front.sample_rate, front.frame, front.hop, front.n_fft, front.fmax_hz) == (8000, 200, 80, 256, 3900.0)
    wav = sorted(data.glob("Actor_01/*.wav"))[0]
    x, spans = inputs.features(open_run(out), wav)
    assert spans[0][1] == pytest.approx(x["audio_length"][0] / 8000)
    assert set(inference.predict(out, wav)["probabilities"]) == {"happy", "sad", "angry", "neutral"}
    with pytest.raises(ValueError, match="whisper_tiny hears 16000 Hz audio.*--sample-rate 16000"):
        models.build("whisper_tiny", {"audio": (None,), "audio_length": ()}, 4, sample_rate=8000)


def test_reports_of_other_records_of_one_name_never_replace_each_other(wave_run, tiny_wave_records, tmp_path):
    import shutil

    from emotf.evaluation import rescore

    own = tiny_wave_records["ravdess"]
    elsewhere = tmp_path / "ravdess" / "wave"  # the same corpus and folder name, another copy
    shutil.copytree(own, elsewhere)
    first = rescore.evaluate(wave_run, own, speakers="all")
    second = rescore.evaluate(wave_run, elsewhere, speakers="all")
    again = rescore.evaluate(wave_run, own, speakers="all")
    assert first["written_to"] == again["written_to"] != second["written_to"]
    assert Path(first["written_to"]).name == "ravdess-wave-all.json"
    assert json.loads(Path(second["written_to"]).read_text())["records"] == str(elsewhere)
