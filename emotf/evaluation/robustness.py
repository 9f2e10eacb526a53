"""How a model's answers hold up when the recording changes but the emotion does not.

The test utterances are read again from the corpus's audio (the records' source),
perturbed as a waveform, and scored through the prediction feature path
(`emotf.features.inputs.features_of_samples`): a gain of −20, −10 and +10 dB
(in floating point, so +10 dB does not clip), a spectral tilt of ±6 dB per
octave about 1 kHz, and white noise at 20 dB SNR against the speech level. For
each condition: WA and UA per utterance, the share of utterances whose
prediction is unchanged from the clean recording, and the most-predicted class
with its share.
"""

from __future__ import annotations

import collections
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from emotf.corpora import read_corpus
from emotf.evaluation import metrics, rescore
from emotf.features.audio import active_level_dbfs, load_audio, tilt
from emotf.features.inputs import feature_config, features_of_samples, model_inputs
from emotf.records import schema
from emotf.records.folder import load_records
from emotf.runs import open_run

log = logging.getLogger("emotf")

PERTURBATIONS = ("gain -20 dB", "gain -10 dB", "gain +10 dB", "tilt -6 dB/oct", "tilt +6 dB/oct", "noise 20 dB SNR")


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return x * np.float32(10.0 ** (db / 20.0))


def noise(x: np.ndarray, snr_db: float, speech_dbfs: float, seed: int) -> np.ndarray:
    """``x`` plus white noise ``snr_db`` below its speech level (`emotf.features.audio.active_level_dbfs`)."""
    rms = 10.0 ** ((speech_dbfs - snr_db) / 20.0)
    return (x + np.random.default_rng(seed).standard_normal(len(x)) * rms).astype(np.float32)


def perturb(x: np.ndarray, name: str, cfg, seed: int) -> np.ndarray:
    """One of `PERTURBATIONS` applied to ``x`` (an (n,) waveform; ``cfg`` its `AudioConfig`)."""
    kind, value = name.split()[0], float(name.split()[1])
    if kind == "gain":
        return gain(x, value)
    if kind == "tilt":
        return tilt(x, value, cfg.sample_rate_hz)
    if kind == "noise":
        return noise(x, value, active_level_dbfs(x, cfg), seed)
    raise ValueError(f"unknown perturbation {name!r}; choose from {PERTURBATIONS}")


def test_utterances(info, units, class_names) -> list[dict[str, Any]]:
    """The records' utterances of ``units`` with one of ``class_names``, with their source audio.

    Returns:
        [{"utt_id", "label", "utterance"}], the last the corpus reader's `Utterance`.

    Raises:
        FileNotFoundError: the corpus folder the records were made from is not there any more.
    """

    wanted = {}
    for part in info.parts or (info,):
        names = {f"{part.corpus}/{u}" if info.parts else u: u for u in part.units}
        chosen = [names[u] for u in units if u in names]
        if not chosen:
            continue
        cfg = part.preprocess
        if not Path(cfg.get("data", "")).exists():
            raise FileNotFoundError(f"{cfg.get('data')}: the corpus {part.corpus}'s records were made from here, "
                                    f"and the robustness report reads its audio again; it is not there")
        kwargs = {"side_rule": cfg["video_config"]["iemocap_side_rule"]} if cfg["corpus"] == "iemocap" else {}
        utts = {u.utt_id: u for u in read_corpus(cfg["corpus"], cfg["data"], **kwargs)[0]}
        for rec in schema.read_records(part.files(chosen), spec_shape=None):
            if rec["label/name"] in class_names and rec["utt_id"] not in wanted:
                wanted[rec["utt_id"]] = {"utt_id": rec["utt_id"], "label": rec["label/name"],
                                         "utterance": utts[rec["utt_id"]]}
    return [wanted[k] for k in sorted(wanted)]


def robustness(run_dir: str | Path, records: str | Path | None = None, *, speakers: str = "auto",
               conditions: tuple[str, ...] = PERTURBATIONS) -> dict[str, Any]:
    """Score the run's model on its test utterances (or all of other records), clean and perturbed.

    Returns (and writes to ``RUN/eval/<stem>-robustness.json``):
        {"conditions": {name: {"wa", "ua", "unchanged", "most_predicted", "n"}}, "utterances", ...};
        "clean" is the unperturbed recording, every "unchanged" is against it.
    """
    run = open_run(run_dir)
    info = load_records(records or run.records_root)
    units, speakers = rescore.units_of(run, info, speakers)
    names = run.class_names
    items = test_utterances(info, units, names)
    if not items:
        raise ValueError(f"{info.source}: no utterance of the model's classes {list(names)} among {speakers} speakers")
    model, pcfg = run.load_model(), feature_config(run)
    # As in `rescore.evaluate`: the model may predict only the classes these utterances hold.
    allowed = np.array([n in {item["label"] for item in items} for n in names])
    predictions: dict[str, list[int]] = collections.defaultdict(list)
    for item in items:
        u = item["utterance"]
        clean = load_audio(u.audio_path, pcfg.audio, u.start_s, u.end_s).samples
        seed = zlib.crc32(item["utt_id"].encode())
        for name in ("clean", *conditions):
            x = clean if name == "clean" else perturb(clean, name, pcfg.audio, seed)
            feats, _ = features_of_samples(run, x, pcfg=pcfg, key=item["utt_id"])
            probs = np.asarray(model.predict_on_batch(model_inputs(run, feats)), np.float64).mean(axis=0)
            predictions[name].append(int(np.where(allowed, probs, -np.inf).argmax()))
    truth = [names.index(item["label"]) for item in items]
    out: dict[str, Any] = {"run": str(run.path), "records": info.source, "speakers": speakers, "utterances": len(items),
                           "conditions": {}}
    for name, pred in predictions.items():
        rep = metrics.report(truth, pred, names)
        same = np.mean(np.equal(pred, predictions["clean"]))
        out["conditions"][name] = {"wa": rep["wa"], "ua": rep["ua"], "unchanged": float(same), "n": rep["n"],
                                   "most_predicted": rep["most_predicted"]}
    stem = rescore.free_stem(run, rescore.report_stem(info.corpus, Path(info.source.split(",")[0]).name, speakers)
                             + "-robustness", info.source)
    out["written_to"] = str(run.eval_file(stem))
    run.write_eval(stem, out)
    return out


def format_table(rep: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per condition."""
    lines = ["| condition | WA | UA | unchanged | most predicted |", "| --- | ---: | ---: | ---: | --- |"]
    for name, c in rep["conditions"].items():
        top = c["most_predicted"]
        lines.append(f"| {name} | {c['wa']:.3f} | {c['ua']:.3f} | {c['unchanged']:.1%} | "
                     f"{top['class']} {top['share']:.0%} |")
    return "\n".join(lines)
