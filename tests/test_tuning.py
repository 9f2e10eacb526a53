"""Search spaces (defaults = the paper), tiny searches of each tuner, resume, memory, distributed mode."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from emotf.tuning import hypermodels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER_OPT = {"lr": 1e-4, "weight_decay": 0.01}
WAVE = {"audio": (None,), "audio_length": ()}


@pytest.mark.parametrize("arch, values", [
    ("cnn", {"width": 1.0, "fc_units": 64, "dropout": 0.2, **PAPER_OPT}),
    ("cnn_rnn", {"width": 1.0, "rnn_units": 128, "rnn_dropout": 0.1, "fc_units": 64, "dropout": 0.2, **PAPER_OPT}),
    ("crnn", {"width": 1.0, "rnn_units": 128, "rnn_dropout": 0.1, "fc_units": 64, "dropout": 0.2, **PAPER_OPT}),
    ("cnn_lstm", {"width": 1.0, "rnn_units": 128, "rnn_dropout": 0.3, "fc_units": 64, "dropout": 0.5, **PAPER_OPT}),
    ("video_3dcnn", {"width": 1.0, "fc_units": 256, "dropout": 0.2, **PAPER_OPT}),
    ("av", {"margin": 1.0, "audio_width": 1.0, "audio_rnn_units": 128, "audio_rnn_dropout": 0.1, "embed_dim": 64,
            "video_width": 1.0, "video_fc_units": 256, "video_dropout": 0.2, "fusion_units": 64, **PAPER_OPT}),
    # emotf's own: the recipe's settings (emotf.catalog.RECIPE) and the builder's defaults
    ("logmel_cnn", {"lr": 1e-3, "weight_decay": 0.05, "width": 1.0, "norm": "mean", "fc_units": 128,
                    "dropout": 0.3}),
    ("whisper_tiny", {"lr": 1e-3, "weight_decay": 0.05, "projection": 256, "fc_units": 0, "dropout": 0.3,
                      "finetune_blocks": 0, "finetune_lr_scale": 0.1}),
])
def test_default_hp_values_are_the_papers(arch, values):
    shapes = {"audio": (200, 300, 1), "video": (20, 60, 100, 3)}
    shape = shapes if arch == "av" else (shapes["video"] if arch == "video_3dcnn" else shapes["audio"])
    shape = WAVE if arch in ("logmel_cnn", "whisper_tiny") else shape
    hm = hypermodels.get_hypermodel(arch, shape, 4)
    hp = keras_tuner.HyperParameters()
    hm.resolve(hp)
    assert hp.values == pytest.approx(values)


@pytest.mark.parametrize("arch, params", [("cnn", 1_967_756), ("cnn_rnn", 7_798_924), ("av", 13_620_748),
                                          ("logmel_cnn", 205_269)])
def test_default_configuration_builds_the_paper_model(arch, params):
    shape = {"audio": (200, 300, 1), "video": (20, 60, 100, 3)} if arch == "av" else (200, 300, 1)
    shape = WAVE if arch == "logmel_cnn" else shape
    model = hypermodels.get_hypermodel(arch, shape, 4, jit_compile=False).build(keras_tuner.HyperParameters())
    assert model.count_params() == params
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3 if arch == "logmel_cnn" else 1e-4)


def test_hypermodel_checks_fixed_facts():
    with pytest.raises(ValueError, match="covers"):
        hypermodels.AudioHyperModel("av", (48, 72, 1), 4)
    with pytest.raises(ValueError, match="num_classes"):
        hypermodels.get_hypermodel("cnn", (48, 72, 1), 1)
    with pytest.raises(ValueError, match="no search space"):
        hypermodels.get_hypermodel("resnet", (48, 72, 1), 4)


def _tune(records, out, *extra):
    from emotf import tune

    return tune.main(["--arch", "cnn", "--records", str(records), "--out", str(out), "--batch-size", "16",
                      "--max-steps-per-epoch", "2", "--quiet", "--trials-per-process", "0", *extra])


@pytest.mark.parametrize("tuner, extra, trials", [
    ("random", ["--max-trials", "2", "--max-epochs", "2"], 2),
    # the other tuners: the same command and files as random search (slow: 75 s of CPU)
    pytest.param("bayesian", ["--max-trials", "3", "--max-epochs", "1"], 3, marks=pytest.mark.slow),
    pytest.param("hyperband", ["--max-epochs", "2", "--factor", "2"], None, marks=pytest.mark.slow),
])
def test_tiny_search_writes_ranked_results_and_best_hparams(tiny_records, tmp_path, tuner, extra, trials, capsys):
    out = tmp_path / tuner
    assert _tune(tiny_records, out, "--tuner", tuner, *extra) == 0
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert rows[0].startswith("rank,trial,")
    if trials:
        assert len(rows) - 1 == trials
    uas = [float(r.split(",")[-5]) for r in rows[1:]]
    assert uas == sorted(uas, reverse=True)
    best = json.loads((out / "best_hparams.json").read_text())
    assert best["arch"] == "cnn" and set(best["hparams"]) >= {"lr", "weight_decay", "filters", "dropout"}
    assert "| rank |" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["split"]["test"] and cfg["counts"]["test"]  # the test fold is named, never read by the search
    assert _tensorboard_plugins(out / "tensorboard") >= {"hparams", "scalars"}  # the trials in the HParams view


def _tensorboard_plugins(logdir):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return {("scalars" if v.HasField("simple_value") or v.metadata.plugin_data.plugin_name == "scalars"
             else v.metadata.plugin_data.plugin_name)
            for f in logdir.rglob("events.out.tfevents.*") for e in EventFileLoader(str(f)).Load()
            for v in e.summary.value}


@pytest.mark.slow  # whole-pipeline: a search, then fit --hparams of its best (wave_run and others use --hparams)
def test_best_hparams_retrain_with_fit_and_test_once(tiny_records, tmp_path):
    from emotf import fit

    out = tmp_path / "search"
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "2", "--max-epochs", "1") == 0
    best = json.loads((out / "best_hparams.json").read_text())
    run = tmp_path / "retrain"
    assert fit.main(["--arch", "cnn", "--records", str(tiny_records), "--out", str(run), "--epochs", "1",
                     "--hparams", str(out / "best_hparams.json"), "--batch-size", "16", "--quiet"]) == 0
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["lr"] == best["hparams"]["lr"] and cfg["model"]["filters"] == best["hparams"]["filters"]
    row = (out / "results.csv").read_text().splitlines()[1].split(",")
    assert json.loads((run / "metrics.json").read_text())["params"] == int(row[-2])


class _SameSizeSpace(hypermodels.AudioHyperModel):
    """Only the learning rate varies: every trial builds the same model."""

    def resolve(self, hp):
        return ({"lr": hp.Float("lr", 1e-5, 1e-2, sampling="log"), "weight_decay": 0.01},
                {"filters": [8, 8, 8], "fc_units": 16})


def _trial_rss(out):
    return [json.loads(p.read_text())["rss_mb"]
            for p in sorted((out / "search").glob("trial_*/emotf.json"), key=lambda p: p.parent.name)]


@pytest.mark.slow  # whole-pipeline: a search over several processes; make test-slow (CI runs it)
def test_a_process_ends_after_its_trials_per_process(tiny_records, tmp_path):
    from emotf.config import TrainConfig
    from emotf.training import experiment
    from emotf.tuning import tuners

    ex = experiment.prepare(TrainConfig(arch="cnn", records=str(tiny_records), batch_size=16))
    space = _SameSizeSpace("cnn", ex.shapes, len(ex.class_names), jit_compile=False)
    tuner = tuners.make_tuner("random", space, tmp_path, max_trials=5, overwrite=True, trials_per_process=2)
    with pytest.raises(tuners.ProcessRecycle):
        tuner.search(ex.train_dataset(), steps_per_epoch=1, epochs=1, validation_data=ex.eval_dataset("val"),
                     verbose=0)
    done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(done) == len(tuner.oracle.trials) == 2  # the third trial was never created


def _spawn(args, env_extra, log):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **env_extra)
    return subprocess.Popen([sys.executable, "-m", "emotf.tune", *args], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _args(records, out, *extra):
    return ["--arch", "cnn", "--records", str(records), "--out", str(out), "--batch-size", "16",
            "--max-steps-per-epoch", "2", "--quiet", "--tuner", "random", "--max-epochs", "1", *extra]


def _wait_for_first_trial(proc, out, timeout_s: float = 240):
    """Wait until the search in ``out`` has finished its first trial (or ``proc`` ended); its trial.json."""
    deadline = time.time() + timeout_s
    first = out / "search" / "trial_0" / "trial.json"
    while time.time() < deadline and proc.poll() is None:
        if first.is_file() and json.loads(first.read_text()).get("status") == "COMPLETED":
            break
        time.sleep(0.2)
    return first


@pytest.mark.slow  # whole-pipeline: a search resumed; make test-slow (CI runs it)
def test_interrupted_search_resumes_without_redoing_finished_trials(tiny_records, tmp_path):
    out = tmp_path / "resume"
    args = _args(tiny_records, out, "--max-trials", "3")
    with open(tmp_path / "first.log", "w") as log:
        proc = _spawn(args, {}, log)
        first = _wait_for_first_trial(proc, out)
        searchers = psutil.Process(proc.pid).children(recursive=True)  # the supervised search process
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert searchers and not psutil.wait_procs(searchers, timeout=20)[1]  # it died with its supervisor
    done = first.read_text()
    assert json.loads(done)["status"] == "COMPLETED" and not (out / "results.csv").exists()
    with open(tmp_path / "second.log", "w") as log:
        assert _spawn(args, {}, log).wait(timeout=400) == 0
    assert first.read_text() == done  # the finished trial was kept, not redone
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # about 40 s of the default suite's 10 minutes; run with make test-slow
def test_search_in_a_series_of_processes_keeps_memory_bounded(tiny_records, tmp_path):
    # In one process every trial leaves its traced train function behind (about 10 MB here;
    # keras-team/keras#17458): a search of 6 trials, 2 per process, runs 3 processes whose
    # memory after their last trial is the same, and loses or repeats no trial.
    out = tmp_path / "series"
    with open(tmp_path / "series.log", "w") as log:
        assert _spawn(_args(tiny_records, out, "--max-trials", "6", "--trials-per-process", "2"), {}, log).wait(
            timeout=500) == 0, (tmp_path / "series.log").read_text()[-2000:]
    assert (tmp_path / "series.log").read_text().count("continues in a new process") == 2
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6 and len({r.split(",")[1] for r in rows[1:]}) == 6
    rss = _trial_rss(out)
    # after each process's first trial (the 1st, 3rd and 5th): what a new process starts from does not grow. Not
    # after the last: the 6th trial's model here is 8 times the others (1.5 M parameters), which alone put the
    # third process 55-65 MB above the first two, run to run
    firsts = rss[0::2]
    assert len(rss) == 6 and max(firsts) - min(firsts) < 60 and max(rss) - min(rss) < 150, rss


@pytest.mark.slow  # whole-pipeline: three tuner processes; make test-slow (CI runs it)
def test_distributed_search_chief_and_two_workers_on_loopback(tiny_records, tmp_path):
    out = tmp_path / "dist"
    args = _args(tiny_records, out, "--max-trials", "4")
    base = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("chief", "tuner0", "tuner1")]
    try:
        chief = _spawn(args, {**base, "KERASTUNER_TUNER_ID": "chief"}, logs[0])
        time.sleep(3)
        workers = [_spawn(args, {**base, "KERASTUNER_TUNER_ID": f"tuner{i}"}, logs[i + 1]) for i in range(2)]
        assert [w.wait(timeout=500) for w in workers] == [0, 0], (tmp_path / "tuner0.log").read_text()[-2000:]
        assert chief.wait(timeout=120) == 0, (tmp_path / "chief.log").read_text()[-2000:]
    finally:
        for f in logs:
            f.close()
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    ran = {json.loads(p.read_text())["tuner_id"] for p in (out / "search").glob("trial_*/emotf.json")}
    assert ran <= {"tuner0", "tuner1"} and len(ran) == 2  # both workers ran trials


@pytest.mark.slow  # whole-pipeline: two searches; make test-slow (CI runs it)
def test_a_damaged_search_folder_is_named_and_overwrite_starts_again(tiny_records, tmp_path, caplog):
    out = tmp_path / "s"
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "1", "--max-epochs", "1") == 0
    oracle = out / "search" / "oracle.json"
    oracle.write_text(oracle.read_text()[:40])  # cut short, as a kill or a full disk leaves it
    caplog.set_level("ERROR", logger="emotf")
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "2", "--max-epochs", "1") == 2
    assert f"{oracle}: damaged" in caplog.text and "--overwrite" in caplog.text
    (out / "config.json").write_text("{")
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "2", "--max-epochs", "1") == 2
    assert f"{out / 'config.json'}: damaged" in caplog.text
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "1", "--max-epochs", "1",
                 "--overwrite") == 0


@pytest.mark.slow  # whole-pipeline: a search killed and resumed; make test-slow (CI runs it)
def test_a_killed_search_process_is_said_and_the_same_command_resumes(tiny_records, tmp_path):
    out = tmp_path / "killed"
    args = _args(tiny_records, out, "--max-trials", "2")
    with open(tmp_path / "first.log", "w") as log:
        proc = _spawn(args, {}, log)
        _wait_for_first_trial(proc, out)
        searchers = psutil.Process(proc.pid).children(recursive=True)
        assert searchers
        for p in searchers:
            p.kill()  # the search process, not its supervisor: as the OOM killer would
        assert proc.wait(timeout=60) == 2
    text = (tmp_path / "first.log").read_text()
    assert "was killed (SIGKILL" in text and "run the same command again to resume" in text
    with open(tmp_path / "second.log", "w") as log:
        assert _spawn(args, {}, log).wait(timeout=400) == 0
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + 2


@pytest.mark.slow  # whole-pipeline: a search on two logical devices; make test-slow (CI runs it)
def test_a_search_under_a_mirrored_strategy(tiny_records, tmp_path):
    """Trials built inside KerasTuner's strategy scope (clearing the session there broke every one of them)."""
    out = tmp_path / "mirrored"
    assert _tune(tiny_records, out, "--tuner", "random", "--max-trials", "2", "--max-epochs", "1",
                 "--strategy", "mirrored") == 0
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + 2
    assert json.loads((out / "config.json").read_text())["runtime"]["strategy"] == "MirroredStrategy"
