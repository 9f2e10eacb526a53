import dataclasses

import numpy as np
import pytest
from conftest import shared, tone, write_wav

from emotf.config import AudioConfig
from emotf.features import audio

CFG = AudioConfig()


def _row_of(freq_hz, cfg=CFG):
    """Image row where a frequency lands (row 0 = fmax)."""
    lo, hi = cfg.band_bins
    bin_hz = cfg.sample_rate_hz / cfg.n_fft
    frac = (freq_hz / bin_hz - lo) / (hi - lo)
    return (1 - frac) * cfg.height


def test_derived_stft_values_match_the_paper_durations():
    assert (CFG.win_length, CFG.hop_length) == (743, 186)  # 46.4 ms and 11.6 ms at 16 kHz
    lo, hi = CFG.band_bins
    bin_hz = CFG.sample_rate_hz / CFG.n_fft
    assert 400 <= lo * bin_hz < 400 + bin_hz and 7800 - bin_hz < (hi - 1) * bin_hz <= 7800
    with pytest.raises(ValueError, match="sample_rate_hz"):
        AudioConfig(sample_rate_hz=8000)


def test_image_shape_dtype_and_range():
    img = audio.spectrogram_image(tone(1000, 2.0), CFG)
    assert img.shape == (200, 300) and img.dtype == np.uint8
    db = img.astype(float) / 255 * 120 - 60
    assert db.max() > 40  # a 0.5-amplitude tone reads about +46 dB (ref 1.0)
    assert 70 < db.max() - db.min() <= 80.5  # floored at top_db below the peak (area resizing lifts it a bit)


@pytest.mark.parametrize("freq", [600, 1000, 3000, 6000])
def test_tone_lands_on_its_row(freq):
    img = audio.spectrogram_image(tone(freq, 2.0), CFG).astype(float)
    row = int(np.argmax(img.mean(axis=1)))
    assert abs(row - _row_of(freq)) <= 2


@pytest.mark.parametrize("freq", [150, 7950])
def test_frequencies_outside_the_band_are_not_in_the_image(freq):
    x = tone(freq, 2.0) + tone(2000, 2.0, amp=0.001)
    img = audio.spectrogram_image(x, CFG)[:, 10:-10]  # edge columns hold the onset click
    assert img[:3].max() < 128 and img[-3:].max() < 128  # only window leakage at the band edges


def test_db_scale_equals_the_reference_stft_at_44k():
    """A tone reads the same dB as librosa's 2048/512 STFT of the same tone at 44.1 kHz (the reference)."""
    import librosa

    amp = 0.3
    ours = audio.spectrogram_db(tone(1000, 1.0, amp=amp), CFG).max()
    t = np.arange(44100) / 44100
    ref = librosa.amplitude_to_db(np.abs(librosa.stft(amp * np.sin(2 * np.pi * 1000 * t), n_fft=2048,
                                                      hop_length=512)), ref=1.0).max()
    # Equal up to the Hann window's scalloping loss (at most 1.42 dB), which differs between the two FFT grids.
    assert ours == pytest.approx(ref, abs=1.5)


def test_db_range_is_fixed_not_per_image():
    quiet = audio.spectrogram_image(tone(1000, 2.0, amp=0.01), CFG)
    loud = audio.spectrogram_image(tone(1000, 2.0, amp=0.5), CFG)
    assert int(loud.max()) - int(quiet.max()) == pytest.approx(255 / 120 * 20 * np.log10(50), abs=3)


@pytest.mark.parametrize("seconds, clips", [(0.5, 1), (2.0, 1), (3.0, 1), (3.5, 1), (4.0, 2), (6.0, 2),
                                            (6.99, 2), (7.2, 3), (9.0, 3), (10.5, 4)])
def test_three_second_clip_counts(seconds, clips):
    n = int(round(seconds * CFG.sample_rate_hz))
    spans = audio.clip_spans(n, CFG)
    assert len(spans) == clips
    assert all(b - a <= CFG.clip_samples for a, b in spans)
    assert spans[0][0] == 0 and all(s[1] == t[0] for s, t in zip(spans, spans[1:], strict=False))


