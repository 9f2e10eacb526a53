"""The results grid (experiments/): plan order, run-folder naming, the ledger, the generated markdown blocks."""

import json
from pathlib import Path

import numpy as np
import pytest

from emotf.evaluation import summary
from experiments import ledger, plan, report
from experiments import run as runner
from experiments.plan import Cell

ROOT = Path(__file__).resolve().parents[1]


def _fake_run(root: Path, cell: Cell, fold: int, ua: float, *, wa: float = 0.5, cm=None, evals=None) -> Path:
    """A finished run folder as emotf.fit leaves it (the files the report reads)."""
    out = root / cell.out(fold)
    out.mkdir(parents=True)
    cm = cm if cm is not None else [[3, 1], [1, 3]]
    names = ["happy", "sad"]
    (out / "config.json").write_text(json.dumps({"config": {"arch": cell.arch, "fold": fold}}))
    (out / "metrics.json").write_text(json.dumps({
        "split": {"fold": fold}, "class_names": names, "counts": {}, "selected_epoch": 3, "params": 1234,
        "test": {"n": 8, "wa": wa, "ua": ua, "macro_f1": ua - 0.1, "confusion_matrix": cm},
        "validation": {"n": 8, "wa": 0.6, "ua": 0.7, "macro_f1": 0.6, "confusion_matrix": cm}}))
    for stem, rep in (evals or {}).items():
        (out / "eval").mkdir(exist_ok=True)
        (out / "eval" / f"{stem}.json").write_text(json.dumps(rep))
    return out


def test_jobs_are_breadth_first_and_cross_evaluation_follows_its_fit():
    cells = [Cell("grid", "cnn_rnn", folds=(0, 1, 2), cross=("records/emodb/ds2",)), Cell("grid", "crnn", folds=(0,))]
    got = [(j.cell.arch, j.fold, j.kind) for j in plan.jobs(cells)]
    assert got == [("cnn_rnn", 0, "fit"), ("cnn_rnn", 0, "eval"), ("crnn", 0, "fit"),
                   ("cnn_rnn", 1, "fit"), ("cnn_rnn", 1, "eval"), ("cnn_rnn", 2, "fit"), ("cnn_rnn", 2, "eval")]
    assert [j.cell.arch for j in plan.jobs(cells + [Cell("av", "av")], sections=["av"])] == ["av"] * 6


def test_run_folders_and_commands_follow_one_naming_scheme():
    assert Cell("grid", "cnn_rnn", "4").out(3) == "runs/ravdess-c4-f3/cnn_rnn"
    assert Cell("grid", "crnn", "all").out(0) == "runs/ravdess-c8-f0/crnn"
    assert Cell("variants", "cnn_rnn", "4", variant="ds4").out(1) == "runs/ravdess-ds4-c4-f1/cnn_rnn"
    tuned = Cell("tuned", "cnn_rnn", args=("--hparams", "h.json"), tag="tuned")
    assert tuned.out(2) == "runs/ravdess-c4-f2/cnn_rnn-tuned"
    argv = tuned.fit_argv(2)
    assert argv[:3] == ["python", "-m", "emotf.fit"] and argv[argv.index("--fold") + 1] == "2"
    assert argv[argv.index("--hparams") + 1] == "h.json" and argv[-1] == tuned.out(2)
    assert "--fold F" in tuned.command() and tuned.command().endswith("runs/ravdess-c4-fF/cnn_rnn-tuned")
    # every fit command of the plan parses with emotf.fit's own parser
    from emotf import fit

    for job in plan.jobs(plan.PLAN):
        if job.kind == "fit":
            fit.build_parser().parse_args(job.argv()[3:])
    outs = [c.out(0) for c in plan.PLAN]
    assert len(outs) == len(set(outs)), "two rows of the plan would share run folders"


