import collections

import pytest
from conftest import shared

from emotf import corpora


def test_iemocap_reader_reads_every_session_in_release_layout(synth_iemocap):
    root, index = synth_iemocap
    utts, problems = corpora.read_iemocap(root)
    assert problems == []
    assert sorted(u.utt_id for u in utts) == sorted(i["utt"] for i in index)
    assert {u.session for u in utts} == {"Session1", "Session2"}
    by_id = {u.utt_id: u for u in utts}
    for item in index:
        u = by_id[item["utt"]]
        assert u.label == item["label"]
        assert u.video_start_s == pytest.approx(item["start"], abs=1e-4)  # dialog time, for the video
        assert (u.start_s, u.end_s) == (0.0, None)  # the sentence wav holds the utterance alone
        assert u.audio_path.endswith(f"sentences/wav/{item['dialog']}/{item['utt']}.wav")
        assert u.video_path.endswith(f"dialog/avi/DivX/{item['dialog']}.avi")
        assert u.speaker == f"Ses{item['session']:02d}{item['gender']}"
        assert u.gender == item["gender"]
        assert u.mode == "improvised"


def test_iemocap_label_line_format(tmp_path):
    f = tmp_path / "Ses01F_impro01.txt"
    f.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[4.0000, 3.5000, 3.0000]\n"
        "[broken line\n"
    )
    rows, problems = corpora.parse_iemocap_labels(f)
    assert [(r["utt"], r["code"], r["start"], r["end"], r["vad"]) for r in rows] == [
        ("Ses01F_impro01_F000", "neu", 6.2901, 8.2357, [2.5, 2.5, 2.5]),
        ("Ses01F_impro01_M001", "exc", 10.01, 11.3925, [4.0, 3.5, 3.0]),
    ]
    assert len(problems) == 1 and "malformed label line" in problems[0].reason


def _iemocap_dialog(root, dialog, lines):
    sess = root / f"Session{int(dialog[3:5])}"
    (sess / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
    (sess / "sentences" / "wav" / dialog).mkdir(parents=True, exist_ok=True)
    if lines is not None:
        (sess / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(lines) + "\n")


def test_iemocap_unknown_code_and_missing_label_file_are_reported(tmp_path):
    _iemocap_dialog(tmp_path, "Ses01F_impro01", ["[1.0 - 2.0]\tSes01F_impro01_F000\tzzz\t[1, 2, 3]",
                                                 "[2.0 - 3.0]\tSes01F_impro01_M000\tang\t[1, 2, 3]"])
    _iemocap_dialog(tmp_path, "Ses01M_script02_1", None)
    utts, problems = corpora.read_iemocap(tmp_path)
    assert [u.utt_id for u in utts] == ["Ses01F_impro01_M000"]
    assert utts[0].mode == "improvised" and utts[0].label == "angry"
    reasons = sorted(p.reason for p in problems)
    assert reasons == ["missing label file for dialog Ses01M_script02_1", "unknown label code 'zzz'"]
    assert any("Ses01M_script02_1.txt" in p.path for p in problems)


@pytest.mark.parametrize("rule, mocap, speaker, side", [
    ("mocap-left", "F", "F", "left"), ("mocap-left", "F", "M", "right"),
    ("mocap-left", "M", "M", "left"), ("mocap-right", "F", "F", "right"),
    ("left", "F", "M", "left"), ("right", "M", "M", "right"),
])
def test_iemocap_speaker_side_follows_the_speaker(rule, mocap, speaker, side):
    assert corpora.iemocap_speaker_side(mocap, speaker, rule) == side


def test_iemocap_scripted_ids_and_sessions(tmp_path):
    _iemocap_dialog(tmp_path, "Ses05M_script01_1b", ["[1.0 - 2.0]\tSes05M_script01_1b_F003\tfru\t[1, 2, 3]"])
    utts, problems = corpora.read_iemocap(tmp_path)
    assert problems == []
    (u,) = utts
    assert (u.speaker, u.session, u.mode, u.speaker_side) == ("Ses05F", "Session5", "scripted", "right")


def test_class_sets_and_exc_merge():
    assert corpora.class_names("iemocap", "4") == ("happy", "sad", "angry", "neutral")
    assert corpora.class_names("iemocap", "3") == ("sad", "angry", "neutral")
    merged = corpora.class_names("iemocap", "all")
    assert "excited" not in merged and "no_agreement" not in merged and len(merged) == 9
    assert "excited" in corpora.class_names("iemocap", "all", merge_exc=False)
    assert corpora.map_label("excited", merge_exc=True) == "happy"
    assert corpora.map_label("excited", merge_exc=False) == "excited"
    assert corpora.class_names("csv", "all", ("b", "a", "b")) == ("a", "b")


def test_ravdess_groups_modalities_of_one_take(synth_ravdess, tmp_path):
    root, index = synth_ravdess
    utts, problems = corpora.read_ravdess(root)
    assert problems == []
    assert len(utts) == len(index)
    u = utts[0]
    assert u.audio_path.endswith(".wav") and "/03-01-" in u.audio_path
    assert u.video_path.endswith(".mp4") and "/02-01-" in u.video_path
    assert u.speaker == "Actor_01" and u.gender == "M"
    # An audio-visual 01-* file is preferred for video; a lone video-only file is reported.
    (tmp_path / "Actor_02").mkdir()
    for name in ("03-01-04-01-01-01-02.flac", "01-01-04-01-01-01-02.mp4", "02-01-05-01-01-01-02.mp4", "x.wav"):
        (tmp_path / "Actor_02" / name).write_bytes(b"")
    utts, problems = corpora.read_ravdess(tmp_path)
    assert len(utts) == 1 and utts[0].label == "sad" and utts[0].gender == "F"
    assert utts[0].video_path.endswith("01-01-04-01-01-01-02.mp4")
    assert sorted(p.reason.split(" ")[0] for p in problems) == ["name", "video-only"]


def test_cremad_layout_and_flat_folder(tmp_path):
    for sub, name in [("AudioWAV", "1001_DFA_ANG_XX.wav"), ("AudioMP3", "1001_DFA_ANG_XX.mp3"),
                      ("VideoFlash", "1001_DFA_ANG_XX.flv"), ("AudioMP3", "1002_IEO_SAD_HI.mp3"),
                      ("VideoFlash", "1003_TIE_HAP_LO.flv"), ("AudioWAV", "1004_TIE_XYZ_LO.wav")]:
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / name).write_bytes(b"")
    (tmp_path / "VideoDemographics.csv").write_text("ActorID,Age,Sex\n1001,51,Male\n1002,21,Female\n")
    utts, problems = corpora.read_cremad(tmp_path)
    got = {u.utt_id: (u.label, u.gender, u.audio_path.rsplit(".", 1)[1], bool(u.video_path)) for u in utts}
    assert got == {"cremad_1001_DFA_ANG_XX": ("angry", "M", "wav", True),
                   "cremad_1002_IEO_SAD_HI": ("sad", "F", "mp3", False),
                   "cremad_1003_TIE_HAP_LO": ("happy", "", "flv", True)}
    assert len(problems) == 1 and "unknown emotion code 'XYZ'" in problems[0].reason


