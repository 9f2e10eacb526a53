"""Speaker adaptation of a model's pooled features, without labels: a speaker's utterances standardised with that
speaker's own statistics, onto the training population's (the model's batch norm).

For a model whose head starts with pooled utterance features and a batch norm (the pretrained encoder's default
``"stats"`` head: layers ``layer_stats`` then ``stats_norm``). Used where the speaker of several utterances is
known: evaluation (`emotf.evaluation.adaptation`) and a long recording of one speaker
(`emotf.serving.timeline`). The model itself is not changed.
"""

from __future__ import annotations

import keras
import numpy as np

FEATURES, NORM = "layer_stats", "stats_norm"


def supports(model: keras.Model) -> bool:
    """Whether ``model`` has the pooled features and the batch norm this adaptation works on."""
    names = {layer.name for layer in model.layers}
    return FEATURES in names and NORM in names


def split(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(features, head): ``model`` cut after its pooled features; ``head(features(x)) == model(x)``."""
    if not supports(model):
        raise ValueError(f"{model.name}: no '{FEATURES}' and '{NORM}' layers: speaker adaptation needs the pooled-"
                         f"statistics head (whisper_tiny's default)")
    features = keras.Model(model.inputs, model.get_layer(FEATURES).output, name=f"{model.name}_features")
    after = model.layers[[layer.name for layer in model.layers].index(FEATURES) + 1:]
    inp = keras.Input(shape=model.get_layer(FEATURES).output.shape[1:], name="pooled")
    x = inp
    for layer in after:
        x = layer(x)
    return features, keras.Model(inp, x, name=f"{model.name}_head")


def adapt(pooled: np.ndarray, norm, *, epsilon: float = 1e-6) -> np.ndarray:
    """One speaker's pooled features (utterances, features) → standardised, then on the population's statistics
    (``norm``: the model's batch norm layer)."""
    mean, std = pooled.mean(0, keepdims=True), pooled.std(0, keepdims=True)
    population_mean = np.asarray(norm.moving_mean)
    population_std = np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
    return (pooled - mean) / (std + epsilon) * population_std + population_mean
