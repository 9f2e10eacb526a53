import pytest

from emotf.data import splits


def ravdess_like(n=24):
    return {f"Actor_{i:02d}": {"session": f"Actor_{i:02d}", "gender": "M" if i % 2 else "F"} for i in range(1, n + 1)}


def iemocap_like(sessions=5):
    return {f"Ses{s:02d}{g}": {"session": f"Session{s}", "gender": g} for s in range(1, sessions + 1) for g in "FM"}


def _check(split, speakers):
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert train and val and test
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(speakers)


@pytest.mark.parametrize("scheme", ["speaker-folds", "actor-folds", "lospo", "auto"])
def test_no_speaker_in_two_parts_ravdess(scheme):
    spk = ravdess_like()
    n = splits.num_folds(spk, scheme, folds=6)
    tested = []
    for k in range(n):
        s = splits.make_split(spk, scheme, k, folds=6)
        _check(s, spk)
        tested += s.test
    assert sorted(tested) == sorted(spk)  # every speaker is tested exactly once over the folds


def test_auto_picks_speaker_folds_for_one_speaker_sessions_and_loso_for_iemocap():
    assert splits.make_split(ravdess_like(), "auto", 0).scheme == "speaker-folds"
    assert splits.make_split(iemocap_like(), "auto", 0).scheme == "loso"


def test_speaker_folds_are_gender_balanced():
    s = splits.make_split(ravdess_like(), "speaker-folds", 2, folds=6)
    genders = [int(a[-2:]) % 2 for a in s.test]
    assert len(s.test) == 4 and sum(genders) == 2


@pytest.mark.parametrize("val", ["speaker", "session"])
def test_loso_holds_out_one_session(val):
    spk = iemocap_like()
    for k in range(5):
        s = splits.make_split(spk, "loso", k, val=val)
        _check(s, spk)
        assert {spk[x]["session"] for x in s.test} == {f"Session{k + 1}"}
        held = {spk[x]["session"] for x in s.val}
        assert len(held) == 1 and held != {f"Session{k + 1}"}
        assert len(s.val) == (1 if val == "speaker" else 2)


def test_bad_requests_are_named():
    with pytest.raises(ValueError, match="fold must lie"):
        splits.make_split(ravdess_like(), "speaker-folds", 6, folds=6)
    with pytest.raises(ValueError, match="at least 3 folds"):
        splits.make_split(ravdess_like(2), "speaker-folds", 0)
    with pytest.raises(ValueError, match="split must be one of"):
        splits.make_split(ravdess_like(), "random", 0)


def _corpora():
    spk = {f"ravdess/{s}": {**m, "corpus": "ravdess"} for s, m in ravdess_like(12).items()}
    spk.update({f"emodb/spk{i:02d}": {"session": f"spk{i:02d}", "gender": "MF"[i % 2], "corpus": "emodb"}
                for i in range(10)})
    spk.update({f"tess/{s}": {"session": s, "gender": "F", "corpus": "tess"} for s in ("OAF", "YAF")})
    return spk


def test_leave_one_corpus_out_never_trains_or_validates_on_the_test_corpus():
    spk = _corpora()
    for test in ("emodb", "ravdess", "tess"):
        s = splits.make_corpus_split(spk, fold=1, test_corpus=test)
        _check(s, spk)
        assert {spk[u]["corpus"] for u in s.test} == {test} and len(s.test) == sum(
            m["corpus"] == test for m in spk.values())
        assert test not in {spk[u]["corpus"] for u in s.train + s.val}
        # validation: one speaker fold of each other corpus of >= 3 speakers (TESS has two: it only trains)
        assert {spk[u]["corpus"] for u in s.val} == {"ravdess", "emodb"} - {test}
        assert s.scheme == f"leave-one-corpus-out ({test})"
    with pytest.raises(ValueError, match="not among"):
        splits.make_corpus_split(spk, test_corpus="iemocap")


def test_several_corpora_split_within_each():
    spk = _corpora()
    s = splits.make_corpus_split(spk, "speaker-folds", fold=2)
    _check(s, spk)
    for corpus in ("ravdess", "emodb"):  # every corpus of >= 3 speakers tests and validates some of its own
        assert any(spk[u]["corpus"] == corpus for u in s.test) and any(spk[u]["corpus"] == corpus for u in s.val)
    assert {u for u in spk if spk[u]["corpus"] == "tess"} <= set(s.train)
