"""``python -m emotf.verify RECORDS``: check every shard of a records folder against its manifest.

    python -m emotf.verify records/ravdess/ds2
    python -m emotf.verify records/ravdess/wave,records/emodb/wave

Each shard must be there, whole (no record cut short), hold the number of records
its summary counts and exactly the records that were written (their SHA-256, kept
in the summary at writing time). Loading records for training checks all but the
SHA-256 on its own; this command reads every byte. Exit status 0: all is well; 2: a
problem, one line per damaged shard and the command that rewrites it (re-running the
preprocessing command redoes the damaged shards only). The work is
`emotf.records.folder.verify`.

Records with face video can also be looked at: ``--faces sheet.png`` draws a
contact sheet of the stored crops (a row per speaker, a column per class: the
first, middle and last frame of one stack each; a red frame where no face was
found and the fixed box was used), to see that the detector found the faces:

    python -m emotf.verify records/javanese/ds2 --faces docs/figures/javanese-faces.png
"""

from __future__ import annotations

import sys

from emotf import cli
from emotf.evaluation.plots import faces_png
from emotf.records import folder, keys, schema


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.verify", __doc__)
    p.add_argument("records", help="records folder (several: joined by commas)")
    p.add_argument("--fast", action="store_true", help="framing and record counts only, not the SHA-256")
    p.add_argument("--faces", default="", metavar="PNG",
                   help="also write a contact sheet of the face crops (records with video) to this PNG")
    args = p.parse_args(argv)
    cli.setup_logging(tensorflow=bool(args.faces))

    try:
        problems = folder.verify(args.records, digest=not args.fast)
    except cli.USER_ERRORS as e:
        return cli.fail(e)
    for _, problem in problems:
        cli.log.error("damaged: %s", problem)
    if problems:
        for root in dict.fromkeys(root for root, _ in problems):
            cli.log.error("to repair %s: %s", root, folder.repair_hint(root))
        return 2
    cli.log.info("%s: every shard is whole and matches its manifest%s", args.records,
                 "" if args.fast else " and its SHA-256")
    if args.faces:
        try:
            path = face_sheet(args.records, args.faces)
        except cli.USER_ERRORS as e:
            return cli.fail(e)
        cli.log.info("face crops: %s", path)
    return 0


def face_sheet(records: str, png: str):
    """Draw the contact sheet of ``records``' face crops (the first record of each speaker and class)."""
    info = folder.load_records(records)
    if not info.with_video:
        raise ValueError(f"{records}: these records hold no face video (preprocess a corpus with video)")
    cells = {}
    for shard in info.shards:
        if all((shard.unit, name) in cells for name, n in shard.per_label.items() if n):
            continue  # every class of this shard's speaker is drawn already: no need to decode its frames
        for ex in schema.read_records([shard.file], spec_shape=info.spec_shape, video_shape=info.video_shape,
                                      with_video=True):
            key = (shard.unit, ex[keys.LABEL_NAME])
            if key not in cells:
                video = ex["video"]
                cells[key] = (video[[0, len(video) // 2, -1]], bool(ex[keys.VIDEO_FACE_FOUND]))
    fallbacks = sum(not found for _, found in cells.values())
    title = (f"{info.corpus}/{info.variant}: first, middle and last frame of one stack per speaker and class"
             + (f"; red: {fallbacks} fixed-box fallbacks" if fallbacks else ""))
    return faces_png(cells, info.units, info.present_classes, png, title)


if __name__ == "__main__":
    sys.exit(main())