def test_clips_are_padded_with_low_noise_not_zeros():
    rng = np.random.default_rng(0)
    x = tone(500, 2.0, amp=0.3) + rng.standard_normal(32000).astype(np.float32) * 1e-3
    x[:6400] = rng.standard_normal(6400) * 1e-3  # a quiet lead-in (20 % of frames) sets the noise floor
    pieces = audio.segment(x, CFG, "clips", "utt-a")
    (y, a, b), = pieces
    assert len(y) == CFG.clip_samples and (a, b) == (0.0, 2.0)
    pad = y[32000:]
    assert np.all(pad != 0) and 3e-4 < pad.std() < 3e-3
    again, = audio.segment(x, CFG, "clips", "utt-a")
    other, = audio.segment(x, CFG, "clips", "utt-b")
    assert np.array_equal(y, again[0]) and not np.array_equal(y, other[0])
    whole, = audio.segment(x, CFG, "utterance", "utt-a")
    assert np.array_equal(whole[0], x) and whole[2] == 2.0


def test_noise_cleanup_lowers_the_noise_and_keeps_the_voice():
    rng = np.random.default_rng(0)
    x = sum(tone(150 * h, 3.0, amp=0.3 / h) for h in range(1, 25))  # a harmonic "voice"
    x[: 16000] = 0  # a pause: the gate's noise profile comes from the quietest stretch
    noisy = x + rng.standard_normal(len(x)).astype(np.float32) * 0.01
    clean = audio.cleanup(noisy, CFG)
    assert clean.shape == noisy.shape
    assert clean[:16000].std() < 0.5 * noisy[:16000].std()
    assert clean[24000:40000].std() > 0.5 * x[24000:40000].std()  # weak high harmonics near the floor are gated
    imgs = audio.utterance_images(noisy, CFG, mode="clips", clean=True, key="k")
    assert len(imgs) == 1 and imgs[0][0].shape == (200, 300)


# --------------------------------------------------------------------------- loading and bad input

def test_load_converts_rate_and_channels(tmp_path):
    stereo = np.stack([tone(440, 1.0, 44100), tone(440, 1.0, 44100)], axis=1)
    p = write_wav(tmp_path / "s.wav", stereo, sr=44100)
    got = audio.load_audio(p, CFG)
    assert len(got.samples) == 16000 and got.converted == "downmixed, resampled 44100->16000"
    with pytest.raises(audio.BadInputError, match="s.wav: 2 channels"):
        audio.load_audio(p, AudioConfig(convert=False))
    p = write_wav(tmp_path / "m.flac", tone(440, 1.0, 22050), sr=22050)
    with pytest.raises(audio.BadInputError, match="m.flac: sample rate 22050 Hz; expected 16000"):
        audio.load_audio(p, AudioConfig(convert=False))
    p = write_wav(tmp_path / "f.wav", tone(440, 1.0), subtype="FLOAT")
    assert audio.load_audio(p, AudioConfig(convert=False)).converted == ""


def test_load_span(tmp_path):
    p = write_wav(tmp_path / "a.wav", tone(440, 3.0))
    assert len(audio.load_audio(p, CFG, 1.0, 2.5).samples) == 24000
    with pytest.raises(audio.BadInputError, match="span starts at 5.000 s but the audio lasts 3.000 s"):
        audio.load_audio(p, CFG, 5.0, 6.0)


def _file(path, data):
    path.write_bytes(data)
    return path


