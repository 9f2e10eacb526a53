"""Preprocessing as an Apache Beam pipeline: the local pool's records, from any Beam runner.

    python -m emotf.preprocess --corpus ravdess --data ../shared/data/ravdess_speech --runner beam
    python -m emotf.preprocess ... --runner beam --beam-options="--runner=FlinkRunner --flink_master=host:8081"

The driver (the process that runs this) lists the corpus, plans the shards and checks the output folder
exactly as the local path does (`emotf.records.writer.run`); the pipeline writes the pending shards:

    Create(one element per pending shard: its name and utterances, in planned order)
      | Reshuffle             spread the shards over the workers
      | ParDo(WriteShard)     each utterance through shards.try_utterance (a bad file is an outcome, skipped
                              with its reason, never an exception: a runner that retries failed bundles does
                              not retry it), then shards.ShardBuilder: a temporary file of this attempt's own,
                              the summary, the rename; a shard already whole is left alone

and the driver then builds manifest.json from the summaries, as the local path does. A shard's bytes depend
only on its utterances and their order, so the records (and the manifest's digest) equal the local run's.

One element per shard, not per utterance: there is no shuffle barrier, so shards land as they finish and a
killed pipeline loses only the shards in flight (the same command resumes, as locally), and no record bytes
travel through the runner's shuffle. The parallelism is the number of shards: lower ``--shard-size`` for more.

Workers must see the corpus at ``cfg.data`` and the output folder at the same path as the driver (one
machine, or a shared file system mounted at one path: docs/preprocessing.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

from emotf.config import PreprocessConfig
from emotf.records import folder, shards


@contextlib.contextmanager
def _root_logging_at(level: int):
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


with _root_logging_at(logging.ERROR):  # Beam's import warns about Google Cloud clients that preprocessing never uses
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

log = logging.getLogger("emotf")


def default_options(workers: int | None = None) -> list[str]:
    """Beam's local runner in worker processes (its default is one thread of the driver's process)."""
    return ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
            f"--direct_num_workers={workers or os.cpu_count() or 1}", "--default_sdk_harness_log_level=ERROR"]


def pipeline_options(options: Sequence[str] | str, workers: int | None = None) -> PipelineOptions:
    """``--beam-options`` (a string or a list of Beam flags) → `PipelineOptions`; none: `default_options`."""
    args = shlex.split(options) if isinstance(options, str) else list(options)
    return PipelineOptions(args or default_options(workers))


class WriteShard(beam.DoFn):
    """(shard name, its utterances in planned order) → the shard's file and summary in ``out_dir``; yields the
    name. Idempotent: a shard already whole (an earlier attempt of a retried or duplicated bundle) is kept."""

    def __init__(self, cfg: dict[str, Any], out_dir: str, index: dict[str, int], with_video: bool):
        self.cfg_dict, self.out_dir, self.index, self.with_video = cfg, out_dir, index, with_video
        self.utterances = beam.metrics.Metrics.counter("emotf", "utterances")
        self.skipped = beam.metrics.Metrics.counter("emotf", "skipped")

    def setup(self):
        shards.prepare_worker_process()
        self.cfg = PreprocessConfig.from_dict(self.cfg_dict)

    def process(self, element):
        shard, utterances = element
        out = Path(self.out_dir)
        if folder.is_complete(out, shard) and not folder.damaged(out, shard):
            yield shard
            return
        builder = shards.ShardBuilder(self.cfg, out, shard, self.index, self.with_video)
        try:
            for utt in utterances:
                res, error = shards.try_utterance(utt, self.cfg, self.with_video)
                builder.add(utt, res, error)
                self.utterances.inc()
                self.skipped.inc(res is None)
            builder.commit()
        except BaseException:
            builder.abort()
            raise
        yield shard


def build(pipeline: beam.Pipeline, cfg: PreprocessConfig, out_dir: Path, pending: list, index: dict[str, int],
          with_video: bool):
    """The preprocessing transforms on ``pipeline``; returns the PCollection of written shards' names."""
    return (pipeline
            | "Shards" >> beam.Create([(s.name, s.utterances) for s in pending], reshuffle=False)
            | "Spread" >> beam.Reshuffle()  # one shard per element, spread over the workers
            | "WriteShard" >> beam.ParDo(WriteShard(cfg.to_dict(), str(out_dir), index, with_video)))


