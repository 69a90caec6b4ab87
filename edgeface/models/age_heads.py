"""The age-head registry: one class per kind of age output. Each builds its layer, encodes training targets,
gives its loss, metrics and decoding rule, writes its model-card output, and converts to and from years for
distillation. Adding a fifth head means adding one class here."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUPS
from edgeface.runtime.decode import decode_age

EPS = 1e-6
# distribution head (DLDL-v2, Gao et al. 2018): softmax over ages 0..100 in years, trained towards a Gaussian
# of this width around the true age plus L1 on its expectation; the deployed age is that expectation.
DISTRIBUTION_YEARS = 101
DISTRIBUTION_SIGMA = 2.0
ORDINAL_MAX_YEARS = 100  # ordinal over years: outputs k = 1..100 answer "age >= k"


# ---- tensors shared by heads -----------------------------------------------------------------------------
def expected_age(probs):
    """(batch, 101) distribution -> (batch, 1) years."""
    return tf.reduce_sum(probs * tf.range(DISTRIBUTION_YEARS, dtype=probs.dtype), -1, keepdims=True)


def gaussian_age_target(years, sigma: float = DISTRIBUTION_SIGMA):
    """(batch, 1) years -> (batch, 101) Gaussian label distribution (DLDL)."""
    ages = tf.range(DISTRIBUTION_YEARS, dtype=years.dtype)
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


# ---- losses and metrics ----------------------------------------------------------------------------------
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


# ---- the registry ----------------------------------------------------------------------------------------
class AgeHead:
    """One kind of age output. `numeric_age` says whether the labels are years (True) or age groups only."""

    name = ""
    needs_years = False  # True: trains on ages in years only
    description = ""

    def __init__(self, numeric_age: bool = True):
        self.numeric_age = numeric_age

    def units(self) -> int:
        raise NotImplementedError

    def activation(self):
        return None

    def layer(self, age_init: float = 33.0):
        return keras.layers.Dense(self.units(), activation=self.activation(), name="age", dtype="float32")

    def targets(self, years: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Training targets from ages in years (NaN unknown) and group indices (-1 unknown); unknown rows get
        any value (their sample weight is 0)."""
        raise NotImplementedError

    def loss(self, age_loss: str = "mae"):
        raise NotImplementedError

    def metrics(self) -> list:
        raise NotImplementedError

    def decoding(self) -> dict:
        """The rule (edgeface.runtime.decode) that turns this head's output into an answer."""
        raise NotImplementedError

    def meaning(self) -> tuple[str, str]:
        """(what the output holds, how an app decodes it), for the model card."""
        raise NotImplementedError

    def card_output(self, dtype: str = "float32", quantization=None) -> dict:
        meaning, decode = self.meaning()
        return {"name": "age", "shape": [-1, self.units()], "dtype": dtype, "meaning": meaning, "decode": decode,
                "decoding": self.decoding(), "quantization": quantization}

    def decode(self, raw) -> dict:
        return decode_age(raw, self.decoding())

    def years(self, output):
        """Output tensor -> (batch, 1) years; what a student of another numeric head learns from."""
        raise EdgefaceError(f"the {self.name} age head does not give years")

    def from_years(self, years):
        """(batch, 1) years -> this head's output form."""
        raise EdgefaceError(f"the {self.name} age head cannot be built from years")

    def soft_loss(self, teacher, student, temperature: float):
        """Distillation loss between a teacher's and a student's output of this head."""
        return sigmoid_soft_loss(teacher, student, temperature)


class RegressionHead(AgeHead):
    name = "regression"
    needs_years = True
    description = "a single output: the age in years"

    def units(self):
        return 1

    def layer(self, age_init: float = 33.0):
        return keras.layers.Dense(1, name="age", dtype="float32", bias_initializer=keras.initializers.Constant(age_init))

    def targets(self, years, groups):
        return np.nan_to_num(years).reshape(-1, 1)

    def loss(self, age_loss="mae"):
        return {"mae": keras.losses.MeanAbsoluteError, "huber": lambda name: keras.losses.Huber(3.0, name=name),
                "mse": keras.losses.MeanSquaredError}[age_loss](name="age_loss")

    def metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def decoding(self):
        return {"rule": "value", "unit": "years"}

    def meaning(self):
        return "estimated age in years", "age = output[0]"

    def years(self, output):
        return output

    def from_years(self, years):
        return years

    def soft_loss(self, teacher, student, temperature):
        return tf.reduce_mean(tf.abs(teacher - student))


