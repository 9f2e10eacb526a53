"""The generated tables and figures of docs/results.md, from the runs of the grid.

    python -m experiments.report --write docs/results.md       # or: make report
    python -m experiments.report                              # print the tables

Every number comes from a finished run folder, from ``runs/`` or else from the
ledger (`experiments.ledger`), with the command that made it; rows with no
finished fold say so. The blocks between ``<!-- results:NAME -->`` markers of
the page are replaced, nothing else. Rows measured before the ledger existed,
whose run folders were lost, are kept as recorded
(``experiments/recorded-2026-11-24.json``, marked †) until new runs cover their
folds.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotf.catalog import ARCHS
from emotf.evaluation.rescore import report_stem
from emotf.evaluation.summary import markdown_table, mean_std, pooled_confusion, summary_rows
from experiments import ledger
from experiments.plan import CLASS_LABEL, PLAN, SECTIONS, Cell, eval_stem

RECORDED_NOTE = ("† recorded on 2026-11-24 from run folders that are lost (runs/ was not kept in git then; "
                 "see the Status above); `python -m experiments.run` re-measures the row, which shows the "
                 "new runs once they cover the same folds.")


def parse_markdown_table(text: str) -> list[dict[str, str]]:
    """The rows of the first pipe table in ``text``, as ``{header: cell}``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return [dict(zip(split[0], row, strict=False)) for row in split[2:]]


def _find_recorded(recorded: Sequence[dict[str, str]], want: dict[str, str]) -> dict[str, str] | None:
    """The first recorded row whose columns hold ``want``'s values, or None."""
    return next((r for r in recorded if all(r.get(k) == v for k, v in want.items())), None)


def _folds_of(value: str) -> set[str]:
    return {f for f in value.replace("†", "").strip().split(",") if f and f != "none yet"}


def _covers(row: dict[str, Any], old: dict[str, str]) -> bool:
    """The new row holds at least the folds (or fold models) of the recorded one."""
    if "fold models" in old:
        return int(row["fold models"]) >= int(old["fold models"])
    return _folds_of(str(row["folds"])) >= _folds_of(old["folds"])


def _prefer_recorded(rows: list[dict[str, Any]], recorded: Sequence[dict[str, str]],
                     keys: Sequence[str]) -> tuple[list[dict[str, Any]], bool]:
    """Each row, or the recorded row with the same ``keys`` (marked †) where the new one covers fewer folds."""
    out, used = [], False
    for row in rows:
        old = _find_recorded(recorded, {k: str(row[k]) for k in keys})
        if old is not None and not _covers(row, old):
            col = "fold models" if "fold models" in old else "folds"
            row, used = {**old, col: f"{old[col]} †"}, True
        out.append(row)
    return out, used


def _table(rows: list[dict[str, Any]], recorded: Sequence[dict[str, str]], keys: Sequence[str]) -> str:
    rows, used = _prefer_recorded(rows, recorded, keys)
    return markdown_table(rows) + (f"\n\n{RECORDED_NOTE}" if used else "")