def test_emodb_and_csv_manifest(tmp_path):
    (tmp_path / "wav").mkdir()
    for name in ("03a01Wa.wav", "08b02Tc.flac", "99zzzz.wav"):
        (tmp_path / "wav" / name).write_bytes(b"")
    utts, problems = corpora.read_emodb(tmp_path)
    assert [(u.speaker, u.gender, u.label) for u in utts] == [("spk03", "M", "angry"), ("spk08", "F", "sad")]
    assert len(problems) == 1
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,speaker,video,start,end\n"
                   "a.wav,Happy,s1,,,\n"
                   "b.wav,sad,s2,b.mp4,1.0,2.5\n"
                   "c.wav,,s2,,,\n"
                   "d.wav,sad,s2,,3,2\n")
    utts, problems = corpora.read_csv_manifest(csv)
    assert [(u.label, u.speaker, u.start_s, u.end_s, bool(u.video_path)) for u in utts] == [
        ("happy", "s1", 0.0, None, False), ("sad", "s2", 1.0, 2.5, True)]
    assert utts[1].audio_path == str(tmp_path / "b.wav")
    assert [p.path.rsplit(":", 1)[1] for p in problems] == ["4", "5"]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx.wav,sad\n")
    with pytest.raises(ValueError, match="missing column.*path.*speaker"):
        corpora.read_csv_manifest(bad)


