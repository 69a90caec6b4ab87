"""TensorFlow side of the age heads (edgeface.models.age_heads): tensor maths, losses and metrics. Kept apart
so that the head registry can be read without importing TensorFlow."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


EPS = 1e-6


# ---- tensors shared by heads -----------------------------------------------------------------------------
def expected_age(probs):
    """(batch, years) distribution over 0, 1, 2, ... years -> (batch, 1) expected years."""
    return tf.reduce_sum(probs * tf.range(tf.shape(probs)[-1], dtype=probs.dtype), -1, keepdims=True)


def gaussian_age_target(years, sigma: float, count: int):
    """(batch, 1) years -> (batch, count) Gaussian label distribution over 0..count-1 years (DLDL)."""
    ages = tf.range(count, dtype=years.dtype)
    target = tf.exp(-0.5 * tf.square((ages - years) / sigma))
    return target / tf.reduce_sum(target, -1, keepdims=True)


def _logit(p):
    p = tf.clip_by_value(p, EPS, 1 - EPS)
    return tf.math.log(p) - tf.math.log1p(-p)


def sigmoid_soft_loss(teacher, student, temperature: float):
    """T^2-scaled cross-entropy of temperature-softened sigmoid outputs (Hinton et al. 2015)."""
    t = tf.sigmoid(_logit(teacher) / temperature)
    s = tf.sigmoid(_logit(student) / temperature)
    return tf.reduce_mean(keras.losses.binary_crossentropy(t, s)) * temperature ** 2


def softmax_soft_loss(teacher, student, temperature: float):
    t = tf.nn.softmax(tf.math.log(tf.clip_by_value(teacher, EPS, 1.0)) / temperature)
    s = tf.nn.log_softmax(tf.math.log(tf.clip_by_value(student, EPS, 1.0)) / temperature)
    return -tf.reduce_mean(tf.reduce_sum(t * s, -1)) * temperature ** 2


def mean_absolute(teacher, student):
    return tf.reduce_mean(tf.abs(teacher - student))


# ---- losses and metrics ----------------------------------------------------------------------------------
class AgeDistributionLoss(keras.losses.Loss):
    """DLDL-v2: KL(Gaussian around the true age || predicted distribution) + L1 of the expected age.

    The KL term teaches that neighbouring ages look alike (a 30-year-old face says little about 30 vs 31);
    the L1 term aligns the expectation, which is what gets deployed, with the label.
    """

    def __init__(self, sigma: float, name="age_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma = sigma

    def call(self, y_true, y_pred):
        target = gaussian_age_target(tf.cast(y_true, y_pred.dtype), self.sigma, y_pred.shape[-1])
        probs = tf.clip_by_value(y_pred, 1e-7, 1.0)
        kl = tf.reduce_sum(target * (tf.math.log(tf.maximum(target, 1e-12)) - tf.math.log(probs)), -1)
        return kl + tf.abs(expected_age(y_pred) - y_true)[:, 0]

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


class ExpectedAgeMAE(keras.metrics.Mean):
    """MAE in years of the distribution head's expected age."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(tf.abs(expected_age(y_pred) - y_true)[:, 0], sample_weight)


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
