"""``python -m emotf.evaluate RUN --records DIR``: score a trained model on any records.

    python -m emotf.evaluate runs/cnn_rnn-ravdess-ds2-c4-auto-f0 --records records/emodb/ds2

On the run's own records the default is its test speakers; on other records
(another corpus: a cross-corpus test) every speaker. Records whose emotion the
model does not know are left out, and by default the model may only predict
classes the records contain (the classes the two corpora share);
``--no-restrict`` lets it predict any of its classes. Results go to
``RUN/eval/<corpus>-<records folder>-<speakers>.json`` with a confusion-matrix PNG.
The work is `emotf.evaluation.rescore.evaluate`.

A model with the pretrained encoder's pooled-statistics head is also scored with speaker
adaptation (each speaker's pooled features standardised with that speaker's own statistics,
no label used; `emotf.evaluation.adaptation`), under ``speaker_adapted`` in the report.

``--robustness`` also re-scores the same utterances from their audio after a gain
change (−20, −10, +10 dB), a spectral tilt (±6 dB/octave) and added noise (20 dB
SNR), giving UA and the share of unchanged predictions per perturbation
(`emotf.evaluation.robustness`; ``...-robustness.json``).
"""

from __future__ import annotations

import sys

from emotf import cli
from emotf.evaluation import rescore, robustness, scoring
from emotf.features.audio import BadInputError


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.evaluate", __doc__)
    p.add_argument("run", help="run folder of python -m emotf.fit")
    p.add_argument("--records", required=True, help="records folder to score")
    p.add_argument("--speakers", default="auto", choices=["auto", "test", "val", "train", "all"])
    p.add_argument("--no-restrict", action="store_true", help="let the model predict classes absent from the records")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--robustness", action="store_true",
                   help="also score the utterances from their audio under gain, tilt and noise perturbations")
    args = p.parse_args(argv)
    cli.setup_logging(tensorflow=True)
    # imports TensorFlow: deferred, so the module loads without it (commands parse and fail fast)
    from emotf.data.pipeline import named_damage

    try:
        with named_damage(args.records):
            rep = rescore.evaluate(args.run, args.records, speakers=args.speakers, restrict=not args.no_restrict,
                                   batch_size=args.batch_size)
        robust = robustness.robustness(args.run, args.records, speakers=args.speakers) if args.robustness else None
    except (BadInputError, *cli.USER_ERRORS) as e:
        return cli.fail(e)
    print(scoring.summary_line(f"{rep['corpus']}/{rep['variant']}", rep))
    if "speaker_adapted" in rep:
        print(scoring.summary_line("  with speaker adaptation", rep["speaker_adapted"]))
    print("classes scored:", ", ".join(rep["predicted_classes"]))
    print(f"written to {rep['written_to']} (and its confusion matrix, .png)")
    if robust is not None:
        print(f"\nrobustness ({robust['utterances']} utterances, from their audio):\n{robustness.format_table(robust)}")
        print(f"written to {robust['written_to']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
