"""``python -m emotf.predict RUN clip.wav [--video clip.mp4]``: the emotion of one recording.

    python -m emotf.predict runs/cnn_rnn-ravdess-ds2-c4-auto-f0 speech.wav
    python -m emotf.predict runs/av-... speech.wav --video face.mp4

The recording goes through exactly the feature code of preprocessing, with the
settings the model's records were made with. With ``--mode clips`` (the default
for models trained on 3-s clips) each clip is classified and the class
probabilities are averaged; ``--mode utterance`` makes one image of the whole
file. The work is `emotf.serving.inference.predict`.
"""

from __future__ import annotations

import json
import sys

from emotf import cli
from emotf.features.audio import BadInputError
from emotf.runs import open_run
from emotf.serving.inference import predict


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.predict", __doc__)
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("audio", nargs="+", help="audio file(s): wav, flac, mp3, ... or a video's soundtrack")
    p.add_argument("--video", default="", help="face video (av and video models); one audio file only")
    p.add_argument("--mode", default="auto", choices=["auto", "utterance", "clips"],
                   help="auto: as the model's records (whole utterance or 3-s clips)")
    p.add_argument("--side", default="", choices=["", "left", "right"], help="half of the frame with the speaker")
    p.add_argument("--gain-db", type=float, default=None,
                   help="spectrogram level shift (default: the model's records'); see --measure-level of "
                        "python -m emotf.preprocess")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    cli.setup_logging(tensorflow=True)

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


if __name__ == "__main__":
    sys.exit(main())
