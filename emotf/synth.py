"""``python -m emotf.synth``: write a small synthetic corpus in the exact IEMOCAP or RAVDESS layout.

    python -m emotf.synth iemocap /tmp/iemocap_synth --sessions 5
    python -m emotf.synth ravdess /tmp/ravdess_synth --actors 4

The corpora (emotion learnable from the audio and from the face): `emotf.corpora.synthetic`.
"""

from __future__ import annotations

import argparse
import sys

from emotf.corpora.synthetic import IemocapSpec, generate_iemocap, generate_ravdess


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emotf.synth", description="Write a small synthetic corpus.")
    p.add_argument("layout", choices=["iemocap", "ravdess"])
    p.add_argument("out")
    p.add_argument("--sessions", type=int, default=5, help="iemocap: sessions")
    p.add_argument("--dialogs", type=int, default=2, help="iemocap: dialogs per session")
    p.add_argument("--utterances", type=int, default=8, help="iemocap: utterances per dialog")
    p.add_argument("--actors", type=int, default=4, help="ravdess: actors")
    p.add_argument("--no-video", action="store_true", help="ravdess: audio only")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.layout == "iemocap":
        idx = generate_iemocap(a.out, IemocapSpec(a.sessions, a.dialogs, a.utterances, seed=a.seed))
    else:
        idx = generate_ravdess(a.out, actors=a.actors, video=not a.no_video, seed=a.seed)
    print(f"wrote {len(idx)} utterances to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
