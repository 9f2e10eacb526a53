"""The tf.data pipeline on tiny records (the ``tiny_records`` fixture of conftest)."""

import collections
import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from emotf.data import pipeline as data  # noqa: E402
from emotf.records.folder import load_records  # noqa: E402

CLASSES = ("neutral", "happy", "sad", "angry")


def test_records_info_and_speakers(tiny_records):
    info = load_records(tiny_records)
    assert info.present_classes == CLASSES
    assert info.with_video and info.spec_shape == (48, 72) and info.video_shape == (10, 48, 48)
    spk = info.speakers()
    assert sorted(spk) == info.units and spk["Actor_01"]["gender"] == "M"
    # the models take the arrays as stored: one uint8 channel of dB levels, and RGB frames
    assert info.input_shapes("av") == {"audio": (48, 72, 1), "video": (10, 48, 48, 3)}
    assert info.select_classes("3") == ("sad", "angry", "neutral") and info.select_classes("all") == CLASSES


def test_eval_dataset_reads_every_record_once_in_a_fixed_order(tiny_records):
    info = load_records(tiny_records)
    cfg = data.PipelineConfig(class_names=CLASSES, batch_size=5)
    units = info.units[:2]

    def ids():
        return [u.decode() for _, _, m in data.eval_dataset(info, units, cfg, with_meta=True)
                for u in m["utt_id"].numpy()]

    first = ids()
    assert first == ids()
    assert len(first) == len(set(first)) == sum(info.count(units, CLASSES).values())
    x, y = next(iter(data.eval_dataset(info, units, cfg)))
    assert x.shape == (5, 48, 72, 1) and x.dtype == tf.uint8  # the stored levels; the model colours them
    assert int(tf.reduce_max(x)) > int(tf.reduce_min(x))


def test_class_subset_filters_and_reindexes(tiny_records):
    info = load_records(tiny_records)
    cfg = data.PipelineConfig(class_names=("sad", "angry"), batch_size=64)
    ys, names = [], []
    for _, y, m in data.eval_dataset(info, info.units, cfg, with_meta=True):
        ys += list(y.numpy())
        names += [n.decode() for n in m["label_name"].numpy()]
    assert set(names) == {"sad", "angry"}
    assert all(("sad", "angry")[i] == n for i, n in zip(ys, names, strict=True))


def test_balanced_resampling_equalises_classes(tiny_records):
    info = load_records(tiny_records)  # neutral has half as many records as the others
    cfg = data.PipelineConfig(class_names=CLASSES, batch_size=32, balance="resample", seed=3)
    counts = collections.Counter()
    for _, y in data.train_dataset(info, info.units, cfg).take(25):
        counts.update(y.numpy().tolist())
    shares = np.array([counts[i] for i in range(4)]) / sum(counts.values())
    assert np.all(np.abs(shares - 0.25) < 0.05), shares
    plain = data.PipelineConfig(class_names=CLASSES, batch_size=32, balance="none", seed=3)
    counts = collections.Counter()
    for _, y in data.train_dataset(info, info.units, plain).take(25):
        counts.update(y.numpy().tolist())
    assert counts[0] / sum(counts.values()) < 0.2  # neutral stays the small class without resampling


def test_training_stream_is_seeded(tiny_records):
    info = load_records(tiny_records)

    def labels(seed):
        cfg = data.PipelineConfig(class_names=CLASSES, batch_size=8, seed=seed)
        return [y.numpy().tolist() for _, y in data.train_dataset(info, info.units, cfg).take(4)]

    assert labels(1) == labels(1)
    assert labels(1) != labels(2)


def test_augmentation_is_seeded_and_keeps_shape():
    img = tf.constant(np.tile(np.linspace(0, 255, 72, dtype=np.uint8), (48, 1))[..., None])
    a = data.augment_spectrogram(img, [1, 2], probability=1.0)
    b = data.augment_spectrogram(img, [1, 2], probability=1.0)
    c = data.augment_spectrogram(img, [1, 3], probability=1.0)
    assert a.shape == img.shape and a.dtype == tf.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a.numpy(), c.numpy())
    assert not np.array_equal(a.numpy(), img.numpy())
    crop_only = data.augment_spectrogram(img, [0, 0], ops=("crop",), probability=1.0)
    # a horizontal ramp is unchanged by a vertical crop + resize
    np.testing.assert_allclose(crop_only.numpy().astype(int), img.numpy().astype(int), atol=1)
    same = data.augment_spectrogram(img, [0, 0], probability=0.0)
    np.testing.assert_array_equal(same, img)


