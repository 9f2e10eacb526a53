"""The speed benchmarks run end to end on tiny settings and write the JSON they promise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str, timeout: int = 300) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_train_bench_times_each_architecture(tmp_path):
    out = tmp_path / "train.json"
    printed = _bench("train.py", "--archs", "cnn", "--batch-size", "2", "--steps", "1", "--jit-compile", "off",
                     "--json", str(out))
    rep = json.loads(out.read_text())
    (row,) = rep["runs"]
    assert row["arch"] == "cnn" and row["params"] == 1_967_756 and row["samples_per_s"] > 0 and row["xla"] is False
    assert row["policy"] == "float32" and "samples_per_s" in printed and rep["machine"]["cpus"] >= 1


@pytest.mark.slow  # whole-pipeline: a benchmark run (the per-architecture one stays); make test-slow (CI runs it)
def test_train_bench_times_the_waveform_model_on_its_crops(tmp_path):
    out = tmp_path / "train.json"
    _bench("train.py", "--archs", "logmel_cnn", "--batch-size", "2", "--steps", "1", "--crop-s", "1",
           "--json", str(out))
    (row,) = json.loads(out.read_text())["runs"]
    assert row["arch"] == "logmel_cnn" and row["params"] == 205_269 and row["xla"] is False  # auto: off for it


@pytest.mark.slow  # whole-pipeline: a benchmark run; make test-slow (CI runs it)
def test_pipeline_bench_compares_with_the_train_step(tiny_records, tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"runs": [{"arch": "cnn", "policy": "float32", "xla": True, "samples_per_s": 2.0}]}))
    out = tmp_path / "pipeline.json"
    _bench("pipeline.py", "--records", str(tiny_records), "--batches", "2", "--batch-size", "8",
           "--train-json", str(train), "--json", str(out))
    rep = json.loads(out.read_text())
    kinds = [r["pipeline"] for r in rep["runs"]]
    assert any("first epoch" in k for k in kinds) and any("crop, rotate" in k for k in kinds)
    assert all(r["samples_per_s"] > 0 for r in rep["runs"])
    (cmp,) = rep["against_train_step"]
    assert cmp["pipeline / train step"] == round(cmp["pipeline_samples_per_s"] / 2.0, 1)


@pytest.mark.slow  # whole-pipeline: a benchmark run with a TFLite export (test_serving exports); CI runs it
def test_latency_bench_from_wav_to_label_keras_and_tflite(tiny_records, tmp_path):
    corpus = tiny_records.parents[2] / "corpus"
    out = tmp_path / "latency.json"
    _bench("latency.py", "--archs", "cnn", "--clips", "3", "--warmup", "1", "--data", str(corpus),
           "--runs-root", str(tmp_path / "none"), "--records", str(tiny_records), "--scratch", str(tmp_path / "runs"),
           "--json", str(out))
    rows = json.loads(out.read_text())["runs"]
    assert [r["path"] for r in rows] == ["keras (wav -> label)", "tflite (wav -> label)"]
    assert all(r["clips"] == 3 and 0 < r["p50_ms"] <= r["p95_ms"] for r in rows)
    assert rows[1]["label_agreement"] == 1.0
    assert (tmp_path / "runs" / "cnn" / "model.keras").is_file()


@pytest.mark.slow  # whole-pipeline: a benchmark run; CI runs it
def test_timeline_bench_times_recordings_of_two_lengths(tiny_wave_records, tmp_path):
    corpus = tiny_wave_records["ravdess"].parents[2] / "ravdess"
    out = tmp_path / "timeline.json"
    _bench("timeline.py", "--archs", "logmel_cnn", "--minutes", "0.2", "0.5", "--data", str(corpus), "--runs-root",
           str(tmp_path / "none"), "--records", str(tiny_wave_records["ravdess"].parent / "ds2"), "--json", str(out))
    rows = json.loads(out.read_text())["runs"]
    assert [r["minutes"] for r in rows] == [0.2, 0.5] and rows[1]["windows"] > rows[0]["windows"] > 0
    assert all(r["real_time_factor"] > 0 and r["peak_rss_mb"] > 0 for r in rows)


def _gpu_check():
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu

    return gpu


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float32"])
def test_every_architecture_under_each_policy_builds_the_intended_graph(policy):
    """What the GPU check relies on: float32 variables and softmax under a mixed policy, the compute in the
    policy's type, loss scaling for float16 alone."""
    gpu = _gpu_check()
    from emotf.catalog import ARCHS

    compute = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16", "float32": "float32"}[policy]
    for arch in ARCHS:
        facts = gpu.graph_facts(gpu.build_compiled(arch, policy, 4, tiny=True))
        assert facts["variable_dtypes"] == ["float32"], (arch, facts)
        assert facts["output_dtype"] == "float32", (arch, facts)  # the softmax stays in float32
        assert compute in facts["compute_dtypes"], (arch, facts)
        assert facts["loss_scaling"] is (policy == "mixed_float16"), (arch, facts)
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # the check leaves the policy as it found it
    assert os.environ.get("KERAS_BACKEND") != "jax"  # nor the backend of the processes the tests start