def test_read_corpus_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus"):
        corpora.read_corpus("nope", tmp_path)
    with pytest.raises(FileNotFoundError, match="corpus folder not found"):
        corpora.read_corpus("ravdess", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no Session"):
        corpora.read_corpus("iemocap", tmp_path)


@pytest.mark.realdata
def test_real_ravdess_folder_reads_all_1440_clips():
    utts, problems = corpora.read_ravdess(shared("ravdess_speech"))
    assert problems == [] and len(utts) == 1440
    assert len({u.speaker for u in utts}) == 24
    counts = collections.Counter(u.label for u in utts)
    assert counts["neutral"] == 96 and all(counts[k] == 192 for k in counts if k != "neutral")


@pytest.mark.realdata
def test_real_emodb_folder_reads_all_535_clips():
    utts, problems = corpora.read_emodb(shared("emodb"))
    assert problems == [] and len(utts) == 535
    assert len({u.speaker for u in utts}) == 10
    assert collections.Counter(u.label for u in utts)["angry"] == 127


@pytest.mark.realdata
def test_real_cremad_sample():
    utts, problems = corpora.read_cremad(shared("cremad_sample"))
    assert problems == [] and len(utts) == 12
    assert sum(bool(u.video_path) for u in utts) == 6


@pytest.mark.realdata
def test_real_emovo_folder_reads_all_588_clips():
    utts, problems = corpora.read_corpus("emovo", shared("emovo"))
    assert problems == [] and len(utts) == 588
    assert set(collections.Counter(u.label for u in utts).values()) == {84}  # 7 emotions x 84 (SOURCE.txt)
    assert collections.Counter(u.speaker for u in utts) == {s: 98 for s in ("f1", "f2", "f3", "m1", "m2", "m3")}
    by_id = {u.utt_id: u for u in utts}
    assert by_id["emovo_gio-f1-b1"].label == "happy" and by_id["emovo_rab-m3-n5"].label == "angry"
    assert by_id["emovo_pau-m2-l1"].label == "fearful" and by_id["emovo_pau-m2-l1"].gender == "M"


@pytest.mark.realdata
def test_real_tess_folder_reads_all_1120_clips():
    utts, problems = corpora.read_corpus("tess", shared("tess"))
    assert problems == [] and len(utts) == 1120
    assert collections.Counter((u.speaker, u.label) for u in utts) == {
        (s, e): 80 for s in ("OAF", "YAF") for e in ("angry", "disgust", "fearful", "happy", "neutral", "surprised",
                                                     "sad")}
    # the release's one "OA_bite_neutral" belongs to OAF by its folder
    assert any(u.utt_id == "tess_OAF_bite_neutral" and u.raw_label == "neutral" for u in utts)


def test_emovo_and_tess_layouts_and_their_problems(tmp_path):
    from conftest import tone, write_wav

    for name in ("EMOVO/f2/tri-f2-l3.wav", "EMOVO/m1/sor-m1-d1.flac", "EMOVO/m1/xxx-m1-d1.wav", "EMOVO/m1/notes.wav"):
        write_wav(tmp_path / name, tone(200))
    utts, problems = corpora.read_corpus("emovo", tmp_path / "EMOVO")
    assert sorted((u.speaker, u.label) for u in utts) == [("f2", "sad"), ("m1", "surprised")]
    assert sorted(p.reason for p in problems) == ["name does not follow the EMOVO emo-spk-sentence pattern",
                                                  "unknown emotion code 'xxx'"]
    for name in ("TESS/OAF_Pleasant_surprise/OAF_back_ps.wav", "TESS/YAF_fear/YAF_bath_fear.wav",
                 "TESS/YAF_fear/YAF_bean_angry.wav"):
        write_wav(tmp_path / name, tone(200))
    utts, problems = corpora.read_corpus("tess", tmp_path / "TESS")
    assert sorted((u.speaker, u.label) for u in utts) == [("OAF", "surprised"), ("YAF", "fearful")]
    assert len(problems) == 1 and "differs from the folder" in problems[0].reason
    assert corpora.CORPUS_LABELS["tess"] == ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.mark.realdata
def test_real_javanese_folder_reads_all_240_clips_as_source_txt_counts_them():
    utts, problems = corpora.read_corpus("javanese", shared("javanese_av"))
    assert len(utts) == 240 and problems == []
    counts = collections.Counter((u.speaker, u.label) for u in utts)
    labels = ("neutral", "sad", "happy", "surprised", "fearful", "angry")
    assert counts == {(f"spk{a:02d}", label): 4 for a in range(1, 11) for label in labels}  # SOURCE.txt's table
    by_id = {u.utt_id: u for u in utts}
    clip = by_id["javanese_02-01-03_01"]
    assert clip.label == "happy" and clip.gender == "F" and clip.video_path == clip.audio_path
    assert clip.audio_path.endswith("02-01-03_01.mp4") and by_id["javanese_07-04-06_01"].gender == "M"
    assert {u.label for u in utts if u.label in corpora.CLASS_SETS["4"]} == set(corpora.CLASS_SETS["4"])