def test_run_skips_finished_folds_and_stops_after_max_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cell = Cell("grid", "cnn", folds=(0, 1, 2))
    _fake_run(tmp_path, cell, 1, 0.5)
    assert runner.run([cell], dry_run=True) == 2
    printed = capsys.readouterr().out
    assert "--fold 0" in printed and "--fold 2" in printed and "--fold 1 " not in printed
    assert runner.run([cell], dry_run=True, max_jobs=1) == 1
    capsys.readouterr()
    crossed = Cell("grid", "crnn", folds=(0, 1), cross=("records/emodb/ds2",))
    _fake_run(tmp_path, crossed, 1, 0.5)
    assert runner.run([crossed], dry_run=True) == 3
    printed = capsys.readouterr().out.splitlines()
    assert "emotf.evaluate runs/ravdess-c4-f1/crnn" in printed[0] and "--fold 0" in printed[1]


def test_mean_std_and_pooled_confusion():
    assert summary.mean_std([]) == "–"
    assert summary.mean_std([0.5]) == "0.500"
    assert summary.mean_std([0.5, 0.7]) == f"0.600 ± {np.std([0.5, 0.7], ddof=1):.3f}"


def test_report_blocks_hold_the_runs_numbers(tmp_path):
    emodb = "records/emodb/ds2"
    cell = Cell("grid", "cnn_rnn", folds=(0, 1, 2), cross=(emodb,))
    rep = {"wa": 0.4, "ua": 0.45, "macro_f1": 0.3, "n": 100, "predicted_classes": ["happy", "sad"]}
    _fake_run(tmp_path, cell, 0, 0.6, evals={"emodb-ds2-all": rep})
    _fake_run(tmp_path, cell, 2, 0.8, cm=[[4, 0], [2, 2]], evals={"emodb-ds2-all": {**rep, "ua": 0.55}})
    tuned = Cell("tuned", "cnn_rnn", folds=(0, 1), args=("--hparams", "h.json"), tag="tuned")
    _fake_run(tmp_path, tuned, 0, 0.9)
    cells = [cell, tuned, Cell("av", "av", "all", "synth_iemocap", folds=(0,), split="auto")]
    blocks = report.tables(cells, tmp_path)
    grid = blocks["grid"]
    assert f"0.700 ± {np.std([0.6, 0.8], ddof=1):.3f}" in grid and "| 0,2 |" in grid and "0.60 0.80" in grid
    assert "--fold F" in grid
    assert "0.500 ± 0.071" in blocks["cross"] and "| 2 |" in blocks["cross"]
    # tuned vs untuned compares the folds both have: fold 0 only
    tuned_rows = [ln for ln in blocks["tuned"].splitlines() if ln.startswith("| paper") or ln.startswith("| tuned")]
    assert "| 0 |" in tuned_rows[0] and "0.600" in tuned_rows[0] and "0.900" in tuned_rows[1]
    assert "none yet" in blocks["av"]
    figs = report.confusion_figures(cells, tmp_path, tmp_path / "figs")
    assert [f.name for f in figs] == ["ravdess-ds2-c4-cnn_rnn.png", "ravdess-ds2-c4-cnn_rnn-tuned.png"]
    np.testing.assert_array_equal(summary.pooled_confusion(ledger.cell_results(cell, tmp_path)), [[7, 1], [3, 5]])