def _truncated_wav(tmp_path):
    p = write_wav(tmp_path / "t.wav", tone(440, 1.0))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _truncated_flac(tmp_path):
    p = write_wav(tmp_path / "t.flac", np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.2)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.wav", "missing.wav: audio file not found"),
    (lambda d: _file(d / "empty.wav", b""), "empty.wav: empty file"),
    (lambda d: _file(d / "junk.wav", b"not audio at all" * 100), "junk.wav: cannot decode"),
    (lambda d: write_wav(d / "zero.wav", np.zeros(0, np.float32)), "zero.wav: empty audio"),
    (_truncated_wav, "t.wav: truncated file"),
    (_truncated_flac, "t.flac: truncated or corrupt file"),
    (lambda d: write_wav(d / "silent.wav", np.zeros(16000, np.float32)), "silent.wav: silent audio"),
    (lambda d: write_wav(d / "quad.wav", np.zeros((16000, 4), np.float32) + 0.1), "quad.wav: 4 channels"),
    (lambda d: write_wav(d / "short.wav", tone(440, 0.02)), "short.wav: too short"),
])
def test_bad_audio_gets_a_clear_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(audio.BadInputError) as e:
        audio.load_audio(path, CFG)
    assert message in str(e.value)
    assert e.value.path.endswith(path.name)


@pytest.mark.realdata
def test_real_ravdess_emodb_and_cremad_audio():
    rav = shared("ravdess_speech") / "Actor_01" / "03-01-05-02-01-01-01.flac"
    emo = shared("emodb") / "wav" / "03a01Wa.flac"
    mp3 = shared("cremad_sample") / "1002_DFA_ANG_XX.mp3"
    flv = shared("cremad_sample") / "1001_DFA_ANG_XX.flv"
    for path, converted in [(rav, ""), (emo, ""), (mp3, "resampled 44100->16000"), (flv, "resampled 44100->16000")]:
        got = audio.load_audio(path, CFG)
        assert got.converted == converted
        assert 1.5 < len(got.samples) / 16000 < 6
        img = audio.spectrogram_image(got.samples, CFG)
        assert img.shape == (200, 300) and img.max() > 180  # speech reaches well above 0 dB


def test_active_level_is_the_voice_not_the_pauses():
    x = tone(1000, 1.0, amp=0.1)
    assert audio.active_level_dbfs(x, CFG) == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.05)
    with_pauses = np.concatenate([np.zeros(16000, np.float32), x, 1e-4 * np.ones(8000, np.float32)])
    assert audio.active_level_dbfs(with_pauses, CFG) == pytest.approx(audio.active_level_dbfs(x, CFG), abs=0.05)


def test_gain_db_shifts_the_spectrogram_by_that_many_db():
    x = tone(1000, 1.0, amp=0.05) + tone(3000, 1.0, amp=0.005)
    base = audio.spectrogram_db(x, CFG)
    shifted = audio.spectrogram_db(x, AudioConfig(gain_db=-19.5))
    np.testing.assert_allclose(shifted, base - 19.5, atol=1e-3)
    # The same as recording 19.5 dB quieter.
    np.testing.assert_allclose(shifted, audio.spectrogram_db(x * 10 ** (-19.5 / 20), CFG), atol=1e-3)


def test_level_dbfs_makes_the_images_independent_of_the_recording_level():
    cfg = AudioConfig(level_dbfs=-35.0)
    x = tone(1000, 2.0, amp=0.3) + tone(2500, 2.0, amp=0.03)
    loud = audio.utterance_images(x, cfg, mode="clips", clean=False, key="u")
    quiet = audio.utterance_images(x * 0.01, cfg, mode="clips", clean=False, key="u")
    assert len(loud) == len(quiet) == 1
    assert np.abs(loud[0][0].astype(int) - quiet[0][0].astype(int)).max() <= 1  # uint8 rounding only
    raw = audio.utterance_images(x, CFG, mode="clips", clean=False, key="u")[0][0]
    assert abs(int(raw.max()) - int(loud[0][0].max())) > 10  # without it the level shows
    with pytest.raises(ValueError, match="level_dbfs"):
        AudioConfig(level_dbfs=3.0)


# --------------------------------------------------------------------------- silence and level

def _real_clip():
    path = sorted((shared("ravdess_speech") / "Actor_05").glob("03-01-05-02-*"))[0]
    return audio.load_audio(path, CFG).samples