class DistributionHead(AgeHead):
    name = "distribution"
    needs_years = True
    description = "DLDL-v2: a softmax over ages 0..100 years; the age is its expectation"

    def units(self):
        return DISTRIBUTION_YEARS

    def activation(self):
        return "softmax"

    def targets(self, years, groups):  # the loss builds the Gaussian target from the years
        return np.nan_to_num(years).reshape(-1, 1)

    def loss(self, age_loss="mae"):
        return AgeDistributionLoss()

    def metrics(self):
        return [ExpectedAgeMAE(name="mae")]

    def decoding(self):
        return {"rule": "expectation", "unit": "years", "first_value": 0}

    def meaning(self):
        return (f"probability of each age in years: output[k] = P(age = k), k = 0..{DISTRIBUTION_YEARS - 1}",
                "age in years = sum(k * output[k]) / sum(output)")

    def years(self, output):
        return expected_age(output)

    def from_years(self, years):
        return gaussian_age_target(years)

    def soft_loss(self, teacher, student, temperature):
        return softmax_soft_loss(teacher, student, temperature)


class GroupsHead(AgeHead):
    name = "groups"
    description = "a softmax over the 8 Adience age groups"

    def units(self):
        return len(AGE_GROUPS)

    def activation(self):
        return "softmax"

    def targets(self, years, groups):
        return np.eye(len(AGE_GROUPS), dtype=np.float32)[np.maximum(groups, 0)]

    def loss(self, age_loss="mae"):
        return keras.losses.CategoricalCrossentropy(name="age_loss")

    def metrics(self):
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def decoding(self):
        return {"rule": "argmax", "unit": "age_group"}

    def meaning(self):
        return ("probabilities of the 8 Adience age groups (labels.age_groups)", "group = argmax(output)")

    def soft_loss(self, teacher, student, temperature):
        return softmax_soft_loss(teacher, student, temperature)


class OrdinalHead(AgeHead):
    name = "ordinal"
    description = "K-1 'older than' outputs, per year (numeric ages) or per group boundary (group labels)"

    def units(self):
        return ORDINAL_MAX_YEARS if self.numeric_age else len(AGE_GROUPS) - 1

    def activation(self):
        return "sigmoid"

    def targets(self, years, groups):
        """value (years or group index) -> K-1 binary targets [value >= 1, value >= 2, ...]."""
        values = np.nan_to_num(years) if self.numeric_age else np.maximum(groups, 0)
        return (np.asarray(values, np.float32)[..., None] >= np.arange(1, self.units() + 1)).astype(np.float32)

    def loss(self, age_loss="mae"):
        return keras.losses.BinaryCrossentropy(name="age_loss")  # one BCE per "older than k" output

    def metrics(self):
        return [OrdinalMAE(name="mae")] if self.numeric_age else [OrdinalAccuracy(name="accuracy")]

    def decoding(self):  # counting decode (Niu et al. 2016)
        return {"rule": "count_above", "threshold": 0.5, "unit": "years" if self.numeric_age else "age_group"}

    def meaning(self):
        if self.numeric_age:
            return (f"ordinal: output[k-1] = P(age >= k years), k = 1..{ORDINAL_MAX_YEARS}",
                    "age in years = number of outputs > 0.5")
        return ("ordinal: output[k-1] = P(age group > k-1), k = 1..7",
                "group index = number of outputs > 0.5 (labels.age_groups)")


AGE_HEADS = {cls.name: cls for cls in (RegressionHead, DistributionHead, GroupsHead, OrdinalHead)}


def age_head(name: str, numeric_age: bool = True) -> AgeHead:
    if name not in AGE_HEADS:
        raise EdgefaceError(f"unknown age head {name!r}; choose one of {', '.join(AGE_HEADS)}")
    return AGE_HEADS[name](numeric_age)


def check_distillable(teacher_head: str, student_head: str) -> None:
    """A student may take another head than its teacher only when both speak in years."""
    if teacher_head != student_head and not (AGE_HEADS[teacher_head].needs_years and AGE_HEADS[student_head].needs_years):
        years = " and ".join(n for n, c in AGE_HEADS.items() if c.needs_years)
        raise EdgefaceError(f"cannot distill a {teacher_head} age head into a {student_head} one; a student may "
                            f"switch only between {years} (ages in years)")