def test_level_rows_follow_the_grid_row_they_compare_with(tmp_path):
    grid = Cell("grid", "cnn_rnn", folds=(0,), cross=("records/emodb/ds2", "records/emodb/ds2-gain-19.5"))
    level = Cell("level", "cnn_rnn", variant="ds2-level-35", folds=(0,), cross=("records/emodb/ds2-level-35",))
    assert level.records == "records/ravdess/ds2-level-35" and level.out(0) == "runs/ravdess-ds2-level-35-c4-f0/cnn_rnn"
    rep = {"wa": 0.4, "ua": 0.45, "macro_f1": 0.3, "n": 100, "predicted_classes": ["happy", "sad"]}
    _fake_run(tmp_path, grid, 0, 0.6, evals={"emodb-ds2-all": rep, "emodb-ds2-gain-19.5-all": {**rep, "ua": 0.3}})
    _fake_run(tmp_path, level, 0, 0.5, evals={"emodb-ds2-level-35-all": {**rep, "ua": 0.52}})
    blocks = report.tables([grid, level], tmp_path)
    rows = [ln for ln in blocks["level"].splitlines() if ln.startswith("| ds2")]
    assert rows[0].startswith("| ds2 | 4 | cnn_rnn |") and "0.600" in rows[0]
    assert rows[1].startswith("| ds2-level-35 |") and "0.500" in rows[1]
    cross = blocks["cross"]
    assert "| emodb-ds2-gain-19.5 |" in cross and "0.300" in cross and "0.520" in cross
    assert ("python -m emotf.evaluate runs/ravdess-ds2-level-35-c4-fF/cnn_rnn --records records/emodb/ds2-level-35"
            in cross)
    assert plan.eval_stem("records/emodb/ds2-gain-19.5") == "emodb-ds2-gain-19.5-all"


def test_seed_rows_put_each_seed_of_a_fold_beside_the_default_seed_s_run(tmp_path):
    base = Cell("variants", "cnn_rnn", variant="ds3", folds=(0, 1))
    seeds = [Cell("seeds", "cnn_rnn", variant="ds3", folds=(0,), args=("--seed", str(s)), tag=f"seed{s}")
             for s in (1, 2)]
    assert seeds[0].out(0) == "runs/ravdess-ds3-c4-f0/cnn_rnn-seed1"
    assert seeds[1].fit_argv(0)[seeds[1].fit_argv(0).index("--seed") + 1] == "2"
    _fake_run(tmp_path, base, 0, 0.50)
    _fake_run(tmp_path, base, 1, 0.90)  # another fold: not part of fold 0's spread
    _fake_run(tmp_path, seeds[0], 0, 0.62)
    blocks = report.tables([base, *seeds], tmp_path)
    row = next(ln for ln in blocks["seeds"].splitlines() if ln.startswith("| ds3"))
    assert "| 0 | 0 1 | 0.500 0.620 | 0.560 ± 0.085 | 0.120 |" in row  # seed 2 not run yet: left out, not zero
    assert "--seed 2 --out runs/ravdess-ds3-c4-fF/cnn_rnn-seed2" in blocks["seeds"]
    # a seed's run is a fold of a row that has its own figure
    assert not any("seed" in p.name for p in report.confusion_figures([base, *seeds], tmp_path, tmp_path / "png"))


def test_fill_replaces_only_named_blocks():
    text = "intro\n<!-- results:grid -->\nold\n<!-- /results:grid -->\nmiddle\n<!-- results:av -->\nx\n" \
           "<!-- /results:av -->\nend\n"
    out = report.fill(text, {"grid": "NEW", "av": "AV"})
    assert out == "intro\n<!-- results:grid -->\nNEW\n<!-- /results:grid -->\nmiddle\n<!-- results:av -->\nAV\n" \
                  "<!-- /results:av -->\nend\n"
    assert report.fill(out, {"grid": "NEW", "av": "AV"}) == out
    empty = "<!-- results:grid -->\n<!-- /results:grid -->\n"
    assert report.fill(empty, {"grid": "G"}) == "<!-- results:grid -->\nG\n<!-- /results:grid -->\n"
    with pytest.raises(KeyError):
        report.fill("<!-- results:nope -->\n\n<!-- /results:nope -->", {})