def test_pair_sampler_follows_the_paper():
    labels = tf.constant([0, 0, 1, 1, 2, 2, 0, 1], tf.int32)
    keys = tf.constant([f"u{i}#0" for i in range(8)])
    partner, y, w = data.sample_pairs(labels, keys, [0, 1], hard=0.75, super_hard=0.25)
    partner, y, w = partner.numpy(), y.numpy(), w.numpy()
    lab = labels.numpy()
    assert (partner[:, 0] == np.arange(8)).all() and (y[:, 0] == 1).all()  # positives: the same clip
    hard_rows = np.flatnonzero(w[:, 1] > 0)
    assert list(hard_rows) == list(range(6))  # 75 % of the batch
    assert all(lab[partner[i, 1]] != lab[i] for i in hard_rows)  # hard: another emotion
    super_rows = np.flatnonzero(w[:, 2] > 0)
    assert list(super_rows) == [0, 1]  # 25 %
    assert all(lab[partner[i, 2]] == lab[i] and partner[i, 2] != i for i in super_rows)  # same emotion, other clip
    assert (y[:, 1:] == 0).all()
    # weights make the mean-reduced loss the mean of the three group means
    np.testing.assert_allclose(w.sum(axis=0), [8, 8, 8])


def test_pair_sampler_without_valid_partners_gives_zero_weight():
    labels = tf.constant([0, 0, 0], tf.int32)
    keys = tf.constant(["a#0", "a#0", "b#0"])  # rows 0 and 1 are one clip
    _, _, w = data.sample_pairs(labels, keys, [0, 0], hard=1.0, super_hard=1.0)
    w = w.numpy()
    assert (w[:, 1] == 0).all()  # no other emotion in the batch
    assert w[0, 2] > 0 and w[2, 2] > 0


def test_pretraining_batches(tiny_records):
    info = load_records(tiny_records)
    cfg = data.PipelineConfig(class_names=CLASSES, modality="av", batch_size=8)
    x, y, w = next(iter(data.train_dataset(info, info.units, cfg, pairs={"hard": 0.75, "super_hard": 0.25},
                                           drop_remainder=True)))
    assert set(x) == {"audio", "video", "partner"}
    assert x["video"].shape == (8, 10, 48, 48, 3) and x["partner"].shape == (8, 3) and y.shape == w.shape == (8, 3)
    assert x["audio"].dtype == x["video"].dtype == tf.uint8


def test_missing_or_unfinished_records_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        load_records(tmp_path)
    (tmp_path / "manifest.json").write_text('{"complete": false}')
    with pytest.raises(ValueError, match="did not finish"):
        load_records(tmp_path)


# --------------------------------------------------------------------------- waveforms

