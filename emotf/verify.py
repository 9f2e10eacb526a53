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
"""

from __future__ import annotations

import sys

from emotf import cli


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m emotf.verify", __doc__)
    p.add_argument("records", help="records folder (several: joined by commas)")
    p.add_argument("--fast", action="store_true", help="framing and record counts only, not the SHA-256")
    args = p.parse_args(argv)
    cli.setup_logging()
    from emotf.records import folder

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