def test_summarize_cli(tmp_path, capsys):
    from emotf import summarize

    cell = Cell("grid", "cnn", folds=(0, 1))
    runs = [str(_fake_run(tmp_path, cell, f, ua)) for f, ua in ((0, 0.4), (1, 0.6))]
    assert summarize.main(runs) == 0
    out = capsys.readouterr().out
    assert "mean ± std (2)" in out and "0.500 ± 0.141" in out
    assert summarize.main([str(tmp_path / "nothing")]) == 2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_run_trains_a_missing_fold_with_emotf_fit_then_skips_it(tiny_records, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "records" / "tiny").mkdir(parents=True)
    (tmp_path / "records" / "tiny" / "ds1").symlink_to(tiny_records)
    cell = Cell("grid", "cnn", "4", corpus="tiny", variant="ds1", folds=(0,), epochs=1,
                args=("--batch-size", "16", "--max-steps-per-epoch", "2"))
    assert runner.run([cell]) == 1
    (res,) = ledger.cell_results(cell, tmp_path)
    assert res.fold == 0 and res.config["arch"] == "cnn" and res.config["epochs"] == 1
    assert runner.run([cell]) == 0


def test_finished_runs_are_archived_into_the_ledger_and_read_back_from_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cell = Cell("grid", "cnn_rnn", folds=(0, 1), cross=("records/emodb/ds2",))
    rep = {"wa": 0.4, "ua": 0.45, "macro_f1": 0.3, "n": 100, "predicted_classes": ["happy", "sad"]}
    run0 = _fake_run(tmp_path, cell, 0, 0.6, evals={"emodb-ds2-all": rep})
    (run0 / "model.keras").write_bytes(b"weights stay out of the ledger")
    _fake_run(tmp_path, cell, 1, 0.8)
    assert ledger.archive_plan([cell]) == 5  # config + metrics (+ one eval) per fold; no history here
    kept = tmp_path / "experiments/ledger/ravdess-c4-f0/cnn_rnn"
    assert sorted(p.name for p in kept.rglob("*")) == ["config.json", "emodb-ds2-all.json", "eval", "metrics.json"]
    assert ledger.archive(tmp_path / "runs/unfinished") == []
    # a fresh clone: no runs/, only the ledger
    import shutil

    shutil.rmtree(tmp_path / "runs")
    res = ledger.cell_results(cell, tmp_path)
    assert [r.fold for r in res] == [0, 1] and res[0].evals["emodb-ds2-all"]["ua"] == 0.45
    assert "0.700 ±" in report.tables([cell], tmp_path)["grid"]
    fit1, eval1 = [j for j in plan.jobs([cell]) if j.fold == 1]
    assert fit1.is_done() and not eval1.is_done()
    # fold 1's EmoDB score needs its model, which only a retrain brings back
    assert runner.run([cell], dry_run=True) == 1
    printed = capsys.readouterr().out.splitlines()
    assert "emotf.fit" in printed[0] and "--fold 1" in printed[0] and "emotf.evaluate runs/ravdess-c4-f1" in printed[1]


def test_recorded_rows_stand_until_new_runs_cover_their_folds(tmp_path):
    cell = Cell("grid", "cnn_rnn", folds=(0, 1, 2), cross=("records/emodb/ds2",))
    old = {"classes": "4", "arch": "cnn_rnn", "folds": "0,1", "test UA": "0.999"}
    old_cross = {"trained on": "RAVDESS ds2, 4 classes", "arch": "cnn_rnn", "tested on": "emodb-ds2",
                 "fold models": "2", "UA": "0.111"}
    recorded = tmp_path / ledger.RECORDED
    recorded.parent.mkdir(parents=True)
    recorded.write_text(json.dumps({"blocks": {"grid": [old], "cross": [old_cross]}}))
    rep = {"wa": 0.4, "ua": 0.45, "macro_f1": 0.3, "n": 100, "predicted_classes": ["happy", "sad"]}
    _fake_run(tmp_path, cell, 0, 0.6, evals={"emodb-ds2-all": rep})
    blocks = report.tables([cell], tmp_path)
    assert "| 0,1 † |" in blocks["grid"] and "0.999" in blocks["grid"] and "0.600" not in blocks["grid"]
    assert "| 2 † |" in blocks["cross"] and "0.111" in blocks["cross"] and report.RECORDED_NOTE in blocks["cross"]
    assert report.confusion_figures([cell], tmp_path, tmp_path / "figs") == []  # the recorded figure stays
    _fake_run(tmp_path, cell, 2, 0.8, evals={"emodb-ds2-all": rep})  # folds 0 and 2 do not cover 0,1
    assert "0.999" in report.tables([cell], tmp_path)["grid"]
    _fake_run(tmp_path, cell, 1, 0.7, evals={"emodb-ds2-all": rep})
    blocks = report.tables([cell], tmp_path)
    assert "| 0,1,2 |" in blocks["grid"] and "0.700 ± 0.100" in blocks["grid"] and "†" not in blocks["grid"]
    assert "| 3 |" in blocks["cross"] and "0.111" not in blocks["cross"]
    assert len(report.confusion_figures([cell], tmp_path, tmp_path / "figs")) == 1


