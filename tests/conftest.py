import os
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(name: str) -> Path:
    """A folder of ../shared/data, or a clean skip where it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(autouse=True)
def seed():
    np.random.seed(0)
    return 0


@pytest.fixture(scope="session")
def synth_iemocap(tmp_path_factory):
    """A tiny IEMOCAP-layout corpus: 2 sessions x 1 dialog x 4 utterances (8 utterances, 4 speakers)."""
    from emotf.corpora import synthetic as synth

    root = tmp_path_factory.mktemp("iemocap")
    index = synth.generate_iemocap(root, synth.IemocapSpec(sessions=2, dialogs=1, utterances=4, max_s=6.5, seed=1))
    return root, index


@pytest.fixture(scope="session")
def synth_ravdess(tmp_path_factory):
    """A tiny RAVDESS-layout corpus with video: 2 actors x 3 emotions (wav + video-only mp4)."""
    from emotf.corpora import synthetic as synth

    root = tmp_path_factory.mktemp("ravdess")
    index = synth.generate_ravdess(root, actors=2, emotions=["neutral", "happy", "angry"], statements=1, seed=2)
    return root, index


def write_wav(path, x, sr=16000, subtype="PCM_16"):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path


def tone(freq_hz, seconds=1.0, sr=16000, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory):
    """Records of a synthetic RAVDESS-layout corpus with video, small enough to train on in seconds.

    6 actors x 4 emotions (neutral, happy, sad, angry) x 2 statements: 84 whole
    utterances (DS1), spectrograms 48x72, face stacks 10x48x48.
    """
    from emotf import preprocess
    from emotf.corpora import synthetic as synth

    root = tmp_path_factory.mktemp("tiny")
    synth.generate_ravdess(root / "corpus", actors=6, emotions=["neutral", "happy", "sad", "angry"], statements=2,
                           seed=3)
    rc = preprocess.main(["--corpus", "ravdess", "--data", str(root / "corpus"), "--out", str(root / "records"),
                          "--variant", "ds1", "--spec-size", "48x72", "--video-size", "10x48x48",
                          "--face-detector", "fixed", "--workers", "2", "--no-progress"])
    assert rc == 0
    return root / "records" / "ravdess" / "ds1"


@pytest.fixture(scope="session")
def tiny_wave_faces_records(tiny_records):
    """Waveform records with face stacks (--variant wave --video on) of the tiny_records corpus: the input of the
    av model with a waveform audio branch; beside them the same corpus's plain waveform records (--video auto)."""
    from emotf import preprocess

    corpus, out = tiny_records.parents[2] / "corpus", tiny_records.parents[1]
    common = ["--corpus", "ravdess", "--data", str(corpus), "--out", str(out), "--variant", "wave",
              "--video-size", "10x48x48", "--face-detector", "fixed", "--workers", "2", "--no-progress"]
    assert preprocess.main([*common, "--video", "on"]) == 0
    assert preprocess.main(common) == 0
    return tiny_records.parent / "wave-faces"


@pytest.fixture(scope="session")
def tiny_wave_records(tmp_path_factory):
    """Waveform records (--variant wave) of two small synthetic corpora, for the waveform model and
    multi-corpus training: {"ravdess": 6 actors x 4 emotions x 2 statements (84 utterances),
    "iemocap": 3 sessions x 2 dialogs x 6 utterances (6 speakers)}."""
    from emotf import preprocess
    from emotf.corpora import synthetic as synth

    root = tmp_path_factory.mktemp("wave")
    synth.generate_ravdess(root / "ravdess", actors=6, emotions=["neutral", "happy", "sad", "angry"], statements=2,
                           video=False, seed=5)
    synth.generate_iemocap(root / "iemocap", synth.IemocapSpec(sessions=3, dialogs=2, utterances=6, max_s=4.0, seed=6))
    out = {}
    for corpus in ("ravdess", "iemocap"):
        rc = preprocess.main(["--corpus", corpus, "--data", str(root / corpus), "--out", str(root / "records"),
                              "--variant", "wave", "--classes", "4", "--workers", "2", "--no-progress"])
        assert rc == 0
        out[corpus] = root / "records" / corpus / "wave"
    return out


