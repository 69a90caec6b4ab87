"""Losses and metrics per head, with loss weights held in variables so a schedule can change them mid-run."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from edgeface.models.heads import DISTRIBUTION_SIGMA, DISTRIBUTION_YEARS


class WeightedLoss(keras.losses.Loss):
    """base_loss * weight, where weight is a variable the LossWeightScheduler callback updates."""

    def __init__(self, base, weight: tf.Variable, name=None):
        super().__init__(name=name or base.name, reduction=keras.losses.Reduction.AUTO)
        self.base = base
        self.weight = weight

    def call(self, y_true, y_pred):
        # Per-sample values; Loss.__call__ then applies sample weights and the reduction that the
        # distribution strategy needs.
        return self.weight * self.base.call(y_true, y_pred)


def expected_age(probs):
    """(batch, 101) distribution -> (batch, 1) years."""
    return tf.reduce_sum(probs * tf.range(DISTRIBUTION_YEARS, dtype=probs.dtype), -1, keepdims=True)


def gaussian_age_target(years, sigma: float = DISTRIBUTION_SIGMA):
    """(batch, 1) years -> (batch, 101) Gaussian label distribution (DLDL)."""
    ages = tf.range(DISTRIBUTION_YEARS, dtype=years.dtype)
    target = tf.exp(-0.5 * tf.square((ages - years) / sigma))
    return target / tf.reduce_sum(target, -1, keepdims=True)


class AgeDistributionLoss(keras.losses.Loss):
    """DLDL-v2: KL(Gaussian around the true age || predicted distribution) + L1 of the expected age.

    The KL term teaches that neighbouring ages look alike (a 30-year-old face says little about 30 vs 31);
    the L1 term aligns the expectation, which is what gets deployed, with the label.
    """

    def __init__(self, sigma: float = DISTRIBUTION_SIGMA, name="age_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma = sigma

    def call(self, y_true, y_pred):
        target = gaussian_age_target(tf.cast(y_true, y_pred.dtype), self.sigma)
        probs = tf.clip_by_value(y_pred, 1e-7, 1.0)
        kl = tf.reduce_sum(target * (tf.math.log(tf.maximum(target, 1e-12)) - tf.math.log(probs)), -1)
        return kl + tf.abs(expected_age(y_pred) - y_true)[:, 0]

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


class ExpectedAgeMAE(keras.metrics.Mean):
    """MAE in years of the distribution head's expected age."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(tf.abs(expected_age(y_pred) - y_true)[:, 0], sample_weight)


def base_loss(task: str, age_head: str, age_loss: str, label_smoothing: float):
    if task == "gender":
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing, name="gender_loss")
    if age_head == "regression":
        return {"mae": keras.losses.MeanAbsoluteError, "huber": lambda name: keras.losses.Huber(3.0, name=name),
                "mse": keras.losses.MeanSquaredError}[age_loss](name="age_loss")
    if age_head == "distribution":
        return AgeDistributionLoss()
    if age_head == "groups":
        return keras.losses.CategoricalCrossentropy(name="age_loss")
    return keras.losses.BinaryCrossentropy(name="age_loss")  # ordinal: one BCE per "older than k" output


class OrdinalMAE(keras.metrics.Mean):
    """|decoded(pred) - decoded(true)| where decoding counts outputs above 0.5 (years or groups)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        diff = tf.abs(tf.reduce_sum(tf.cast(y_pred > 0.5, tf.float32), -1)
                      - tf.reduce_sum(tf.cast(y_true > 0.5, tf.float32), -1))
        return super().update_state(diff, sample_weight)


class OrdinalAccuracy(keras.metrics.Mean):
    def update_state(self, y_true, y_pred, sample_weight=None):
        same = tf.cast(tf.equal(tf.reduce_sum(tf.cast(y_pred > 0.5, tf.int32), -1),
                                tf.reduce_sum(tf.cast(y_true > 0.5, tf.int32), -1)), tf.float32)
        return super().update_state(same, sample_weight)


def head_metrics(task: str, age_head: str, numeric_age: bool) -> list:
    if task == "gender":
        return [keras.metrics.BinaryAccuracy(name="accuracy")]
    if age_head == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    if age_head == "distribution":
        return [ExpectedAgeMAE(name="mae")]
    if age_head == "groups":
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [OrdinalMAE(name="mae")] if numeric_age else [OrdinalAccuracy(name="accuracy")]


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
