"""``python -m emotf.predict RUN clip.wav [--video clip.mp4]``: the emotion of one recording; with ``--timeline``,
the emotion over time in long recordings or folders of them.

    python -m emotf.predict runs/cnn_rnn-ravdess-ds2-c4-auto-f0 speech.wav
    python -m emotf.predict runs/av-... speech.wav --video face.mp4
    python -m emotf.predict RUN interview.mp3 calls/ --timeline --out timeline/ [--smooth 3]

The recording goes through exactly the feature code of preprocessing, with the
settings the model's records were made with. With ``--mode clips`` (the default
for models trained on 3-s clips) each clip is classified and the class
probabilities are averaged; ``--mode utterance`` makes one image of the whole
file. The work is `emotf.serving.inference.predict`.

``--timeline`` reads each recording as a stream, finds speech with the wave records' voice-activity detector,
scores a window of ``--window-s`` every ``--hop-s`` that holds speech, and writes OUT/timeline.csv (a row per
window), OUT/timeline.json (segments of one label, windows, a summary per recording, the files skipped and
why) and a PNG per recording (`emotf.serving.timeline`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from emotf import cli
from emotf.features.audio import BadInputError
from emotf.runs import open_run
from emotf.serving import timeline
from emotf.serving.inference import predict
from emotf.serving.timeline import TimelineConfig


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.predict", __doc__)
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("audio", nargs="+", help="audio file(s): wav, flac, mp3, ... or a video's soundtrack; with "
                                            "--timeline also folders of them")
    p.add_argument("--video", default="", help="face video (av and video models); one audio file only")
    p.add_argument("--mode", default="auto", choices=["auto", "utterance", "clips"],
                   help="auto: as the model's records (whole utterance or 3-s clips)")
    p.add_argument("--side", default="", choices=["", "left", "right"], help="half of the frame with the speaker")
    p.add_argument("--gain-db", type=float, default=None,
                   help="spectrogram level shift (default: the model's records'); see --measure-level of "
                        "python -m emotf.preprocess")
    p.add_argument("--json", action="store_true", help="print JSON")
    t = p.add_argument_group("--timeline: emotion over time in long recordings and folders")
    t.add_argument("--timeline", action="store_true", help="a row per window of speech, segments, a PNG per file")
    t.add_argument("--out", default="timeline", help="where the timeline's CSV, JSON and PNGs go")
    defaults = TimelineConfig()
    t.add_argument("--window-s", type=float, default=defaults.window_s, help="window length (s)")
    t.add_argument("--hop-s", type=float, default=defaults.hop_s, help="step between windows (s)")
    t.add_argument("--min-speech", type=float, default=defaults.min_speech,
                   help="score a window when at least this share of it is speech")
    t.add_argument("--smooth", type=int, default=defaults.smooth,
                   help="running median of the probabilities over this many windows (odd; 1: none)")
    t.add_argument("--adapt-speaker", action="store_true",
                   help="each recording is one speaker's: standardise its windows' pooled features with its own "
                        "statistics (whisper_tiny's default head; docs/training.md)")
    t.add_argument("--workers", type=int, default=1,
                   help="processes taking the files of a folder in turn, each with the model loaded once")
    t.add_argument("--no-png", action="store_true", help="no picture per recording")
    t.add_argument("--no-html", action="store_true", help="no page (audio player + emotion strip) per recording")
    args = p.parse_args(argv)
    cli.setup_logging(tensorflow=True)

    if args.timeline:
        return _timeline(args)
    if folders := [a for a in args.audio if Path(a).is_dir()]:
        return cli.fail(ValueError(f"{folders[0]} is a folder: pass --timeline for every recording in it"))
    if args.video and len(args.audio) > 1:
        return cli.fail(ValueError("--video goes with a single audio file"))
    try:
        model = open_run(args.run).load_model()
        results = [predict(args.run, a, args.video or None, mode=args.mode, side=args.side,
                           gain_db=args.gain_db, model=model)
                   for a in args.audio]
    except (BadInputError, *cli.USER_ERRORS) as e:
        return cli.fail(e)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return 0
    for r in results:
        probs = "  ".join(f"{n} {p:.3f}" for n, p in sorted(r["probabilities"].items(), key=lambda kv: -kv[1]))
        print(f"{r['file']}: {r['label']}   ({probs}; {len(r['clips'])} clip(s))")
    return 0


def _timeline(args) -> int:
    try:
        cfg = TimelineConfig(window_s=args.window_s, hop_s=args.hop_s, min_speech=args.min_speech,
                             smooth=args.smooth, adapt_speaker=args.adapt_speaker)
        res = timeline.run_timelines(args.run, args.audio, args.out, cfg=cfg, png=not args.no_png,
                                     page=not args.no_html, video=args.video or None, side=args.side,
                                     workers=args.workers)
    except (BadInputError, *cli.USER_ERRORS) as e:
        return cli.fail(e)
    for t in res["timelines"]:
        print(t.summary_line() + (f" (truncated: {t.truncated})" if t.truncated else ""))
    for s in res["skipped"]:
        print(f"skipped {s['reason']}")
    print(f"{len(res['timelines'])} recording(s), {len(res['skipped'])} skipped; written: "
          + ", ".join(res["written"][:3]) + (" ..." if len(res["written"]) > 3 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