def test_gpu_check_runs_end_to_end_under_jax_on_the_cpu(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # one arch, one policy (the one with loss scaling) keeps it short; the graph test above covers every pair
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--archs", "cnn", "--policies",
                           "mixed_float16", "--steps", "2", "--learn-steps", "40", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rep = json.loads((tmp_path / "gpu.json").read_text())
    assert rep["device"]["backend"] == "jax"
    (row,) = rep["rows"]
    assert row["policy"] == "mixed_float16" and row["loss_scaling"] and row["variable_dtypes"] == ["float32"]
    assert row["learns"] and row["finite"] and row["samples_per_s"] > 0 and row["last_loss"] < row["first_loss"]
    assert "| cnn | mixed_float16 | 64 |" in (tmp_path / "gpu.md").read_text()


def test_preprocess_bench_reports_cpu_time_and_the_per_core_ratio(tmp_path):
    from conftest import shared

    data = shared("ravdess_speech")
    out = tmp_path / "pre.json"
    _bench("preprocess.py", "--data", str(data), "--limit", "6", "--variants", "ds2", "--workers", "2",
           "--reference", "2", "--runners", "local", "beam", "--json", str(out))
    rep = json.loads(out.read_text())
    row, beamed = rep["runs"]
    assert (row["runner"], beamed["runner"]) == ("local", "beam")
    assert beamed["records"] == row["records"] and beamed["cpu_s"] > 0 and beamed["peak_rss_mb"] > 0
    assert row["utterances"] == 6 and row["cpu_s"] > 0 and row["clips_per_cpu_s"] == pytest.approx(6 / row["cpu_s"],
                                                                                                    rel=0.01)
    ref = rep["reference"]["reference"]
    assert ref["clips_per_cpu_s"] > 0 and row["x_reference_per_core"] == pytest.approx(
        row["clips_per_cpu_s"] / ref["clips_per_cpu_s"], abs=0.06)


@pytest.mark.slow
def test_multiworker_bench_times_a_cluster_on_loopback(tiny_records, tmp_path):
    out = tmp_path / "mw.json"
    _bench("multiworker.py", "--records", str(tiny_records), "--workers", "2", "--repeat", "1", "--epochs", "1",
           "--steps", "3", "--batch-size", "8", "--json", str(out))
    rep = json.loads(out.read_text())
    (row,) = rep["runs"]
    assert row["workers"] == 2 and row["samples_per_s"] > 0 and row["epoch_s"] == pytest.approx(
        3 * 8 / row["samples_per_s"], abs=0.006)  # both rounded
    assert rep["machine"]["cpu"] and rep["summary"][0]["vs_one_worker"] == 1.0  # the CPU with its vector flags
