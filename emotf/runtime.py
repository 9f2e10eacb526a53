"""Devices, distribution strategy, precision policy and XLA for a training run (TensorFlow backend).

Call ``configure`` once, before any model is built: logical CPU devices and
the dtype policy cannot change afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import os

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


def configure(*, mixed_precision: str = "auto", strategy: str = "default", jit_compile: str = "auto",
              logical_cpus: int = 0) -> Runtime:
    """Set up devices, strategy and policy.

    Args:
        mixed_precision: "auto" (mixed_float16 on a GPU, float32 on CPU, where
            float16 is slower and MaxPool3D has no float16 kernel), "on", "off".
        strategy: "default" (one device), "mirrored" (all GPUs, else all
            logical CPUs of this machine), "multiworker" (``TF_CONFIG``).
        jit_compile: "auto" (XLA unless a distribution strategy is used), "on", "off".
        logical_cpus: split the first CPU into this many logical devices
            (to run ``mirrored`` on a CPU-only machine).
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
    default = strategy == "default"
    jit = jit_compile == "on" or (jit_compile == "auto" and default and keras.backend.backend() == "tensorflow")
    return Runtime(strat, policy, bool(jit), devices, int(strat.num_replicas_in_sync))
