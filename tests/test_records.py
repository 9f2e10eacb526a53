import json

import numpy as np
import pytest
import tensorflow as tf

from emotf.config import VideoConfig
from emotf.features.video import encode_stack
from emotf.records import folder
from emotf.records import schema as records


def _example(rng, video_encoding="raw"):
    stack = rng.integers(0, 255, (20, 60, 100, 3), dtype=np.uint8)
    return {
        "spec": rng.integers(0, 255, (200, 300), dtype=np.uint8), "label/index": 2, "label/name": "angry",
        "label/raw": "ang", "speaker": "Ses01F", "session": "Session1", "gender": "F", "utt_id": "Ses01F_impro01_F000",
        "corpus": "iemocap", "mode": "improvised", "clip/index": 1, "clip/count": 3, "clip/start_s": 3.0,
        "clip/end_s": 6.0, "video": encode_stack(stack, VideoConfig(encoding=video_encoding)),
        "video/encoding": video_encoding, "video/frames": 20, "video/height": 60, "video/width": 100,
        "video/face_found": 1,
    }, stack


def test_round_trip_write_parse_equal(tmp_path):
    rng = np.random.default_rng(0)
    ex, stack = _example(rng)
    path = tmp_path / folder.shard_name("Ses01F", 0, 1)
    w = records.ShardWriter(path)
    w.write(records.serialize_example(ex))
    w.commit()
    assert path.name == "Ses01F-00000-of-00001.tfrecord"
    (got,) = records.read_records([path], with_video=True)
    assert np.array_equal(got["spec"][..., 0], ex["spec"]) and got["spec"].shape == (200, 300, 1)
    assert np.array_equal(got["video"], stack)
    for key in ("label/index", "label/name", "label/raw", "speaker", "session", "gender", "utt_id", "corpus",
                "mode", "clip/index", "clip/count", "clip/start_s", "clip/end_s", "video/face_found"):
        assert got[key] == ex[key], key
    assert got["schema_version"] == 1


def test_jpeg_filmstrip_and_audio_only_records(tmp_path):
    rng = np.random.default_rng(1)
    ex, _ = _example(rng, "jpeg")
    audio_only = {k: v for k, v in ex.items() if not k.startswith("video")}
    path = tmp_path / "a.tfrecord"
    w = records.ShardWriter(path)
    w.write(records.serialize_example(ex))
    w.write(records.serialize_example(audio_only))
    w.commit()
    first, second = records.read_records([path])
    assert np.array_equal(first["spec"], second["spec"]) and second["video/encoding"] == ""
    video_only = tmp_path / "v.tfrecord"
    w = records.ShardWriter(video_only)
    w.write(records.serialize_example(ex))
    w.commit()
    (with_video,) = records.read_records([video_only], with_video=True)
    assert with_video["video"].shape == (20, 60, 100, 3) and with_video["video"].dtype == np.uint8


def test_parse_inside_a_tf_data_pipeline(tmp_path):
    rng = np.random.default_rng(2)
    paths = []
    for i in range(2):
        p = tmp_path / f"u{i}.tfrecord"
        w = records.ShardWriter(p)
        for _ in range(3):
            w.write(records.serialize_example(_example(rng)[0]))
        w.commit()
        paths.append(str(p))
    ds = (tf.data.TFRecordDataset(paths)
          .map(lambda s: records.parse_example(s, with_video=True), num_parallel_calls=tf.data.AUTOTUNE)
          .batch(4))
    batch = next(iter(ds))
    # the stored arrays, as every model takes them (the colour map is the models' first layer)
    assert batch["spec"].shape == (4, 200, 300, 1) and batch["spec"].dtype == tf.uint8
    assert batch["video"].shape == (4, 20, 60, 100, 3) and batch["video"].dtype == tf.uint8


def test_shard_writer_abort_leaves_nothing_that_looks_whole(tmp_path):
    path = tmp_path / "x.tfrecord"
    w = records.ShardWriter(path)
    w.write(b"abc")
    assert not path.exists() and w.tmp.exists()
    w.abort()
    assert not path.exists() and not w.tmp.exists()


