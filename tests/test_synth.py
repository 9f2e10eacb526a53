import numpy as np
import soundfile as sf

from emotf.corpora import synthetic as synth


def test_generation_is_seeded(tmp_path):
    spec = synth.IemocapSpec(sessions=1, dialogs=1, utterances=2, seed=5)
    a = synth.generate_iemocap(tmp_path / "a", spec)
    b = synth.generate_iemocap(tmp_path / "b", spec)
    assert [x["utt"] for x in a] == [x["utt"] for x in b]
    for x in a:
        rel = f"Session1/sentences/wav/{x['dialog']}/{x['utt']}.wav"
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_audio_cues_follow_the_emotion():
    rng = np.random.default_rng(0)

    def loudness(label):
        return np.mean([np.sqrt(np.mean(synth.synth_voice(label, "F", 2.0, rng)[0] ** 2)) for _ in range(4)])

    assert loudness("angry") > loudness("neutral") > loudness("sad")
    y_happy, _ = synth.synth_voice("happy", "M", 2.0, np.random.default_rng(1))
    y_sad, _ = synth.synth_voice("sad", "M", 2.0, np.random.default_rng(1))
    pitch = [np.argmax(np.abs(np.fft.rfft(y))[20:400]) for y in (y_happy, y_sad)]  # strongest low harmonic
    assert pitch[0] > pitch[1]


def test_mouth_opening_follows_the_audio(synth_ravdess):
    import cv2

    root, _ = synth_ravdess
    wav = sorted(root.rglob("03-01-05-*.wav"))[0]
    mp4 = wav.with_name("02" + wav.name[2:]).with_suffix(".mp4")
    y, sr = sf.read(str(wav))
    cap = cv2.VideoCapture(str(mp4))
    opening = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        # The inside of the mouth is the only dark red region of the drawing.
        b, g, r = (frame[..., i].astype(int) for i in range(3))
        opening.append(np.sum((r > 110) & (r < 160) & (g < 70) & (b < 70)))
    fps = cap.get(cv2.CAP_PROP_FPS)
    energy = [np.sqrt(np.mean(y[int(i * sr / fps):int((i + 1) * sr / fps)] ** 2)) for i in range(len(opening))]
    assert np.corrcoef(opening, energy)[0, 1] > 0.6
