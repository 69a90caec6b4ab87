"""Magnitude pruning with tensorflow-model-optimization: wrap, fine-tune with UpdatePruningStep, strip."""
from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.models.heads import HEAD_LAYERS

SCHEDULES = ("polynomial", "constant")


def make_schedule(kind: str, target: float, end_step: int, frequency: int = 50):
    """tfmot only updates masks on steps that are multiples of `frequency` after the first, so short
    fine-tunes need a small frequency (see prune_run)."""
    if not 0 < target < 1:
        raise EdgefaceError(f"target sparsity must be between 0 and 1, got {target}")
    if kind == "polynomial":  # ramp from 0 to target over the first ~70% of fine-tuning, then hold
        return tfmot.sparsity.keras.PolynomialDecay(0.0, target, begin_step=0, end_step=max(1, end_step),
                                                    frequency=frequency)
    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(target, begin_step=0, frequency=frequency)
    raise EdgefaceError(f"unknown pruning schedule {kind!r}; choose {', '.join(SCHEDULES)}")


def prunable_layers(model, skip_first_conv=True, skip_heads=True, skip_depthwise=False, exclude=()) -> list[str]:
    names = []
    first_conv = next((l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)), None)
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        if layer.name in exclude or (skip_first_conv and layer.name == first_conv) \
                or (skip_heads and layer.name in HEAD_LAYERS) \
                or (skip_depthwise and isinstance(layer, keras.layers.DepthwiseConv2D)):
            continue
        names.append(layer.name)
    unknown = set(exclude) - {l.name for l in model.layers}
    if unknown:
        raise EdgefaceError(f"--exclude names no layer of this model: {', '.join(sorted(unknown))}")
    return names


def wrap_for_pruning(model, schedule, layers: list[str]):
    """Wraps the named layers; other layers (and their weights) are reused as they are."""
    chosen = set(layers)

    def clone(layer):
        if layer.name in chosen:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


def strip(model):
    return tfmot.sparsity.keras.strip_pruning(model)


def update_step_callback():
    return tfmot.sparsity.keras.UpdatePruningStep()