def test_waveform_records_round_trip_and_spectrogram_records_stay_as_they_were(tmp_path):
    from emotf.records import keys

    rng = np.random.default_rng(4)
    pcm = rng.integers(-32768, 32767, 16000, dtype=np.int16)
    ex = {"wave": pcm, keys.WAVE_RATE: 16000, "label/name": "sad", "utt_id": "u1", "speaker": "s1"}
    path = tmp_path / "w.tfrecord"
    w = records.ShardWriter(path)
    w.write(records.serialize_example(ex))
    w.commit()
    (got,) = records.read_records([path], spec_shape=None, with_wave=True)
    np.testing.assert_array_equal(np.round(got["wave"] * 32768).astype(np.int16), pcm)
    assert got["wave/samples"] == 16000 and got["wave/rate"] == 16000 and "spec" not in got
    # a spectrogram record carries none of the waveform keys: its bytes (and the records digest) are unchanged
    image = records.serialize_example(_example(rng)[0])
    parsed = tf.train.Example.FromString(image).features.feature
    assert not any(k.startswith("wave/") for k in parsed)


def _copy(tiny_records, tmp_path):
    import shutil

    dst = tmp_path / "ravdess" / "ds1"
    shutil.copytree(tiny_records, dst)
    return dst, sorted(dst.glob("*.tfrecord"))


def test_a_truncated_shard_is_named_with_its_repair_before_tensorflow_reads_it(tiny_records, tmp_path):
    root, shards = _copy(tiny_records, tmp_path)
    assert folder.verify(root) == [] and folder.load_records(root, verify=True).shards
    assert folder.count_records(shards[0]) == json.loads((root / "manifest.json").read_text())["shards"][0]["records"]
    size = shards[1].stat().st_size
    with open(shards[1], "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(folder.RecordsError) as e:
        folder.load_records(root)
    msg = str(e.value)
    assert str(shards[1]) in msg and "truncated" in msg and "python -m emotf.preprocess" in msg
    assert "--corpus ravdess" in msg and "--variant ds1" in msg and "\n" not in msg
    assert [p for _, p in folder.verify(root, digest=False)] == [msg.split("; ")[0]]
    shards[2].unlink()
    assert [p.split(": ")[1] for _, p in folder.verify(root)] == ["truncated or damaged", "missing"]


def test_an_altered_record_passes_the_cheap_check_and_fails_the_digest(tiny_records, tmp_path):
    from emotf import verify

    root, shards = _copy(tiny_records, tmp_path)
    data = bytearray(shards[0].read_bytes())
    data[len(data) // 2 + 37] ^= 0xFF  # inside a record's bytes: the framing and the count stay right
    shards[0].write_bytes(bytes(data))
    folder.load_records(root)
    assert folder.verify(root, digest=False) == []
    assert verify.main([str(root), "--fast"]) == 0
    problems = folder.verify(root)
    assert len(problems) == 1 and "SHA-256" in problems[0][1] and str(shards[0]) in problems[0][1]
    with pytest.raises(folder.RecordsError, match="SHA-256"):
        folder.load_records(root, verify=True)
    assert verify.main([str(root)]) == 2


def _tf_example(ex) -> bytes:
    """The record as TensorFlow's own Example message serialises it: what emotf wrote before (and must still)."""
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    from emotf.config import SCHEMA_VERSION
    from emotf.records import keys

    spec = ex.get("spec", np.zeros((0, 0), np.uint8))
    feats = {keys.SPEC: b([spec.tobytes()]), keys.SPEC_HEIGHT: i(spec.shape[0]), keys.SPEC_WIDTH: i(spec.shape[1]),
             keys.SCHEMA: i(SCHEMA_VERSION), keys.VIDEO: b([ex["video"]] if ex.get("video") else [])}
    if "wave" in ex:
        feats.update({keys.WAVE: b([ex["wave"].astype("<i2").tobytes()]), keys.WAVE_SAMPLES: i(len(ex["wave"])),
                      keys.WAVE_RATE: i(ex[keys.WAVE_RATE])})
    feats.update({k: b([str(ex.get(k, "")).encode()]) for k in keys.STRING_KEYS})
    feats.update({k: i(int(ex.get(k, 0))) for k in keys.INT_KEYS if k not in feats})
    feats.update({k: tf.train.Feature(float_list=tf.train.FloatList(value=[ex.get(k, 0.0)])) for k in keys.FLOAT_KEYS})
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString(deterministic=True)


def test_records_written_without_tensorflow_are_the_bytes_tensorflow_writes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    examples = [_example(rng)[0], _example(rng, "jpeg")[0], {"spec": rng.integers(0, 256, (7, 9), dtype=np.uint8)},
                {"wave": rng.integers(-2**15, 2**15, 500).astype(np.int16), "wave/rate": 16000, "utt_id": "ü"}, {}]
    for ex in examples:
        assert records.serialize_example(ex) == _tf_example(ex)
    writer = records.ShardWriter(tmp_path / "emotf.tfrecord")
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as ref:
        for ex in examples:
            writer.write(records.serialize_example(ex))
            ref.write(_tf_example(ex))
    writer.commit()
    assert (tmp_path / "emotf.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
