"""emotf.records.beam: the Beam pipeline writes the local pool's records, skips what it skips, and survives kills."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import bad_corpus, shared, wait_for_shards

from emotf import preprocess
from emotf.config import PreprocessConfig, VideoConfig
from emotf.records import folder, writer

pytest.importorskip("apache_beam")
from emotf.records import beam  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IN_PROCESS = "--runner=DirectRunner --direct_running_mode=in_memory"  # one process: quick, and patches apply


def _same_records(local: dict, beamed: dict) -> None:
    assert beamed["runner"] == "beam" and local["runner"] == "local"
    assert beamed["digest"] and beamed["digest"] == local["digest"]
    assert [s["file"] for s in beamed["shards"]] == [s["file"] for s in local["shards"]]
    for key in ("records", "utterances", "per_label", "per_speaker", "skipped", "face_fallbacks", "blank_frames",
                "video_clips", "band_limited", "class_names"):
        assert beamed[key] == local[key], key


def test_beam_writes_the_local_records_with_video(synth_iemocap, tmp_path):
    """The synthetic IEMOCAP-layout corpus with face stacks, on Beam's local runner in 2 processes (MTCNN on real
    faces: the slow test below)."""
    root, _ = synth_iemocap
    cfg = PreprocessConfig(corpus="iemocap", data=str(root), variant="ds2", video_config=VideoConfig(detector="fixed"))
    local = writer.run(cfg, tmp_path / "local", workers=2, progress=False)
    beamed = writer.run(cfg, tmp_path / "beam", workers=2, progress=False, runner="beam")
    assert local["with_video"] and local["video_clips"] == local["records"] > 0
    _same_records(local, beamed)
    again = writer.run(cfg, tmp_path / "beam", progress=False, runner="beam")  # complete: nothing to redo
    assert again["shards_resumed"] == len(again["shards"]) and again["digest"] == local["digest"]


def test_beam_skips_bad_input_as_the_local_path_does_and_stops_in_strict_mode(tmp_path):
    csv = bad_corpus(tmp_path)
    cfg = PreprocessConfig(corpus="csv", data=str(csv), max_skipped=1.0)
    local = writer.run(cfg, tmp_path / "local", workers=1, progress=False)
    beamed = writer.run(cfg, tmp_path / "beam", workers=2, progress=False, runner="beam")
    assert len(beamed["skipped"]) == 4 and beamed["utterances"] == 2
    _same_records(local, beamed)  # the same reasons, once each: a deterministic failure is not retried
    clean = tmp_path / "clean.csv"
    clean.write_text("path,label,speaker\ncorpus/good.wav,sad,s1\ncorpus/silent.wav,sad,s1\n")
    with pytest.raises(writer.PreprocessError, match=r"^bad input \(strict mode\): .*silent.wav: silent audio"):
        writer.run(PreprocessConfig(corpus="csv", data=str(clean), strict=True), tmp_path / "strict",
                   progress=False, runner="beam", beam_options=IN_PROCESS)
    assert not list((tmp_path / "strict").glob("*.tfrecord*"))


def test_a_retried_shard_is_written_once_and_a_failed_attempt_leaves_nothing(synth_iemocap, tmp_path, monkeypatch):
    root, _ = synth_iemocap
    cfg = PreprocessConfig(corpus="iemocap", data=str(root), variant="ds1", video="off", shard_size=2)
    ref = writer.run(cfg, tmp_path / "ref", workers=1, progress=False)
    out = tmp_path / "out"
    utts, _ = writer._read_corpus(cfg)
    kept = [u for u in utts if u.label != "no_agreement"]
    shard = next(s for s in writer.plan_shards(kept, cfg.shard_size) if len(s.utterances) == 2)
    index = {n: i for i, n in enumerate(ref["class_names"])}
    (out / folder.SUMMARIES).mkdir(parents=True)
    fn = beam.WriteShard(cfg.to_dict(), str(out), index, False)
    fn.setup()

    calls = {"n": 0}
    real_add = writer.ShardBuilder.add

    def add_then_die(self, *args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("killed mid-shard")
        return real_add(self, *args)

    monkeypatch.setattr(writer.ShardBuilder, "add", add_then_die)
    with pytest.raises(MemoryError):
        list(fn.process((shard.name, shard.utterances)))
    assert not list(out.glob("*.tfrecord*"))  # neither the shard nor this attempt's temporary file
    assert not list((out / folder.SUMMARIES).glob("*"))  # no summary either: the shard is simply not done
    monkeypatch.setattr(writer.ShardBuilder, "add", real_add)
    assert list(fn.process((shard.name, shard.utterances))) == [shard.name]
    stamp = (out / shard.name).stat().st_mtime_ns
    assert list(fn.process((shard.name, shard.utterances))) == [shard.name]  # a duplicate attempt
    assert (out / shard.name).stat().st_mtime_ns == stamp and len(list(out.glob("*.tfrecord*"))) == 1
    assert json.loads(folder.summary_path(out, shard.name).read_text())["sha256"] == next(
        s["sha256"] for s in ref["shards"] if s["file"] == shard.name)


def test_a_beam_worker_killed_mid_bundle_ends_the_run_and_the_same_command_resumes(long_run_corpus, tmp_path):
    psutil = pytest.importorskip("psutil")
    args = [sys.executable, "-m", "emotf.preprocess", "--corpus", "ravdess", "--data", str(long_run_corpus),
            "--variant", "ds4", "--shard-size", "1", "--workers", "2", "--no-progress"]
    ref = tmp_path / "ref"
    subprocess.run(args + ["--out", str(ref)], check=True, cwd=ROOT, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--runner", "beam", "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    target = out / "ravdess" / "ds4"
    wait_for_shards(target, 3)
    workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
               if c.cmdline()[:1] != ["/bin/sh"] and "sdk_worker_main" in " ".join(c.cmdline())]
    assert workers, "no Beam worker to kill"
    workers[0].send_signal(signal.SIGKILL)  # as the kernel's OOM killer would, while it holds a bundle
    text, _ = proc.communicate(timeout=120)  # Beam's local runner alone would wait here for ever
    assert proc.returncode == 2, text
    assert text.strip().splitlines()[-1].startswith("error: a Beam worker process died"), text[-2000:]
    done = list(target.glob("*.tfrecord"))
    total = len(list((ref / "ravdess" / "ds4").glob("*.tfrecord")))
    assert 3 <= len(done) < total, "the kill came too late to test a resume"
    for shard in done:  # every file with a final name is whole: its records are the reference's
        assert folder.damaged(target, shard.name) == ""
    rerun = subprocess.run(args + ["--runner", "beam", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["shards_resumed"] >= len(done) and not list(target.glob("*.tmp"))
    assert manifest["digest"] == json.loads((ref / "ravdess" / "ds4" / "manifest.json").read_text())["digest"]


def test_cli_beam_flags(tmp_path, caplog, monkeypatch):
    assert preprocess.main(["--beam-options=--runner=DirectRunner", "--out", str(tmp_path)]) == 2
    assert "--beam-options goes with --runner beam" in caplog.records[-1].getMessage()
    opts = beam.pipeline_options("", workers=3).get_all_options()
    assert opts["runner"] == "DirectRunner" and opts["direct_num_workers"] == 3
    assert beam.pipeline_options("--runner=FlinkRunner --flink_master=h:8081").get_all_options()["flink_master"] == \
        "h:8081"
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as where the extra is not installed
    monkeypatch.delitem(sys.modules, "emotf.records.beam")
    monkeypatch.delattr(sys.modules["emotf.records"], "beam")
    with pytest.raises(writer.PreprocessError, match=r"--runner beam needs Apache Beam: pip install"):
        writer.run(PreprocessConfig(corpus="csv", data=str(bad_corpus(tmp_path)), max_skipped=1.0),
                   tmp_path / "o", progress=False, runner="beam")


@pytest.mark.slow
@pytest.mark.realdata
def test_full_ravdess_beam_records_equal_the_local_ones(tmp_path):
    cfg = PreprocessConfig(corpus="ravdess", data=str(shared("ravdess_speech")), variant="ds2")
    local = writer.run(cfg, tmp_path / "local", progress=False)
    beamed = writer.run(cfg, tmp_path / "beam", progress=False, runner="beam")
    assert beamed["utterances"] == 1440 and len(beamed["shards"]) == 24
    _same_records(local, beamed)


@pytest.mark.slow
@pytest.mark.realdata
def test_real_face_videos_beam_records_equal_the_local_ones(tmp_path):
    """The 240 Javanese AV clips, MTCNN face stacks (about 35 s a run on 2 workers)."""
    cfg = PreprocessConfig(corpus="javanese", data=str(shared("javanese_av") / "dataset-resize"), variant="ds2")
    local = writer.run(cfg, tmp_path / "local", workers=2, progress=False)
    beamed = writer.run(cfg, tmp_path / "beam", workers=2, progress=False, runner="beam")
    assert beamed["utterances"] == 240 and beamed["with_video"]
    _same_records(local, beamed)


def test_the_beam_driver_and_workers_need_no_tensorflow(synth_iemocap, tmp_path):
    """The driver process never imports TensorFlow for audio records (the workers neither: their imports are
    emotf.records.writer's, checked by test_preprocess)."""
    root, _ = synth_iemocap
    code = ("import sys; from emotf.config import PreprocessConfig; from emotf.records import writer; "
            f"writer.run(PreprocessConfig(corpus='iemocap', data={str(root)!r}, video='off'), {str(tmp_path)!r}, "
            "progress=False, runner='beam'); print('tensorflow' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "False"


def test_the_progress_bar_counts_shards_as_they_land(tmp_path, capsys):
    (tmp_path / folder.SUMMARIES).mkdir()
    names = ["a-00000-of-00001.tfrecord", "b-00000-of-00001.tfrecord", "c-00000-of-00001.tfrecord"]
    with beam._shards_bar(tmp_path, names, True, every_s=0.02):
        for name in names[:2]:  # a finished shard: its summary, then the file under its final name
            folder.summary_path(tmp_path, name).write_text("{}")
            (tmp_path / name).write_bytes(b"")
        time.sleep(0.3)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "2/3" in err and "3/3" not in err