def test_markdown_tables_parse_back():
    rows = [{"a": "1", "b": "0.5 ± 0.1"}, {"a": "2", "b": "x"}]
    assert report.parse_markdown_table("text\n" + summary.markdown_table(rows) + "\n\nmore") == rows
    assert report.parse_markdown_table("no table") == []


def test_the_tuned_row_s_configuration_is_kept_in_git():
    hp = json.loads((ROOT / plan.TUNED_HPARAMS).read_text())
    assert hp["arch"] == "cnn_rnn" and hp["hparams"]["filters"] == [32, 48, 64]


def test_a_fresh_clone_reproduces_docs_results_md_byte_for_byte(tmp_path):
    """No runs/ at all: every table of the page comes from the ledger, exactly as it stands in git."""
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    page = (ROOT / "docs" / "results.md").read_text()
    assert report.fill(page, report.tables(plan.PLAN, tmp_path)) == page


def test_the_commands_print_the_plan_and_archive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cell = plan.PLAN[0]
    _fake_run(tmp_path, cell, 0, 0.6)
    assert plan.main(["--section", cell.section, "--arch", cell.arch, "--classes", cell.classes]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("done  python -m emotf.fit") and all(ln.startswith(("done", "todo")) for ln in lines)
    assert runner.main(["--archive"]) == 0 and "2 file(s) copied" in capsys.readouterr().out


def test_leave_one_corpus_out_and_robustness_cells(tmp_path, monkeypatch, capsys):
    loco = Cell("loco", "logmel_cnn", corpus="emodb", variant="wave", folds=(0,), corpora=("ravdess", "emodb", "tess"),
                test_corpus="emodb", tag="loco")
    argv = loco.fit_argv(0)
    assert argv[argv.index("--records") + 1] == "records/ravdess/wave,records/emodb/wave,records/tess/wave"
    assert argv[argv.index("--test-corpus") + 1] == "emodb"
    assert loco.out(0) == "runs/loco-emodb-wave-c4-f0/logmel_cnn-loco"
    robust = Cell("recipe", "logmel_cnn", variant="wave", folds=(0, 1), robust=(0,), cross=("records/emodb/wave",))
    got = [(j.fold, j.kind) for j in plan.jobs([robust])]
    assert got == [(0, "fit"), (0, "eval"), (0, "robust"), (1, "fit"), (1, "eval")]
    rob = [j for j in plan.jobs([robust]) if j.kind == "robust"][0]
    assert rob.argv()[-3:] == ["--records", "records/ravdess/wave", "--robustness"]
    assert rob.done_file.name == "ravdess-wave-test-robustness.json"
    # the tables
    rep = {"n": 100, "wa": 0.5, "ua": 0.55, "macro_f1": 0.5, "most_predicted": {"class": "sad", "share": 0.3},
           "predicted_classes": ["happy", "sad"]}
    run = _fake_run(tmp_path, loco, 0, 0.61)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"]["most_predicted"] = {"class": "angry", "share": 0.34}
    metrics["test_speaker_adapted"] = {**metrics["test"], "ua": 0.66, "most_predicted": {"class": "sad", "share": 0.3}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    cond = {name: {"ua": 0.5, "unchanged": 0.9, "wa": 0.5, "n": 10, "most_predicted": rep["most_predicted"]}
            for name in ("clean", "gain -20 dB", "gain -10 dB", "gain +10 dB", "tilt -6 dB/oct", "tilt +6 dB/oct",
                         "noise 20 dB SNR")}
    _fake_run(tmp_path, robust, 0, 0.7, evals={"emodb-wave-all": rep,
                                             "ravdess-wave-test-robustness": {"utterances": 10, "conditions": cond}})
    blocks = report.tables([loco, robust], tmp_path)
    row = next(ln for ln in blocks["loco"].splitlines() if ln.startswith("| emodb"))
    assert "| ravdess, tess |" in row and "0.610" in row and "angry 34%" in row
    assert "| 0.660 | sad 30% |" in row  # speaker-adapted, beside
    row = next(ln for ln in blocks["robustness"].splitlines() if ln.startswith("| logmel_cnn"))
    assert "| 0 | 10 | 0.500 | 0.500 / 90% |" in row
    assert "--robustness" in blocks["robustness"] and "--test-corpus emodb" in blocks["loco"]


def test_ablation_rows_sit_beside_the_whole_recipe(tmp_path):
    full = Cell("recipe", "logmel_cnn", variant="wave", folds=(0, 1, 2))
    lever = Cell("ablation", "logmel_cnn", variant="wave", folds=(0, 1), args=("--augment", "none"), tag="no-augment")
    rep = {"n": 100, "wa": 0.5, "ua": 0.4, "macro_f1": 0.5, "most_predicted": {"class": "sad", "share": 0.6}}
    for fold, ua in ((0, 0.7), (1, 0.8), (2, 0.1)):  # fold 2 is not an ablation fold: left out of the comparison
        _fake_run(tmp_path, full, fold, ua, evals={"emodb-wave-all": rep})
    _fake_run(tmp_path, lever, 0, 0.5)
    rows = [ln for ln in report.tables([full, lever], tmp_path)["ablation"].splitlines() if ln.startswith("| ")][2:]
    assert rows[0].startswith("| the whole recipe | 0,1 | 0.750 ± 0.071 |") and "sad 60% sad 60%" in rows[0]
    assert rows[1].startswith("| without augment | 0 | 0.500 |")


def test_javanese_rows_and_their_paired_fold_differences(tmp_path):
    """The AV question is answered fold by fold: A − B on the folds both rows have, utterance UA."""
    args = plan.JAVANESE_PAPER
    av = Cell("javanese", "av", "all", "javanese", folds=(0, 1, 2), epochs=15, args=args)
    audio = Cell("javanese", "cnn_rnn", "all", "javanese", folds=(0, 1, 2), epochs=15, args=args)
    assert av.out(1) == "runs/javanese-c6-f1/av" and "--folds 5 --batch-size 16" in av.command()
    for fold, (a, b) in enumerate(((0.50, 0.40), (0.30, 0.35))):
        _fake_run(tmp_path, av, fold, a)
        _fake_run(tmp_path, audio, fold, b)
    _fake_run(tmp_path, av, 2, 0.9)  # no audio-only fold 2: not paired
    blocks = report.tables([av, audio], tmp_path)
    row = next(ln for ln in blocks["javanese-paired"].splitlines() if "av − cnn_rnn" in ln)
    assert "| 0,1 |" in row and "+0.10 -0.05" in row and "1 / 1 / 0" in row
    assert f"0.025 ± {np.std([0.10, -0.05], ddof=1):.3f}" in row
    assert "0.567 ± 0.306" in blocks["javanese"]  # av: 0.5, 0.3, 0.9
    assert "av, 6 classes, test folds 0,1,2 pooled" in blocks["javanese-confusion"]
