"""Devices, distribution strategy, precision policy and XLA for a training run (TensorFlow backend).

Call ``configure`` once, before any model is built: logical CPU devices and
the dtype policy cannot change afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np

from emotf import __version__
from emotf.catalog import ARCHS

log = logging.getLogger("emotf")


@dataclasses.dataclass
class Runtime:
    strategy: object
    policy: str
    jit_compile: bool
    devices: list[str]
    replicas: int

    def describe(self) -> dict:
        return {"strategy": type(self.strategy).__name__, "policy": self.policy, "jit_compile": self.jit_compile,
                "devices": self.devices, "replicas": self.replicas}


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    index: int
    chief: bool


def worker_role(strategy: str) -> WorkerRole:
    """This process's place in a multi-worker cluster, from ``TF_CONFIG`` (without TensorFlow): the chief is
    the task of type "chief", else worker 0. Any other strategy: one worker, the chief."""
    if strategy != "multiworker":
        return WorkerRole(0, True)
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not JSON ({e}): see docs/training.md") from None
    task, cluster = tf_config.get("task", {}), tf_config.get("cluster", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    return WorkerRole(index, kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster))


def configure(*, mixed_precision: str = "auto", strategy: str = "default", jit_compile: str = "auto",
              logical_cpus: int = 0, search: bool = False, arch: str = "") -> Runtime:
    """Set up devices, strategy and policy; the returned `Runtime` says what was chosen.

    Args:
        mixed_precision: "auto" (mixed_float16 on a GPU, float32 on CPU, where
            float16 is slower and MaxPool3D has no float16 kernel), "on", "off".
        strategy: "default" (one device), "mirrored" (all GPUs, else all
            logical CPUs of this machine), "multiworker" (``TF_CONFIG``).
        jit_compile: "auto", "on", "off"; see `resolve_jit`.
        logical_cpus: split the first CPU into this many logical devices
            (to run ``mirrored`` on a CPU-only machine).
        search: the run is a KerasTuner search (``jit_compile="auto"`` means off there).
        arch: the architecture trained (its ``xla`` in `emotf.catalog.ARCHS` decides "auto").
    """
    import keras
    import tensorflow as tf

    if logical_cpus and logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        except RuntimeError as e:  # devices already initialised in this process
            log.warning("could not split the CPU into %d logical devices: %s", logical_cpus, e)
    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision == "on" or (mixed_precision == "auto" and gpus):
        policy = "mixed_float16"
        if not gpus:
            log.warning("mixed_float16 on a CPU: slower than float32, and MaxPool3D (video) has no float16 kernel")
    else:
        policy = "float32"
    keras.config.set_dtype_policy(policy)

    if strategy == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        strat = tf.distribute.MirroredStrategy(devices=devices)
    elif strategy == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs TF_CONFIG (see docs/training.md)")
        strat = tf.distribute.MultiWorkerMirroredStrategy()
        devices = [f"worker {strat.cluster_resolver.task_id}"]
    else:
        strat = tf.distribute.get_strategy()
        devices = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[:1]]
    jit = resolve_jit(jit_compile, strategy=strategy, backend=keras.backend.backend(), search=search, arch=arch,
                      gpu=bool(gpus))
    return Runtime(strat, policy, jit, devices, int(strat.num_replicas_in_sync))


def resolve_jit(jit_compile: str, *, strategy: str = "default", backend: str = "tensorflow",
                search: bool = False, arch: str = "", gpu: bool = False) -> bool:
    """Whether models are compiled with XLA: "on", "off", or "auto".

    "auto" is on for training on one device with the TensorFlow backend: on a GPU, and on a CPU
    for the architectures XLA was measured to make faster there (``xla`` in `emotf.catalog.ARCHS`;
    none so far: docs/benchmarks.md); off under a distribution strategy and in searches: XLA's
    compiled code outlives ``clear_session``, about 40 MB per trial (docs/tuning.md).
    """
    if jit_compile not in ("auto", "on", "off"):
        raise ValueError(f"jit_compile must be auto, on or off. Received: {jit_compile!r}")
    if jit_compile != "auto":
        return jit_compile == "on"
    faster = gpu or (ARCHS[arch].xla if arch in ARCHS else False)
    return strategy == "default" and backend == "tensorflow" and not search and faster


def versions() -> dict[str, str]:
    """What a run's numbers depend on besides its configuration and records: versions and the CPU."""
    import keras
    import tensorflow as tf

    # The same seed retrains bit-identically on one machine (docs/results.md, "Seeds"); on another processor
    # oneDNN may pick other kernels, whose round-off differs, so the CPU is part of a run's identity.
    return {"emotf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "backend": keras.backend.backend(), "numpy": np.__version__, "cpu": cpu_model()}


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")  # the ones oneDNN chooses kernels by


def cpu_model() -> str:
    """The processor's model name and vector extensions, e.g. "AMD EPYC (avx2 fma)"."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    isa = [f for f in ISA_FLAGS if f in flags]
    return f"{name} ({' '.join(isa)})" if isa else name


def prepare_fit(model, train, val=None):
    """``model.fit``'s datasets under the model's strategy: (train, val), each worker keeping its share of the
    batches (`_shard_by_data`), and Keras 3's ``fit`` made to work under ``MultiWorkerMirroredStrategy``
    (keras-team/keras#20585, open). Unchanged under any other strategy.

    Two steps of Keras's TensorFlow trainer fail under the multi-worker strategy alone:

    * before the first step, ``fit`` and ``evaluate`` build the compiled loss and metrics from one batch that
      they first all-reduce across replicas ("Attempt to convert a value (PerReplica...) to a Tensor"). The
      build needs only the batch's shapes and dtypes: it is done here from the dataset's element spec, and
      that reduce skipped;
    * each step averages the replicas' scalar logs (loss, metrics) with ``reduce("MEAN", v, axis=0)``, which
      has no axis 0 ("Invalid reduction dimension 0 for input with 0 dimensions"): scalars are averaged
      over replicas (``axis=None``) instead, so every worker logs the same numbers and takes the same
      decisions (best epoch, early stopping).

    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    strategy = getattr(model, "distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return train, val
    train, val = _shard_by_data(train), _shard_by_data(val)
    with strategy.scope():
        model._symbolic_build(data_batch=train.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if not getattr(tf_trainer.reduce_per_replica, "emotf_scalars", False):
        tf_trainer.reduce_per_replica = _reduce_scalars_over_workers(tf_trainer.reduce_per_replica)
    return train, val


def _shard_by_data(dataset):
    """Each worker keeps every n-th batch of the whole stream (DATA sharding).

    tf.distribute's default shards by file when it can; a validation or test split of one speaker is one
    file, fewer than the workers, which stops the run ("Could not apply FILE based sharding"). By batch,
    the workers together see exactly the batches one worker would.
    """
    import tensorflow as tf

    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _reduce_scalars_over_workers(keras_reduce):
    import tensorflow as tf
    from keras import tree

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return keras_reduce(values, strategy, reduction)

        def one(v):
            local = strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return keras_reduce(v, strategy, reduction)

        return tree.map_structure(one, values)

    reduce_per_replica.emotf_scalars = True
    return reduce_per_replica


def worker_folder(shared: Path, index: int) -> Path:
    """A non-chief worker's own folder for what the chief writes to ``shared`` (a run or a search), on this
    machine's disk, emptied: every worker computes what the chief does, only the chief's files are kept."""
    key = hashlib.sha256(str(Path(shared).resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "emotf-workers" / f"{key}-worker{index}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def loopback_tf_configs(workers: int) -> list[str]:
    """``TF_CONFIG`` of each worker of a cluster on this machine (free localhost ports): for tests and
    benchmarks of ``--strategy multiworker`` without a second machine."""
    socks = [socket.socket() for _ in range(workers)]
    for s in socks:
        s.bind(("localhost", 0))
    hosts = [f"localhost:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(workers)]
