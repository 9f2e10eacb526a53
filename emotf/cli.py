"""What the command-line tools share: flags generated from the config dataclasses, logging, exit codes.

Each flag of ``python -m emotf.fit`` and ``python -m emotf.tune`` is a field of
`emotf.config.TrainConfig`, generated here from the field's metadata (help,
choices); a field added there is a flag of both commands, unless a command
names it in its explicit ``exclude`` list. Bad input ends a command with one
``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emotf.catalog import train_defaults
from emotf.config import TrainConfig

log = logging.getLogger("emotf")

# What a command reports as "error: ..." with exit status 2 (bad input, not a bug).
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)


# TensorFlow's start-up notices: written by its C++ code straight to file descriptor 2 before its logging is set
# up (so TF_CPP_MIN_LOG_LEVEL cannot silence them), on every import, whatever the machine.
_TF_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|Could not find cuda drivers"
    r"|failed call to cuInit|cpu_feature_guard|To enable the following instructions|rebuild TensorFlow with the"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|computation placer already registered"
    r"|This TensorFlow binary is optimized")


def setup_logging(tensorflow: bool = False) -> None:
    """Messages to stderr, TensorFlow's C++ chatter off.

    Args:
        tensorflow: also import TensorFlow now and find its devices, with its start-up notices
            (the CUDA stub on a CPU machine, oneDNN, CPU features) left out of stderr; other lines pass.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if tensorflow and "tensorflow" not in sys.modules:
        _import_tensorflow_quietly()


def _import_tensorflow_quietly() -> None:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA's probe, while its notices are caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines():
                if line.strip() and not _TF_NOISE.search(line):
                    print(line, file=sys.stderr)


def fail(error: Exception) -> int:
    """Report a user error in one line; the exit status of a command that stops on bad input."""
    log.error("error: %s", error)
    return 2


def interrupted(what_next: str) -> int:
    """Ctrl-C: one line, no traceback; the shell's status for SIGINT."""
    log.error("interrupted: %s", what_next)
    return 130


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of a command's docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_config_flags(p: argparse.ArgumentParser, cls=TrainConfig, *, exclude: Iterable[str] = (),
                     help: dict[str, str] | None = None) -> None:
    """One ``--field-name`` flag per field of the frozen dataclass ``cls`` (help and choices from its metadata).

    Args:
        exclude: fields this command does not take as flags.
        help: help texts that differ for this command (e.g. where ``--out`` goes by default).
    """
    exclude, help = set(exclude), help or {}
    for f in dataclasses.fields(cls):
        if f.name in exclude or f.metadata.get("cli") is False:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict[str, Any] = {"dest": f.name, "help": help.get(f.name, f.metadata.get("help", ""))}
        if "list_of" in f.metadata:  # a tuple field: a comma list on the command line
            kwargs.update(default=",".join(default) or "none", type=str)
        elif isinstance(default, bool):
            kwargs.update(default=default, action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(default=default, type=type(default), choices=f.metadata.get("choices"))
        p.add_argument(flag(f.name), **kwargs)


def config_from_args(args: argparse.Namespace, cls=TrainConfig, **fields: Any):
    """The dataclass ``cls`` from the parsed flags (comma lists split), ``fields`` overriding."""
    values = {}
    for f in dataclasses.fields(cls):
        if not hasattr(args, f.name):
            continue
        v = getattr(args, f.name)
        if "list_of" in f.metadata and isinstance(v, str):
            v = tuple(a for a in v.split(",") if a and a != "none")
        values[f.name] = v
    return cls(**{**values, **fields})


def load_hparams(path: str | Path) -> dict[str, Any]:
    """A flat JSON object of hyperparameters, or the one under ``"hparams"`` (a tuner's best_hparams.json)."""
    try:
        hp = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read hyperparameters: {e}") from None
    return hp.get("hparams", hp) if isinstance(hp, dict) else {}


def train_config(args: argparse.Namespace, argv: list[str] | None = None, *, hparams: str = "",
                 search: bool = False) -> TrainConfig:
    """TrainConfig from the flags, in this order of precedence: a flag given in ``argv``; a value of the
    ``hparams`` file (its keys that are not TrainConfig fields become builder arguments); the architecture's
    own training defaults (``train_defaults`` in `emotf.catalog.ARCHS`: the recipe of ``logmel_cnn``; for ``av``
    with a waveform audio branch, the branch's: `emotf.catalog.train_defaults`; ``search``: a search's, whose
    trials stream);
    the flag's default (the paper's settings).
    """
    cfg = config_from_args(args)
    explicit = {a.split("=")[0] for a in (sys.argv[1:] if argv is None else argv) if a.startswith("--")}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    chosen = cfg.head_fit if flag("head_fit") in explicit else None
    fields = {k: v for k, v in train_defaults(cfg.arch, cfg.audio_arch, search=search, head_fit=chosen).items()
              if flag(k) not in explicit}
    model = dict(fields.pop("model", {}))  # the arch's default builder arguments, under the file's
    for k, v in (load_hparams(hparams) if hparams else {}).items():
        if k in names and k not in ("model", "arch"):
            if flag(k) not in explicit:  # a flag on the command line wins
                fields[k] = v
        elif k != "arch":
            model[k] = v
    if "augment" in fields:
        fields["augment"] = tuple(fields["augment"])
    return dataclasses.replace(cfg, **fields, **({"model": model} if hparams or model else {}))