# The recipe (logmel_cnn) at a tiny width, for the tests that need a trained waveform model.
WAVE_SMALL = {"channels": [8, 8, 16, 16], "fold_units": 16, "fc_units": 16, "attention_units": 8}
WAVE_RECIPE = ["--arch", "logmel_cnn", "--classes", "4", "--batch-size", "16", "--lr", "3e-3", "--weight-decay",
               "0.05", "--lr-schedule", "warmup_cosine", "--warmup-epochs", "1", "--augment", "all", "--crop-s", "2",
               "--quiet"]


@pytest.fixture(scope="session")
def wave_run(tiny_wave_records, tmp_path_factory):
    """A 3-epoch tiny logmel_cnn run on the synthetic RAVDESS waveform records (4 classes)."""
    import json

    from emotf import fit

    root = tmp_path_factory.mktemp("waverun")
    hp = root / "hp.json"
    hp.write_text(json.dumps(WAVE_SMALL))
    out = root / "run"
    assert fit.main([*WAVE_RECIPE, "--records", str(tiny_wave_records["ravdess"]), "--out", str(out), "--epochs", "3",
                     "--hparams", str(hp)]) == 0
    return out


@pytest.fixture(scope="session")
def real_javanese_records(tmp_path_factory):
    """Real Javanese AV clips preprocessed with the real face detector at the default sizes (ds2: 3-s clips,
    spectrograms 200x300, face stacks 20x60x100): speakers 01, 02 and 06, the 4 sentences of neutral and happy
    (24 clips; 02-01-03_01 opens with 8 black frames). Returns (records folder, the corpus folder)."""
    from emotf import preprocess

    src = shared("javanese_av") / "dataset-resize"
    root = tmp_path_factory.mktemp("javanese")
    corpus = root / "corpus"
    corpus.mkdir()
    for f in sorted(src.glob("*.mp4")):
        if f.name[:2] in ("01", "02", "06") and f.name[6:8] in ("01", "03"):
            (corpus / f.name).symlink_to(f)
    assert preprocess.main(["--corpus", "javanese", "--data", str(corpus), "--out", str(root / "records"),
                            "--variant", "ds2", "--workers", "2", "--no-progress"]) == 0
    return root / "records" / "javanese" / "ds2", src


@pytest.fixture(scope="session")
def long_run_corpus(tmp_path_factory):
    """120 synthetic RAVDESS-layout utterances without video: enough noise cleanup (ds4) that a run is still
    going when its first shards land, so the kill tests kill a run in flight."""
    from emotf.corpora import synthetic as synth

    root = tmp_path_factory.mktemp("long") / "corpus"
    synth.generate_ravdess(root, actors=4, statements=2, repetitions=1, video=False, seed=7)
    return root


def wait_for_shards(target, n: int, timeout_s: float = 120) -> None:
    """Wait until ``target`` holds ``n`` finished shards (a run writing them, in another process)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and len(list(target.glob("*.tfrecord"))) < n:
        time.sleep(0.05)


def bad_corpus(tmp_path):
    """A CSV corpus with one good file and one of each kind of bad input."""
    d = tmp_path / "corpus"
    write_wav(d / "good.wav", tone(440, 2.0))
    write_wav(d / "silent.wav", np.zeros(16000, np.float32))
    write_wav(d / "lo.wav", tone(440, 1.0, 8000), sr=8000)
    (d / "junk.wav").write_bytes(b"garbage" * 50)
    rows = ["path,label,speaker", "good.wav,sad,s1", "silent.wav,sad,s1", "lo.wav,angry,s2", "junk.wav,angry,s2",
            "missing.wav,happy,s3", "good.wav,,s3"]
    (d / "manifest.csv").write_text("\n".join(rows) + "\n")
    return d / "manifest.csv"