@pytest.mark.realdata
def test_vad_trims_leading_trailing_and_long_silences_whatever_the_level():
    x = _real_clip()
    quiet = (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32)  # -80 dBFS room tone
    padded = np.concatenate([quiet, x, quiet, quiet, x, quiet])  # 2 s of silence between two takes
    cfg = AudioConfig(trim_silence=True)
    trimmed = audio.trim_silence(padded, cfg)
    speech = audio.trim_silence(x, cfg)
    # the 1-s silences at the ends are gone and the 2-s pause (3.5 s with the takes' own) is at most max_pause_ms;
    # the 30-ms frame grid falls elsewhere in the concatenation, so a few frames' decisions differ
    assert len(trimmed) <= 2 * len(speech) + 0.3 * 16000 + 20 * 480 and len(trimmed) < len(padded) - 5 * 16000
    # the detector sees the utterance at a fixed level: the same frames are kept 30 dB quieter
    np.testing.assert_allclose(audio.trim_silence(padded * 0.0316, cfg) / 0.0316, trimmed, rtol=0, atol=1e-6)
    assert audio.utterance_wave(padded, cfg).dtype == np.float32
    np.testing.assert_array_equal(audio.utterance_wave(padded, AudioConfig(trim_silence=True, max_wave_s=1.0)),
                                  trimmed[:16000])
    silence = audio.trim_silence(quiet, cfg)  # no speech found: returned whole
    np.testing.assert_array_equal(silence, quiet)


