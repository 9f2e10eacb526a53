"""``python -m emotf.export RUN --format saved_model|tflite``: the trained model for serving.

    python -m emotf.export runs/cnn_rnn-... --format tflite

The exported model takes what records store: the (n, H, W, 1) uint8
spectrogram (and, for video models, the (n, frames, H, W, 3) uint8 face
stacks); the colour map is inside it. Each export is checked against the
Keras model on a probe batch before the command reports success. The work is
`emotf.serving.exporter.export`.
"""

from __future__ import annotations

import sys

from emotf import cli
from emotf.serving.exporter import export


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.export", __doc__)
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("--format", default="saved_model", choices=["saved_model", "tflite"])
    p.add_argument("--out", default="", help="folder (default RUN/export)")
    p.add_argument("--quantize", action="store_true", help="tflite: dynamic-range int8 weights")
    args = p.parse_args(argv)
    cli.setup_logging(tensorflow=True)

    try:
        res = export(args.run, args.format, out=args.out or None, quantize=args.quantize)
    except cli.USER_ERRORS as e:
        return cli.fail(e)
    extra = "; recurrent layers unrolled" if res.get("unrolled") else ""
    print(f"wrote {res['path']} (max |difference| from Keras on a probe batch: {res['max_abs_diff']:.2e}){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