def _grid_table(cells: Sequence[Cell], root: Path, with_variant: bool = False,
                recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for c in cells:
        res = ledger.cell_results(c, root)
        classes = CLASS_LABEL[c.classes] if c.corpus == "ravdess" or not res else len(res[0].metrics["class_names"])
        row = {"classes": classes, "arch": c.label}
        if with_variant:
            row = {"variant": c.variant, **row}
        row.update(summary_rows(res))
        row["test clips / fold"] = " ".join(str(r.metrics["test"]["n"]) for r in res)
        rows.append(row)
    # The synthetic corpus's class count comes from its runs, so its rows are known by arch alone.
    keys = ("arch",) if all(c.corpus != "ravdess" for c in cells) else ("classes", "arch")
    return _table(rows, recorded, (("variant",) if with_variant else ()) + keys)


def speaker_adapted(r) -> dict | None:
    """A run's speaker-adapted test report: from training (metrics.json), else from ``emotf.evaluate`` on its own
    records (eval/<corpus>-<records>-test.json)."""
    if "test_speaker_adapted" in r.metrics:
        return r.metrics["test_speaker_adapted"]
    if "corpus" not in r.metrics:  # no test report of its own to look for
        return None
    own = report_stem(r.metrics["corpus"], Path(r.metrics["records"]).name, "test")
    return r.evals.get(own, {}).get("speaker_adapted")


def _pretrained_table(cells: Sequence[Cell], plan: Sequence[Cell], root: Path) -> str:
    """The pretrained encoder's rows after the recipe's of the same classes; test UA without and with speaker
    adaptation (the headline is without)."""
    recipe = [c for c in plan if c.section == "recipe" and c.arch == "logmel_cnn" and c.variant == "wave"
              and c.classes in {p.classes for p in cells}]
    rows = []
    for c in sorted(recipe + list(cells), key=lambda c: (c.classes != "all", c.section != "recipe", c.tag)):
        res = ledger.cell_results(c, root)
        adapted = [speaker_adapted(r) for r in res]
        summary = summary_rows(res)
        # the same arch and tag on other records (wave-notrim, wave-vadtilt-4) is another row: name its records
        arch = c.label if c.variant == "wave" else f"{c.label}, {c.variant} records"
        rows.append({"classes": CLASS_LABEL[c.classes], "arch": arch, "folds": summary["folds"],
                     "test UA": summary["test UA"], "test UA, speaker-adapted": mean_std(
                         [a["ua"] for a in adapted if a]) if all(adapted) else "–",
                     "test WA": summary["test WA"], "macro-F1": summary["macro-F1"], "val UA": summary["val UA"],
                     "UA per fold": summary["UA per fold"],
                     "adapted UA per fold": " ".join(f"{a['ua']:.2f}" for a in adapted if a),
                     "selected epoch": summary["selected epoch"]})
    return markdown_table(rows)


def _commands(cells: Sequence[Cell]) -> str:
    return "\n".join(f"    {c.command()}" for c in cells)


def _cross_table(cells: Sequence[Cell], root: Path, recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for c in cells:
        for records in c.cross:
            stem = eval_stem(records)
            reps = [r.evals[stem] for r in ledger.cell_results(c, root) if stem in r.evals]
            rows.append({"trained on": f"RAVDESS {c.variant}, {CLASS_LABEL[c.classes]} classes", "arch": c.label,
                         "tested on": stem.rsplit("-", 1)[0],
                         "classes scored": ", ".join(reps[0]["predicted_classes"]) if reps else "",
                         "fold models": len(reps), "WA": mean_std([e["wa"] for e in reps]),
                         "UA": mean_std([e["ua"] for e in reps]),
                         "UA, speaker-adapted": mean_std([e["speaker_adapted"]["ua"] for e in reps
                                                          if "speaker_adapted" in e]),
                         "macro-F1": mean_std([e["macro_f1"] for e in reps]),
                         "clips": reps[0]["n"] if reps else ""})
    return _table(rows, recorded, ("trained on", "arch", "tested on"))


def _tuned_table(plan: Sequence[Cell], root: Path, recorded: Sequence[dict[str, str]] = ()) -> str:
    rows = []
    for tuned in (c for c in plan if c.section == "tuned"):
        base = next(c for c in plan if c.section == "grid" and (c.arch, c.classes, c.variant) ==
                    (tuned.arch, tuned.classes, tuned.variant))
        t_res = {r.fold: r for r in ledger.cell_results(tuned, root)}
        b_res = {r.fold: r for r in ledger.cell_results(base, root)}
        shared = sorted(set(t_res) & set(b_res))
        for name, res in (("paper defaults", b_res), ("tuned (best_hparams.json)", t_res)):
            rows.append({"configuration": name, "arch": tuned.arch, "params": (
                f"{res[shared[0]].metrics['params']:,}" if shared else ""), **summary_rows([res[f] for f in shared])})
    return _table(rows, recorded, ("configuration",))


def _seeds_table(plan: Sequence[Cell], root: Path) -> str:
    """One row per (arch, classes, variant, fold) of the seed study: the test UA under each seed.

    Seed 0 is the run of the same fold in the grid or variants table (``emotf.fit``'s default seed).
    """
    rows = []
    study = [c for c in plan if c.section == "seeds"]
    for key in dict.fromkeys((c.arch, c.classes, c.variant, f) for c in study for f in c.folds):
        arch, classes, variant, fold = key
        base = next(c for c in plan if c.section in ("grid", "variants") and (c.arch, c.classes, c.variant) ==
                    (arch, classes, variant) and not c.tag)
        cells = [base] + [c for c in study if (c.arch, c.classes, c.variant) == (arch, classes, variant)]
        runs = [(c, ledger.fold_result(c, fold, root)) for c in cells]
        runs = [(c, r) for c, r in runs if r is not None]
        seeds = [c.args[c.args.index("--seed") + 1] if "--seed" in c.args else "0" for c, _ in runs]
        ua = [r.metrics["test"]["ua"] for _, r in runs]
        rows.append({"variant": variant, "classes": CLASS_LABEL[classes], "arch": arch, "fold": fold,
                     "seeds": " ".join(seeds) or "none yet", "test UA per seed": " ".join(f"{u:.3f}" for u in ua),
                     "test UA": mean_std(ua) if ua else "",
                     "spread (max − min)": f"{max(ua) - min(ua):.3f}" if len(ua) > 1 else "",
                     "val UA per seed": " ".join(f"{r.metrics['validation']['ua']:.3f}" for _, r in runs),
                     "selected epoch": " ".join(str(r.metrics["selected_epoch"]) for _, r in runs)})
    return markdown_table(rows)


def _predicted_most(reports: Sequence[dict[str, Any]]) -> str:
    """Each fold's most-predicted class and its share of the predictions, e.g. "angry 34% sad 30%"."""
    return " ".join(f"{r['most_predicted']['class']} {r['most_predicted']['share']:.0%}" for r in reports
                    if "most_predicted" in r)


def _loco_table(cells: Sequence[Cell], root: Path) -> str:
    """Leave one corpus out: one row per held-out corpus, its test scores over the trained folds."""
    rows = []
    for c in cells:
        res = ledger.cell_results(c, root)
        tests = [r.metrics["test"] for r in res]
        rows.append({"held out (tested)": c.test_corpus, "trained on": ", ".join(x for x in c.corpora
                                                                               if x != c.test_corpus),
                     "classes": CLASS_LABEL[c.classes], "arch": c.label,
                     "folds": ",".join(str(r.fold) for r in res) or "none yet",
                     "test UA": mean_std([t["ua"] for t in tests]), "test WA": mean_std([t["wa"] for t in tests]),
                     "macro-F1": mean_std([t["macro_f1"] for t in tests]),
                     "most predicted": _predicted_most(tests),
                     "test UA, speaker-adapted": mean_std([a["ua"] for a in map(speaker_adapted, res) if a]),
                     "most predicted, adapted": _predicted_most([a for a in map(speaker_adapted, res) if a]),
                     "val UA": mean_std([r.metrics["validation"]["ua"] for r in res]),
                     "test utterances": tests[0]["n"] if tests else ""})
    return markdown_table(rows)


def _ablation_table(plan: Sequence[Cell], root: Path) -> str:
    """The recipe with each lever removed in turn, on the folds every row has, beside the whole recipe."""
    from experiments.plan import ABLATION_FROM_SELECTION

    levers = [(c, f"without {c.tag.removeprefix('no-')}") for c in plan if c.section == "ablation"]
    levers += [(c, f"without {lever.removeprefix('no-')} (the selection's {c.tag})")
               for lever, tag in ABLATION_FROM_SELECTION.items() for c in plan
               if c.section == "selection" and c.tag == tag]
    if not levers:
        return ""
    first = levers[0][0]
    # the whole recipe: the recipe table's row of the same model and classes (a lever may change the records)
    full = next(c for c in plan if c.section == "recipe" and (c.arch, c.classes) == (first.arch, first.classes)
                and not c.tag)
    rows = []
    for cell, name in [(full, "the whole recipe"), *levers]:
        res = [r for r in ledger.cell_results(cell, root) if r.fold in first.folds]
        cross = [r.evals[s] for r in res for s in r.evals if s.startswith("emodb-")]
        rows.append({"recipe": name, "folds": ",".join(str(r.fold) for r in res) or "none yet",
                     "test UA": mean_std([r.metrics["test"]["ua"] for r in res]),
                     "val UA": mean_std([r.metrics["validation"]["ua"] for r in res]),
                     "EmoDB UA": mean_std([e["ua"] for e in cross]),
                     "EmoDB most predicted": _predicted_most(cross)})
    return markdown_table(rows)


def _robustness_table(plan: Sequence[Cell], root: Path) -> str:
    """Per model and fold: UA clean, and UA / share of unchanged predictions under each perturbation."""
    from emotf.evaluation.robustness import PERTURBATIONS
    from experiments.plan import robust_stem

    rows = []
    for c in (c for c in plan if c.robust):
        for fold in c.robust:
            res = ledger.fold_result(c, fold, root)
            rep = res.evals.get(robust_stem(c)) if res else None
            row = {"model": f"{c.label}, {c.corpus} {c.variant}, {CLASS_LABEL[c.classes]} classes", "fold": fold}
            if rep is None:
                rows.append({**row, "utterances": "not run yet"})
                continue
            cond = rep["conditions"]
            rows.append({**row, "utterances": rep["utterances"], "clean UA": f"{cond['clean']['ua']:.3f}",
                         **{name: f"{cond[name]['ua']:.3f} / {cond[name]['unchanged']:.0%}"
                            for name in PERTURBATIONS}})
    return markdown_table(rows)


def _utterance_ua(res) -> list[float]:
    """Each fold's test UA over utterances (an utterance's clips averaged): one unit for clip and waveform
    records alike."""
    return [r.metrics["test"].get("utterance", r.metrics["test"])["ua"] for r in res]


def _utterance_ua_by_fold(cell: Cell, root: Path) -> dict[int, float]:
    res = ledger.cell_results(cell, root)
    return dict(zip((r.fold for r in res), _utterance_ua(res), strict=True))


def _javanese_table(cells: Sequence[Cell], root: Path) -> str:
    """The AV comparison on real faces: one row per model and class set, UA over utterances and clips."""
    rows = []
    for c in cells:
        res = ledger.cell_results(c, root)
        utt = _utterance_ua(res)
        rows.append({"classes": c.class_count, "model": c.label, "input": {
            "video": "face", "av": "speech + face", "waveform": "speech (waveform)"}.get(
                ARCHS[c.arch].modality, "speech (image)"), "variant": c.variant,
            "folds": ",".join(str(r.fold) for r in res) or "none yet",
            "test UA (utterances)": mean_std(utt), "UA per fold": " ".join(f"{u:.2f}" for u in utt),
            "test UA (clips)": mean_std([r.metrics["test"]["ua"] for r in res]),
            "macro-F1": mean_std([r.metrics["test"]["macro_f1"] for r in res]),
            "val UA": mean_std([r.metrics["validation"]["ua"] for r in res]),
            "most predicted": _predicted_most([r.metrics["test"] for r in res])})
    return markdown_table(rows)


# The questions the AV table answers, as (A, B) pairs of row labels: A − B per fold.
PAIRS = (("av", "cnn_rnn", "does the face help the paper's model? (AV − its audio branch alone)"),
         ("av (no-pretrain)", "cnn_rnn", "the same, without contrastive pre-training"),
         ("av", "video_3dcnn", "does the voice help the face? (AV − its video branch alone)"),
         ("av", "av (no-pretrain)", "does contrastive pre-training help?"),
         ("av", "logmel_cnn", "the paper's AV model against emotf's audio-only recipe"),
         ("video_3dcnn (facefill)", "video_3dcnn", "does a crop the face fills help the face model?"),
         ("av (no-pretrain-facefill)", "av (no-pretrain)", "... and the AV model (no pre-training)?"),
         ("whisper_tiny", "logmel_cnn", "the pretrained encoder against the recipe (audio only)"),
         ("av (no-pretrain)", "whisper_tiny", "the paper's AV model against the pretrained encoder alone"),
         ("av (whisper)", "whisper_tiny", "does the face help the pretrained encoder? (AV − its audio branch alone)"),
         ("av (whisper)", "av (no-pretrain-facefill)", "the pretrained audio branch against the paper's, in the AV "
          "model (face-fill crop both)"))


def _paired_table(cells: Sequence[Cell], root: Path) -> str:
    """Fold-by-fold differences of utterance UA between two rows, on the folds both have (paired)."""
    from scipy import stats

    rows = []
    for classes in dict.fromkeys(c.classes for c in cells):
        by_label = {c.label: c for c in cells if c.classes == classes}
        for a, b, question in PAIRS:
            if a not in by_label or b not in by_label:
                continue
            ra, rb = (_utterance_ua_by_fold(by_label[x], root) for x in (a, b))
            folds = sorted(set(ra) & set(rb))
            diff = [ra[f] - rb[f] for f in folds]
            p = stats.ttest_rel([ra[f] for f in folds], [rb[f] for f in folds]).pvalue if len(folds) > 2 else None
            rows.append({"classes": by_label[a].class_count, "question": question, "A − B": f"{a} − {b}",
                         "folds": ",".join(map(str, folds)) or "none yet",
                         "difference per fold": " ".join(f"{d:+.2f}" for d in diff),
                         "mean ± std": mean_std(diff) if diff else "",
                         "A better / B better / tied": (f"{sum(d > 0 for d in diff)} / {sum(d < 0 for d in diff)} / "
                                                        f"{sum(d == 0 for d in diff)}") if diff else "",
                         "paired t p": f"{p:.2f}" if p is not None and np.isfinite(p) else ""})
    return markdown_table(rows) + ("\n\nUA over utterances; a positive difference: A scored higher on that fold's "
                                   "test speakers. p: two-sided paired t-test over the folds (5 pairs: read it "
                                   "as a rough guide).")


def _best_confusion(cells: Sequence[Cell], root: Path) -> str:
    """The pooled test confusion (utterances) of the AV row with the higher mean UA, per class set."""
    out = []
    for classes in dict.fromkeys(c.classes for c in cells):
        scored = [(np.mean(_utterance_ua(res)), c, res) for c in cells if c.classes == classes
                  and (res := ledger.cell_results(c, root))]
        if not scored:
            continue
        ua, cell, res = max(scored, key=lambda t: t[0])
        names = res[0].metrics["class_names"]
        cm = np.sum([r.metrics["test"].get("utterance", r.metrics["test"])["confusion_matrix"] for r in res], axis=0)
        rows = [{"true \\ predicted": names[i], **{n: int(cm[i, j]) for j, n in enumerate(names)},
                 "recall": f"{cm[i, i] / max(cm[i].sum(), 1):.0%}"} for i in range(len(names))]
        out.append(f"{cell.label}, {cell.class_count} classes, test folds "
                   f"{','.join(str(r.fold) for r in res)} pooled (utterances; mean UA {ua:.3f}):\n\n"
                   + markdown_table(rows))
    return "\n\n".join(out) or "(no AV fold finished yet)"


def _javanese_cross(plan: Sequence[Cell], root: Path) -> str:
    """Models that never saw this corpus, scored on it: trained on RAVDESS (the paper's model and the recipe), on the
    synthetic AV corpus, and on the other four corpora (the leave-one-corpus-out row)."""
    def row(model: str, trained_on: str, records: str, reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
        classes = reports[0]["predicted_classes"] if reports else []
        return {"model": model, "trained on": trained_on, "scored on": records, "fold models": len(reports),
                "classes scored": ", ".join(classes),
                "UA (utterances)": mean_std([e.get("utterance", e)["ua"] for e in reports]),
                "UA (clips)": mean_std([e["ua"] for e in reports]),
                "chance": f"{1 / len(classes):.3f}" if classes else "", "most predicted": _predicted_most(reports)}

    rows, cmds = [], []
    for c in plan:
        for records in (r for r in c.cross if "/javanese/" in r):
            stem = eval_stem(records)
            source = ("the synthetic AV corpus (faces and voices drawn by emotf.synth)" if c.corpus == "synth_iemocap"
                      else f"{c.corpus} {c.variant}")
            rows.append(row(c.label, source, records,
                            [r.evals[stem] for r in ledger.cell_results(c, root) if stem in r.evals]))
            cmds += [f"    {c.command()}", f"    python -m emotf.evaluate {c.out_pattern()} --records {records}"]
    for c in (c for c in plan if c.section == "loco" and c.test_corpus == "javanese"):
        rows.append(row(c.label, ", ".join(x for x in c.corpora if x != "javanese") + " (leave-one-corpus-out)",
                        f"records/javanese/{c.variant}", [r.metrics["test"] for r in ledger.cell_results(c, root)]))
        cmds.append(f"    {c.command()}")
    return markdown_table(rows) + "\n\nCommands:\n\n" + "\n".join(dict.fromkeys(cmds))


def _recorded_for(cell: Cell, recorded: dict[str, list[dict[str, str]]]) -> dict[str, str] | None:
    """The recorded row of the cell in its own section's table, if any."""
    if cell.section == "tuned":
        want = {"configuration": "tuned (best_hparams.json)"}
    else:
        want = {"arch": cell.label}
        if cell.section != "av":
            want["classes"] = CLASS_LABEL[cell.classes]
        if cell.section in ("variants", "level"):
            want["variant"] = cell.variant
    return _find_recorded(recorded.get(cell.section, []), want)


def confusion_figures(plan: Sequence[Cell], root: Path, out_dir: Path) -> list[Path]:
    """One PNG per row with a finished fold: the test confusion matrices summed over its folds."""
    from emotf.evaluation import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = ledger.read_recorded(root)
    written = []
    for c in (c for c in plan if c.section != "seeds"):  # a seed's run is one fold of a row that has its figure
        res = ledger.cell_results(c, root)
        old = _recorded_for(c, recorded)
        if not res or (old is not None and not _covers({"folds": ",".join(str(r.fold) for r in res)}, old)):
            continue  # a recorded row keeps its recorded figure
        # a leave-one-corpus-out row is named by its held-out corpus, with its own prefix: the within-corpus row of
        # that corpus, model and classes has the same name otherwise
        name = (("loco-" if c.test_corpus else "") + f"{c.corpus}-{c.variant}-c{c.class_count}-{c.arch}"
                + (f"-{c.tag}" if c.tag else ""))
        names = res[0].metrics["class_names"]
        ua = np.mean([r.metrics["test"]["ua"] for r in res])
        written.append(plots.confusion_png(
            pooled_confusion(res), names, out_dir / f"{name}.png",
            title=f"{c.label}, {c.corpus} {c.variant}, test folds {','.join(str(r.fold) for r in res)} · "
                  f"mean UA {ua:.3f}"))
    return written


def tables(plan: Sequence[Cell] = PLAN, root: Path = Path(".")) -> dict[str, str]:
    """The generated blocks of docs/results.md, by name."""
    by = {s: [c for c in plan if c.section == s] for s in SECTIONS}
    grid_ds2 = [c for c in by["grid"] if c.variant == "ds2"]
    recorded = ledger.read_recorded(root)
    ravdess_cross = [c for c in plan if c.cross and c.section != "javanese"]
    javanese = [c for c in by["javanese"] if c.corpus == "javanese"]

    def against_grid(section: str) -> str:
        """The section's rows after the grid's DS2 rows of the same architecture and classes."""
        keys = {(c.arch, c.classes) for c in by[section]}
        base = [c for c in grid_ds2 if (c.arch, c.classes) in keys]
        return (_grid_table(base + by[section], root, with_variant=True, recorded=recorded.get(section, ()))
                + "\n\nCommands:\n\n" + _commands(by[section]))

    return {
        "grid": _grid_table(grid_ds2, root, recorded=recorded.get("grid", ()))
        + "\n\nCommands:\n\n" + _commands(grid_ds2),
        "variants": against_grid("variants"),
        "level": against_grid("level"),
        "cross": _cross_table(ravdess_cross, root, recorded.get("cross", ()))
        + "\n\nCommands (per fold model F):\n\n"
        + "\n".join(f"    python -m emotf.evaluate {c.out_pattern()} --records {r}"
                    for c in ravdess_cross for r in c.cross),
        "tuned": _tuned_table(plan, root, recorded.get("tuned", ())) + "\n\nCommands:\n\n" + _commands(by["tuned"]),
        "av": _grid_table(by["av"], root, recorded=recorded.get("av", ())) + "\n\nCommands:\n\n" + _commands(by["av"]),
        "seeds": _seeds_table(plan, root) + "\n\nCommands (seed 0 is the grid's or variants' run of the fold):\n\n"
        + _commands(by["seeds"]),
        "selection": _grid_table(by["selection"], root) + "\n\nCommands:\n\n" + _commands(by["selection"]),
        "recipe": _grid_table(by["recipe"], root) + "\n\nCommands:\n\n" + _commands(by["recipe"]),
        "pretrained": _pretrained_table(by["pretrained"], plan, root) + "\n\nCommands (the speaker-adapted scores: "
        "metrics.json's test_speaker_adapted, or `python -m emotf.evaluate RUN --records records/ravdess/wave`):"
        "\n\n" + _commands(by["pretrained"]),
        "loco": _loco_table(by["loco"], root) + "\n\nCommands:\n\n" + _commands(by["loco"]),
        "ablation": _ablation_table(plan, root) + "\n\nCommands (the whole recipe is the recipe table's row):\n\n"
        + _commands(by["ablation"]),
        "robustness": _robustness_table(plan, root) + "\n\nCommands:\n\n" + "\n".join(
            f"    python -m emotf.evaluate {c.out(f)} --records {c.records} --robustness"
            for c in plan for f in c.robust),
        "javanese": _javanese_table(javanese, root) + "\n\nCommands:\n\n" + _commands(javanese),
        "javanese-paired": _paired_table(javanese, root),
        "javanese-confusion": _best_confusion(
            [c for c in javanese if c.arch == "av"], root),
        "javanese-cross": _javanese_cross(plan, root),
    }


BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?:.*?\n)?(<!-- /results:(?P=name) -->)", re.S)


def fill(text: str, blocks: dict[str, str]) -> str:
    """Replace each ``<!-- results:NAME -->…<!-- /results:NAME -->`` block of ``text`` with ``blocks[NAME]``.

    Raises:
        KeyError: a block names no table.
    """
    def repl(m: re.Match) -> str:
        return m.group(1) + blocks[m.group("name")].rstrip("\n") + "\n" + m.group(3)

    return BLOCK.sub(repl, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", default="", help="markdown file whose results blocks are refreshed")
    p.add_argument("--figures", default="docs/results", help="folder for the pooled confusion PNGs")
    args = p.parse_args(argv)
    blocks = tables(PLAN)
    if args.write:
        path = Path(args.write)
        path.write_text(fill(path.read_text(), blocks))
        figs = confusion_figures(PLAN, Path("."), Path(args.figures))
        print(f"{path}: tables refreshed; {len(figs)} confusion figure(s) in {args.figures}")
    else:
        for name, text in blocks.items():
            print(f"## {name}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
