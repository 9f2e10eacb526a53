"""``python -m emotf.preprocess``: a corpus → sharded TFRecords (``make tfrecords``).

    python -m emotf.preprocess --corpus ravdess --data ../shared/data/ravdess_speech --variant ds2
    python -m emotf.preprocess            # no --data: the embedded synthetic corpus (IEMOCAP layout)
    python -m emotf.preprocess --corpus ravdess --data ../shared/data/ravdess_speech --runner beam

Output: ``OUT/<corpus>/<variant>/`` (the folder's layout: `emotf.records.folder`).
A killed run resumes where it stopped when started again. The work is
`emotf.records.writer.run`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from emotf import cli, interrupts
from emotf.catalog import CLASS_CHOICES, SYNTHETIC_CORPUS, VARIANTS
from emotf.config import SAMPLE_RATE_HZ, AudioConfig, PreprocessConfig, VideoConfig
from emotf.corpora import READERS, guess_corpus


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m emotf.preprocess", __doc__)
    p.add_argument("--corpus", default=None, choices=sorted(READERS),
                   help="the corpus's reader (required with --data; without --data: the embedded synthetic corpus, "
                        "in the iemocap layout)")
    p.add_argument("--data", default="", help="corpus folder (csv: the manifest file); empty: the embedded "
                                              "synthetic IEMOCAP-layout corpus")
    p.add_argument("--variant", default="ds2", choices=list(VARIANTS),
                   help="ds1/ds2: whole utterance / 3-s clips; ds3/ds4: the same after noise cleanup (the paper's "
                        "Table 1); wave: the waveform, for logmel_cnn")
    p.add_argument("--out", default="records", help="records root; output goes to OUT/<corpus>/<variant>")
    p.add_argument("--name", default="", help="--corpus csv: the corpus's name in its records, folder "
                                              "(OUT/<name>/<variant>), splits and reports (default: the manifest "
                                              "file's stem, or its folder's name for a folder's manifest.csv)"),
    p.add_argument("--classes", default="all", choices=CLASS_CHOICES,
                   help="the labels kept: all of the corpus's, or the paper's 4 (neutral, happy, sad, angry) or 3")
    p.add_argument("--no-merge-exc", action="store_true", help="IEMOCAP: keep excited apart from happy")
    p.add_argument("--video", default="auto", choices=["auto", "on", "off"],
                   help="face stacks beside the spectrograms: auto (image variants, where the corpus has video), "
                        "on, off; the wave variant stores them only with on (records OUT/<corpus>/wave-faces, "
                        "for the av model with a waveform audio branch)")
    p.add_argument("--face-detector", default="mtcnn", choices=["mtcnn", "fixed"],
                   help="mtcnn (real faces), or fixed (a centre crop: synthetic corpora and tests)")
    p.add_argument("--face-crop", default="paper", choices=["paper", "fill"],
                   help="paper: the face box widened to the stack's 60x100 aspect (head, shoulders, background); "
                        "fill: the face box stretched to the stack, the face filling it (records go to "
                        "OUT/<corpus>/<variant>-facefill)")
    p.add_argument("--frame-encoding", default="jpeg", choices=["jpeg", "raw"],
                   help="how face frames are stored: jpeg (small) or raw bytes (exact)")
    p.add_argument("--iemocap-side-rule", default="mocap-left",
                   choices=["mocap-left", "mocap-right", "left", "right"],
                   help="IEMOCAP: which half of the split-screen video holds the speaker (docs/preprocessing.md)")
    p.add_argument("--sample-rate", type=int, default=SAMPLE_RATE_HZ, choices=(8000, 16000, 32000, 48000),
                   metavar="HZ", help="the rate every recording is converted to (8000, 16000, 32000 or 48000: the "
                                      "voice-activity detector's); other than 16000, records go to "
                                      "OUT/<corpus>/<variant>-<rate>k, and below it the images' band ends at "
                                      "0.4875 of the rate")
    p.add_argument("--no-convert", action="store_true", help="reject audio not already at --sample-rate, mono")
    p.add_argument("--band-limited", default="accept", choices=["accept", "reject"],
                   help="audio below 15.6 kHz (e.g. 8-kHz telephone speech) cannot fill the 0.4-7.8 kHz band: "
                        "accept it with a warning, counted in the manifest's band_limited (default), or reject it")
    p.add_argument("--gain-db", type=float, default=0.0,
                   help="level shift of every spectrogram, e.g. to match another corpus's recording level "
                        "(see --measure-level); records go to OUT/<corpus>/<variant>-gain<G>")
    p.add_argument("--level-dbfs", type=float, default=None,
                   help="scale every utterance to this speech level (dBFS), removing loudness as a cue; "
                        "records go to OUT/<corpus>/<variant>-level<L>")
    p.add_argument("--measure-level", type=int, nargs="?", const=0, default=None, metavar="N",
                   help="print the corpus's speech level (dBFS; N utterances, default all) and write nothing")
    p.add_argument("--trim-silence", default=None, action=argparse.BooleanOptionalAction,
                   help="drop silence with a voice-activity detector (WebRTC VAD): leading and trailing non-speech, "
                        "pauses shortened to 0.3 s (default: on for --variant wave, off for the paper's images; "
                        "other than the default, records go to OUT/<corpus>/<variant>-trim or -notrim)")
    p.add_argument("--vad-tilt", type=float, default=None, metavar="DB_PER_OCTAVE",
                   help="the VAD that trims silence decides on a copy whose spectral slope is set to this (e.g. -4), "
                        "so a channel's tilt does not change which frames are kept; records go to "
                        "OUT/<corpus>/<variant>-vadtilt<value> (default: as recorded)")
    p.add_argument("--band-norm", action="store_true",
                   help="images: subtract each frequency row's mean, so neither the level nor a fixed channel tilt "
                        "is in the image; records go to OUT/<corpus>/<variant>-norm")
    p.add_argument("--max-wave-s", type=float, default=0.0, help="--variant wave: store at most this many seconds "
                                                                 "of each utterance (0: all)")
    p.add_argument("--spec-size", default="200x300", help="spectrogram image HEIGHTxWIDTH")
    p.add_argument("--video-size", default="20x60x100", help="face stack FRAMESxHEIGHTxWIDTH")
    p.add_argument("--shard-size", type=int, default=256, help="utterances per shard at most (one speaker each)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (0: all cores)")
    p.add_argument("--runner", default="local", choices=["local", "beam"],
                   help="local: a pool of --workers processes; beam: an Apache Beam pipeline (the same records; "
                        "pip install emotf[beam]; docs/preprocessing.md)")
    p.add_argument("--beam-options", default="", metavar="FLAGS",
                   help="--runner beam: Beam's pipeline flags, quoted as one string (default: the local "
                        "DirectRunner in --workers processes), written with '=': --beam-options=\"--runner=FlinkRunner "
                        "--flink_master=host:8081\"")
    p.add_argument("--strict", action="store_true", help="stop on the first bad item")
    p.add_argument("--max-skipped", type=float, default=PreprocessConfig.max_skipped, metavar="SHARE",
                   help="fail (exit 2, keeping what was written) when more than this share of the inputs is skipped "
                        "(default %(default)s); a run that writes nothing always fails")
    p.add_argument("--label-map", default="", metavar="MAP",
                   help="CSV corpus: your label names -> emotf's, inline (mad=angry,glad=happy) or a file (a JSON "
                        "object, or one 'yours,emotf' or 'yours=emotf' per line); other unknown labels are an error")
    p.add_argument("--overwrite", action="store_true", help="replace records of another configuration")
    p.add_argument("--synth-dir", default="", help="where the embedded corpus is generated (default OUT/.synthetic)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _size(text: str, n: int, flag: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != n or min(dims) < 1:
        raise ValueError(f"{flag} takes {n} positive integers joined by 'x'. Received: {text!r}")
    return dims


def _label_map(text: str) -> tuple[tuple[str, str], ...]:
    """--label-map: inline ``a=b,c=d``, or a file: a JSON object, or a line ``a,b`` / ``a=b`` per pair."""
    if not text:
        return ()
    path = Path(text)
    if path.is_file():
        body = path.read_text()
        if body.lstrip().startswith("{"):
            return tuple((str(k), str(v)) for k, v in json.loads(body).items())
        items = [line.strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]
    else:
        items = [item.strip() for item in text.split(",") if item.strip()]
    pairs = []
    for item in items:
        theirs, sep, ours = item.replace(",", "=", 1).partition("=")
        if not sep or not theirs.strip() or not ours.strip():
            raise ValueError(f"--label-map: {item!r} is not 'yours=emotf' (inline: mad=angry,glad=happy; or a file)")
        pairs.append((theirs.strip(), ours.strip()))
    return tuple(pairs)


def csv_corpus_name(manifest: str | Path, name: str = "") -> str:
    """The name of a CSV corpus: ``name``, else the manifest file's stem (a folder's ``manifest.csv``: the
    folder's name).

    Raises:
        ValueError: a name that is not a plain word (letters, digits, ``_ . -``), or that another reader's corpus
            (or the embedded one) already has.
    """
    path = Path(manifest)
    name = name or (path.name if path.is_dir() else path.stem)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"{name!r} cannot name a corpus (a records folder and report names take letters, digits, "
                         f"'_', '.' and '-'); give one with --name")
    if name in READERS or name == SYNTHETIC_CORPUS:
        raise ValueError(f"{path}: the name {name!r} belongs to emotf's {name} corpus; give the CSV corpus its own "
                         f"with --name")
    return name


def main(argv: list[str] | None = None) -> int:
    # Before numpy loads, here and in the worker processes, which inherit it: nothing here does linear algebra,
    # and OpenBLAS starting a thread per core cost each process 0.1-0.2 CPU-s at import.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    args = build_parser().parse_args(argv)
    cli.setup_logging()  # no TensorFlow: the records are written with protobuf (emotf.records.schema)
    interrupts.install()
    if args.beam_options and args.runner != "beam":  # before any work (the embedded corpus is generated below)
        return cli.fail(ValueError("--beam-options goes with --runner beam"))
    from emotf.records import folder, writer

    corpus, data, corpus_name = args.corpus, args.data, None
    if data and corpus is None:
        guess = guess_corpus(data)
        hint = f"; the files look like {guess[0]} (--corpus {guess[0]} lists {guess[1]} utterances)" if guess else ""
        return cli.fail(ValueError(f"{data}: which corpus is it? Name its reader with --corpus "
                                   f"({', '.join(sorted(READERS))}){hint}"))
    if args.name and corpus != "csv":
        return cli.fail(ValueError(f"--name names a CSV corpus; the {corpus or 'embedded'} corpus has its own name"))
    if corpus == "csv" and data:
        try:
            corpus_name = csv_corpus_name(data, args.name)
        except ValueError as e:
            return cli.fail(e)
    if not data:
        from emotf.corpora import synthetic

        data = args.synth_dir or os.path.join(args.out, ".synthetic", "iemocap")
        corpus, corpus_name = "iemocap", SYNTHETIC_CORPUS
        cli.log.info("No --data given: using the embedded synthetic corpus (IEMOCAP layout) at %s", data)
        synthetic.ensure_iemocap(data)
    try:
        spec, vid = _size(args.spec_size, 2, "--spec-size"), _size(args.video_size, 3, "--video-size")
        trim = folder.default_trim(args.variant) if args.trim_silence is None else args.trim_silence
        cfg = PreprocessConfig(
            corpus=corpus, data=str(data), variant=args.variant, classes=args.classes,
            merge_exc=not args.no_merge_exc, video=args.video, shard_size=args.shard_size, strict=args.strict,
            max_skipped=args.max_skipped, label_map=_label_map(args.label_map),
            # below 16 kHz the images' band ends where the rate's does (0.4875 of it: 3.9 kHz at 8 kHz)
            audio=AudioConfig(sample_rate_hz=args.sample_rate, fmax_hz=min(AudioConfig.fmax_hz,
                                                                           0.4875 * args.sample_rate),
                              convert=not args.no_convert, band_limited=args.band_limited, height=spec[0],
                              width=spec[1], gain_db=args.gain_db,
                              level_dbfs=args.level_dbfs, trim_silence=trim, band_norm=args.band_norm,
                              max_wave_s=args.max_wave_s, vad_tilt=args.vad_tilt),
            video_config=VideoConfig(detector=args.face_detector, face_crop=args.face_crop,
                                     encoding=args.frame_encoding,
                                     iemocap_side_rule=args.iemocap_side_rule, frames=vid[0], height=vid[1],
                                     width=vid[2]),
        )
        if args.measure_level is not None:
            print(json.dumps(writer.measure_levels(cfg, limit=args.measure_level), indent=2))
            return 0
        out = (Path(args.out) / (corpus_name or corpus) / folder.folder_name(
            args.variant, args.gain_db, args.level_dbfs, trim_silence=trim, band_norm=args.band_norm,
            sample_rate_hz=args.sample_rate, face_crop=args.face_crop, faces=args.video == "on",
            vad_tilt=args.vad_tilt))
        m = writer.run(cfg, out, workers=args.workers or None, overwrite=args.overwrite, corpus_name=corpus_name,
                       progress=not args.no_progress, runner=args.runner, beam_options=args.beam_options)
    except (writer.PreprocessError, *cli.USER_ERRORS) as e:
        return cli.fail(e)
    except KeyboardInterrupt:
        return cli.interrupted("the finished shards are kept; run the same command again to resume")
    cli.log.info("wrote %d records (%d utterances) in %d shards to %s; %d skipped, %d face fallbacks, %d blank "
                 "frames filled; manifest: %s", m["records"], m["utterances"], len(m["shards"]), out, len(m["skipped"]),
                 m["face_fallbacks"], m["blank_frames"], out / folder.MANIFEST)
    return 0


if __name__ == "__main__":
    sys.exit(main())