def test_the_vad_can_decide_alike_whatever_the_channels_tilt():
    # speech-like: a buzz (harmonics of 150 Hz) in syllables, a pause, room noise; frames at its edges are where a
    # tilt moves WebRTC's decisions
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 16000
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 30)) * (np.sin(2 * np.pi * 2.5 * t) > 0.2)
    voiced[16000:24000] = 0.0
    x = (0.1 * voiced + 0.002 * rng.standard_normal(len(t))).astype(np.float32)
    for s in (-6.0, 6.0):  # the slope measured moves by the tilt
        assert audio.spectral_slope(audio.tilt(x, s, 16000), 16000) == pytest.approx(
            audio.spectral_slope(x, 16000) + s, abs=0.5)
    levelled = audio.levelled_tilt(x, -4.0, 16000)
    assert audio.spectral_slope(levelled, 16000) == pytest.approx(-4.0, abs=0.5)
    assert np.sqrt(np.mean(levelled ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-4)
    plain, levelling = AudioConfig(trim_silence=True), AudioConfig(trim_silence=True, vad_tilt=-4.0)
    moved = kept = 0
    for s in (-12.0, -6.0, 6.0, 12.0):
        y = audio.tilt(x, s, 16000)
        moved += (audio.speech_frames(y, plain) != audio.speech_frames(x, plain)).sum()
        kept += (audio.speech_frames(y, levelling) != audio.speech_frames(x, levelling)).sum()
    assert moved > 0 and kept < moved / 3, (moved, kept)
    with pytest.raises(ValueError, match="vad_tilt"):
        AudioConfig(vad_tilt=40.0)


@pytest.mark.realdata
def test_the_vad_trims_a_tilted_real_clip_as_the_clip_with_vad_tilt():
    x = _real_clip()
    cfg = AudioConfig(trim_silence=True, vad_tilt=-4.0)
    for s in (-6.0, 6.0):
        assert len(audio.trim_silence(audio.tilt(x, s, 16000), cfg)) == len(audio.trim_silence(x, cfg))


def test_band_norm_images_do_not_see_the_level_or_a_channel_filter():
    rng = np.random.default_rng(3)
    x = (np.sum([tone(f, 2.0, amp=0.05) for f in (300, 700, 1500, 3100)], axis=0)
         + rng.standard_normal(32000).astype(np.float32) * 0.01).astype(np.float32)
    cfg = AudioConfig(band_norm=True)
    plain = audio.spectrogram_image(x, cfg)
    louder = audio.spectrogram_image(x * 10 ** (12 / 20), cfg)
    assert np.abs(plain.astype(int) - louder.astype(int)).max() <= 1  # rounding of the uint8 levels only
    absolute = audio.spectrogram_image(x, CFG), audio.spectrogram_image(x * 10 ** (12 / 20), CFG)
    assert np.abs(absolute[1].astype(int) - absolute[0].astype(int)).mean() > 20  # the paper's images do see it
    assert np.abs(plain.astype(int).mean(axis=1) - 128).max() <= 2  # every row's mean is 0 dB


def test_pcm16_clips_at_full_scale():
    np.testing.assert_array_equal(audio.to_pcm16(np.array([-2.0, -1.0, 0.0, 0.5, 1.5])),
                                  [-32767, -32767, 0, 16384, 32767])


def test_8khz_audio_is_accepted_with_its_band_limit_or_rejected_on_request(tmp_path):
    rng = np.random.default_rng(0)
    x = tone(440, 2.0, 8000) * 0.6 + 0.05 * rng.standard_normal(16000).astype(np.float32)
    path = write_wav(tmp_path / "phone.wav", x, sr=8000)
    loaded = audio.load_audio(path, CFG)
    assert loaded.band_limit_hz == 4000.0 and "resampled 8000->16000" in loaded.converted
    img = audio.utterance_images(loaded.samples, CFG, mode="whole", clean=False, key="x")[0][0]
    rows = np.median(img, axis=1)  # rows run from 7.8 kHz (top) down to 0.4 kHz
    top = int(0.4 * len(rows))  # above ~4.8 kHz
    assert np.all(rows[:top] == img.min()) and rows[-top:].min() > img.min() + 40
    assert audio.load_audio(write_wav(tmp_path / "wide.wav", tone(440, 1.0)), CFG).band_limit_hz == 0.0
    with pytest.raises(audio.BadInputError, match="phone.wav: sample rate 8000 Hz cannot carry"):
        audio.load_audio(path, dataclasses.replace(CFG, band_limited="reject"))


@pytest.mark.realdata
def test_cleanup_without_the_zero_padding_stays_within_tolerance_of_the_library_default():
    """The gate with n_fft samples of padding (3x less work) against noisereduce's 30,000: the same images within
    a tenth of a level on average."""
    noisereduce = pytest.importorskip("noisereduce")

    files = sorted(shared("ravdess_speech").glob("Actor_0[1-2]/03-01-0[4-6]-02-01-*"))[:4]
    assert len(files) == 4
    for f in files:
        x = audio.load_audio(f, CFG).samples
        ref = np.asarray(noisereduce.reduce_noise(
            y=x, sr=CFG.sample_rate_hz, y_noise=audio.quietest_stretch(x, CFG), stationary=True, prop_decrease=0.9,
            n_std_thresh_stationary=2.0, n_fft=CFG.n_fft, win_length=CFG.win_length, hop_length=CFG.hop_length,
            n_jobs=1), np.float32)
        y = audio.cleanup(x, CFG)
        assert y.shape == ref.shape and np.max(np.abs(y - ref)) < 0.02
        ours = audio.utterance_images(y, CFG, mode="clips", clean=False, key="k")[0][0].astype(int)
        theirs = audio.utterance_images(ref, CFG, mode="clips", clean=False, key="k")[0][0].astype(int)
        diff = np.abs(ours - theirs)
        assert diff.mean() < 0.2 and diff.max() <= 10 and (diff > 2).mean() < 0.005, (f.name, diff.mean(), diff.max())


def test_stft_magnitude_is_librosas_bit_for_bit(seed):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(seed)
    window = np.hanning(743 + 1)[:-1]
    for n in (16000, 48001, 1000, 300):  # whole clips, an odd length, shorter than n_fft
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        ref = np.abs(librosa.stft(x, n_fft=1024, hop_length=186, win_length=743, window=window, center=True))
        ours = audio.stft_magnitude(x, 1024, 186, window)
        assert ours.dtype == ref.dtype == np.float32 and np.array_equal(ours, ref)
        assert np.array_equal(audio.stft_magnitude(x, 1024, 186, window, slice(26, 500)), ref[26:500])
