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


def test_train_bench_times_the_waveform_model_on_its_crops(tmp_path):
    out = tmp_path / "train.json"
    _bench("train.py", "--archs", "logmel_cnn", "--batch-size", "2", "--steps", "1", "--crop-s", "1",
           "--json", str(out))
    (row,) = json.loads(out.read_text())["runs"]
    assert row["arch"] == "logmel_cnn" and row["params"] == 205_269 and row["xla"] is False  # auto: off for it


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