def test_speed_crop_tilt_and_noise_do_exactly_what_they_say():
    x = tf.constant(np.sin(np.arange(16000) / 5.0).astype("float32"))
    fast = data.change_speed(x, tf.constant(1.1))
    assert fast.shape[0] == round(16000 / 1.1)
    # linear interpolation: within h^2/8 = 0.006 of the sine it samples at 1.1 x
    np.testing.assert_allclose(fast.numpy()[:100], np.sin(np.arange(100) * 1.1 / 5.0), atol=0.007)
    piece, valid = data.random_crop(x, 4000, [1, 2])
    assert piece.shape == (4000,) and int(valid) == 4000
    assert np.isclose(np.asarray(x)[np.flatnonzero(np.isclose(np.asarray(x), piece[0].numpy()))], piece[0]).any()
    short, valid = data.random_crop(x[:1000], 4000, [1, 2])
    assert int(valid) == 1000 and (short.numpy()[1000:] == 0).all()
    rng = np.random.default_rng(0)
    white = tf.constant(rng.standard_normal(32000).astype("float32"))
    tilted = data.spectral_tilt(white, tf.constant(6.0), sample_rate=16000).numpy()

    def band_db(y, lo, hi):
        f = np.fft.rfftfreq(len(y), 1 / 16000)
        return 10 * np.log10(np.mean(np.abs(np.fft.rfft(y))[(f >= lo) & (f < hi)] ** 2))

    gain_2k_over_1k = (band_db(tilted, 1900, 2100) - band_db(white.numpy(), 1900, 2100)) - (
        band_db(tilted, 950, 1050) - band_db(white.numpy(), 950, 1050))
    assert gain_2k_over_1k == pytest.approx(6.0, abs=0.3)  # one octave up: +6 dB
    clean = tf.concat([tf.constant(rng.standard_normal(20000).astype("float32")) * 0.1, tf.zeros(12000)], 0)
    noisy = data.add_noise(clean, tf.constant(20000), [3, 4], (20.0, 20.0), sample_rate=16000).numpy()
    added = noisy - clean.numpy()
    snr = 10 * np.log10(np.mean(clean.numpy()[:20000] ** 2) / np.mean(added[:20000] ** 2))
    assert snr == pytest.approx(20.0, abs=0.01) and (added[20000:] == 0).all()  # the padding stays silent


def test_mixup_mixes_pairs_at_equal_power_with_soft_labels():
    rng = np.random.default_rng(1)
    wave = rng.standard_normal((4, 800)).astype("float32") * np.array([[1.0], [0.1], [0.5], [2.0]], "float32")
    x = {"audio": tf.constant(wave), "audio_length": tf.constant([800, 600, 500, 400])}
    y = tf.constant([0, 1, 2, 3])
    (mx, soft, _), again = data.mixup((x, y, {}), [5, 6], 4), data.mixup((x, y, {}), [5, 6], 4)
    np.testing.assert_array_equal(mx["audio"], again[0]["audio"])  # seeded
    soft = soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft[np.arange(4), [0, 1, 2, 3]] >= 0.5).all()  # each keeps at least half of itself
    np.testing.assert_allclose(soft[np.arange(4), [3, 2, 1, 0]], 1 - soft[np.arange(4), [0, 1, 2, 3]], atol=1e-6)
    assert mx["audio_length"].numpy().tolist() == [800, 600, 600, 800]


def test_waveform_stream_crops_augments_and_is_seeded(tiny_wave_records):
    info = load_records(tiny_wave_records["ravdess"])
    assert info.features == "wave" and info.spec_shape is None
    assert info.input_shapes("waveform") == {"audio": (None,), "audio_length": ()}
    with pytest.raises(ValueError, match="preprocess with --variant ds1"):
        info.input_shapes("audio")
    cfg = data.PipelineConfig(class_names=CLASSES, modality="waveform", batch_size=8, crop_s=1.5,
                              augment=("gain", "tilt", "noise", "speed", "mixup"), seed=2)

    def first():
        x, y = next(iter(data.train_dataset(info, info.units, cfg)))
        return x["audio"].numpy(), x["audio_length"].numpy(), y.numpy()

    a, lengths, soft = first()
    assert a.shape == (8, 24000) and soft.shape == (8, 4) and (lengths <= 24000).all()
    np.testing.assert_array_equal(a, first()[0])
    x, y = next(iter(data.eval_dataset(info, info.units, dataclasses.replace(cfg, augment=()))))
    assert x["audio"].shape[1] % 32000 == 0 and y.shape == (8,)  # padded to whole 2-s buckets
    assert (x["audio_length"].numpy() <= x["audio"].shape[1]).all()


