"""``python -m emotf.summarize RUN...``: finished runs side by side, and their mean ± std over folds.

    python -m emotf.summarize runs/ravdess-c4-f*/cnn_rnn

One row per run (test WA, UA, macro-F1, validation UA, selected epoch) and a
last row with the mean ± sample standard deviation, as a Markdown table. The
work is `emotf.evaluation.summary.summarize`.
"""

from __future__ import annotations

import sys

from emotf import cli
from emotf.evaluation.summary import summarize


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.summarize", __doc__)
    p.add_argument("runs", nargs="+", help="run folders of python -m emotf.fit")
    args = p.parse_args(argv)
    cli.setup_logging()

    try:
        print(summarize(args.runs))
    except cli.USER_ERRORS as e:
        return cli.fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