def write_shards(cfg: PreprocessConfig, out_dir: Path, pending: list, index: dict[str, int], with_video: bool, *,
                 workers: int | None = None, options: Sequence[str] | str = (), progress: bool = True) -> None:
    """Write the ``pending`` shards (`emotf.records.shards.PlannedShard`) with a Beam pipeline; returns when
    it has finished. ``progress``: a bar of the shards finished, read from ``out_dir`` (any runner).

    Raises:
        shards.PreprocessError: the pipeline failed (its first error named; finished shards are kept).
    """
    opts = pipeline_options(options, workers)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    runner = opts.get_all_options().get("runner") or "DirectRunner"
    log.info("Beam (%s): %d utterances in %d shards", runner, sum(len(s.utterances) for s in pending), len(pending))
    died: list[str] = []
    with _stop_when_a_worker_dies(died), _shards_bar(out_dir, [s.name for s in pending], progress):
        try:
            pipeline = beam.Pipeline(options=opts)
            build(pipeline, cfg, out_dir, pending, index, with_video)
            result = pipeline.run()
            state = result.wait_until_finish()
        except _WorkerLost:
            raise shards.PreprocessError(f"a Beam worker process died ({died[0]}: killed, out of memory, or crashed "
                                         f"inside a decoder); the finished shards are kept: run the same command "
                                         f"again to resume") from None
        except shards.PreprocessError:
            raise
        except Exception as e:  # the runner wraps the worker's exception; its message names the file
            strict = "bad input (strict mode): "
            text = str(e)
            if strict in text:
                raise shards.PreprocessError(strict + text.split(strict, 1)[1].splitlines()[0].strip(" '\"")) from None
            raise shards.PreprocessError(f"the Beam pipeline ({runner}) failed: {_last_line(text)}; the finished "
                                         f"shards are kept: run the same command again to resume") from e
    if state not in (None, "DONE", beam.runners.runner.PipelineState.DONE):
        raise shards.PreprocessError(f"the Beam pipeline ({runner}) ended {state}; the finished shards are kept")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class _WorkerLost(Exception):
    pass


@contextlib.contextmanager
def _stop_when_a_worker_dies(died: list[str]):
    """Beam's local runner reports a worker process that died (killed, out of memory, a decoder crashing) in one
    of its threads and then waits for it for ever. Here that report stops the other workers and raises
    `_WorkerLost` in the main thread (by a signal: its wait is not interruptible otherwise), as the local pool's
    BrokenProcessPool does. Remote runners replace the worker and retry its bundle themselves."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; a pipeline driven from another thread keeps Beam's behaviour
        return
    previous_hook = threading.excepthook

    def on_thread_error(args):
        lost = ("Worker subprocess exited" in str(args.exc_value)  # the shell that ran a worker ended
                or (args.thread is not None and args.thread.name == "beam_control_read"))  # its channel broke
        if not lost:
            previous_hook(args)
            return
        if died:
            return
        died.append(str(args.exc_value) if "Worker subprocess" in str(args.exc_value) else "its channel broke")
        for child in psutil.Process().children(recursive=True):  # the workers still waiting on the dead one
            with contextlib.suppress(psutil.Error):
                if "sdk_worker_main" in " ".join(child.cmdline()):
                    child.kill()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def raise_lost(signum, frame):
        raise _WorkerLost

    previous_signal = signal.signal(signal.SIGUSR1, raise_lost)
    threading.excepthook = on_thread_error
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        signal.signal(signal.SIGUSR1, previous_signal)


@contextlib.contextmanager
def _shards_bar(out_dir: Path, names: list[str], enabled: bool, every_s: float = 1.0):
    """A progress bar of finished shards while the pipeline runs: the driver blocks in Beam, so a thread reads
    the output folder (where the workers' shards land, whichever runner) every ``every_s`` seconds."""
    if not enabled:
        yield
        return
    bar = tqdm(total=len(names), unit="shard", file=sys.stderr, dynamic_ncols=True)
    stop = threading.Event()

    def poll():
        left = list(names)
        while left and not stop.wait(every_s):
            done = [s for s in left if folder.is_complete(out_dir, s)]
            left = [s for s in left if s not in done]
            bar.update(len(done))

    thread = threading.Thread(target=poll, name="emotf-shards-bar", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