def test_several_corpora_read_as_one_and_train_corpus_balanced(tiny_wave_records):
    rav, iem = tiny_wave_records["ravdess"], tiny_wave_records["iemocap"]
    info = load_records(f"{rav},{iem}")
    assert info.corpora == ["iemocap", "ravdess"] and info.source == f"{rav},{iem}"
    assert all(u.startswith(("ravdess/", "iemocap/")) for u in info.units)
    assert info.corpus_of("ravdess/Actor_01") == "ravdess"
    assert {s["corpus"] for s in info.speakers().values()} == {"ravdess", "iemocap"}
    sizes = {c: sum(info.count([u for u in info.units if info.corpus_of(u) == c], CLASSES).values())
             for c in info.corpora}
    cfg = data.PipelineConfig(class_names=CLASSES, modality="waveform", batch_size=32, crop_s=0.5, seed=1)
    x, y = next(iter(data.train_dataset(info, info.units, cfg)))  # the whole stream runs over both corpora
    assert x["audio"].shape == (32, 8000) and y.shape == (32,)
    seen = collections.Counter()
    stream = data._balanced(data._parsed(info, info.units, cfg), info, info.units, cfg)
    for ex in stream.take(400):
        seen[ex["corpus"].numpy().decode()] += 1
    assert sizes["ravdess"] != sizes["iemocap"] and abs(seen["ravdess"] / 400 - 0.5) < 0.08
    with pytest.raises(ValueError, match="another corpus"):
        load_records(f"{rav},{rav}")


def test_waveforms_with_face_stacks_feed_the_av_model_with_a_waveform_branch(tiny_wave_faces_records, tiny_records):
    """--variant wave --video on: records of the waveform and the face stack; the av stream carries both through
    the waveform augmentations and mixup (the faces mixed with the same weights); wrong records are named."""
    info = load_records(tiny_wave_faces_records)
    assert info.features == "wave" and info.with_video and info.video_shape == (10, 48, 48)
    shapes = {"audio": (None,), "audio_length": (), "video": (10, 48, 48, 3)}
    assert info.input_shapes("av", wave_audio=True) == shapes and info.input_shapes("video") == (10, 48, 48, 3)
    with pytest.raises(ValueError, match="spectrogram audio branch reads spectrogram images"):
        info.input_shapes("av")
    with pytest.raises(ValueError, match="--variant wave --video on"):
        load_records(tiny_records).input_shapes("av", wave_audio=True)
    plain = load_records(tiny_wave_faces_records.parent / "wave")  # --video auto: the waveform variant stays audio
    assert not plain.with_video
    with pytest.raises(ValueError, match="hold no video .*--variant wave --video on"):
        plain.input_shapes("av", wave_audio=True)

    cfg = data.PipelineConfig(class_names=CLASSES, modality="av", wave_audio=True, batch_size=8, crop_s=1.0,
                              augment=("gain", "noise", "mixup"), seed=1)
    x, y = next(iter(data.train_dataset(info, info.units, cfg)))
    assert set(x) == {"audio", "audio_length", "video"} and x["audio"].shape == (8, 16000)
    assert x["video"].dtype == tf.uint8 and x["video"].shape == (8, 10, 48, 48, 3) and y.shape == (8, 4)
    plain_cfg = dataclasses.replace(cfg, augment=())
    x0, y0 = next(iter(data.train_dataset(info, info.units, plain_cfg)))
    y0 = y0.numpy()
    lam = y.numpy()[np.arange(8), y0]  # each utterance keeps weight lam >= 0.5 of itself, its face too
    apart = y0 != y0[::-1]  # (a partner of the same class hides lam in the labels)
    assert apart.any() and (lam >= 0.5 - 1e-6).all()
    v, v0 = x["video"].numpy().astype(float), x0["video"].numpy().astype(float)
    w = lam[:, None, None, None, None]
    assert np.abs(v - (w * v0 + (1 - w) * v0[::-1]))[apart].max() <= 0.5 + 1e-4
    xe, ye = next(iter(data.eval_dataset(info, info.units, cfg)))
    assert xe["audio"].shape[1] % 32000 == 0 and xe["video"].shape[1:] == (10, 48, 48, 3)
    assert (xe["audio_length"].numpy() <= xe["audio"].shape[1]).all()
    pairs = next(iter(data.train_dataset(info, info.units, cfg, pairs={"hard": 0.75, "super_hard": 0.25})))
    assert set(pairs[0]) == {"audio", "audio_length", "video", "partner"} and pairs[1].shape == (8, 3)
