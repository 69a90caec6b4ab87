"""Losses and metrics per head, with loss weights held in variables so a schedule can change them mid-run. The
age head's own loss and metrics come from its registry entry (edgeface.models.age_heads)."""
from __future__ import annotations

import numpy as np
import tf_keras as keras

from edgeface.runtime.decode import GENDER_THRESHOLD

# Keras' BinaryAccuracy calls male `P > threshold`; the card and every runner say `P >= threshold`. A
# quantization-aware model's fake-quantized logit is often exactly 0 (P exactly 0.5), so with 0.5 the in-fit
# accuracy disagreed with the same model re-scored (issue 32: a QAT epoch line 0.7840 beside 79.40%). The largest
# float32 below the threshold makes `>` mean `>=` for every float32 probability.
_KERAS_GENDER_THRESHOLD = float(np.nextafter(np.float32(GENDER_THRESHOLD), np.float32(0)))


class WeightedLoss(keras.losses.Loss):
    """base_loss * weight, where weight is a variable the LossWeightScheduler callback updates."""

    def __init__(self, base, weight, name=None):
        super().__init__(name=name or base.name, reduction=keras.losses.Reduction.AUTO)
        self.base = base
        self.weight = weight

    def call(self, y_true, y_pred):
        # Per-sample values; Loss.__call__ then applies sample weights and the reduction that the
        # distribution strategy needs.
        return self.weight * self.base.call(y_true, y_pred)


def base_loss(task: str, spec, age_loss: str, label_smoothing: float):
    if task == "gender":
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing, name="gender_loss")
    return spec.head().loss(age_loss)


def head_metrics(task: str, spec) -> list:
    if task == "gender":
        return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=_KERAS_GENDER_THRESHOLD)]
    return spec.head().metrics()


def score(logs: dict, prefix: str = "val_") -> float | None:
    """One number to pick the best epoch: gender error in % plus age MAE in years (or age-group error in %)."""
    parts = []
    if f"{prefix}gender_accuracy" in logs:
        parts.append(100 * (1 - logs[f"{prefix}gender_accuracy"]))
    if f"{prefix}age_mae" in logs:
        parts.append(logs[f"{prefix}age_mae"])
    elif f"{prefix}age_accuracy" in logs:
        parts.append(100 * (1 - logs[f"{prefix}age_accuracy"]))
    return sum(parts) if parts else None
