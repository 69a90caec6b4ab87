"""The age-head registry: one class per kind of age output. Each builds its layer, encodes training targets,
gives its loss, metrics and decoding rule, writes its model-card output, and converts to and from years for
distillation. Adding a fifth head means adding one class here (and its tensor maths in age_losses.py).

This module does not import TensorFlow (the TensorFlow parts live in age_losses.py and load on first use), so
reading a model card and running a TFLite/ONNX artifact stays TensorFlow-free."""
from __future__ import annotations

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUPS
from edgeface.runtime.decode import decode_age

# distribution head (DLDL-v2, Gao et al. 2018): softmax over ages 0..100 in years, trained towards a Gaussian
# of this width around the true age plus L1 on its expectation; the deployed age is that expectation.
DISTRIBUTION_YEARS = 101
DISTRIBUTION_SIGMA = 2.0
ORDINAL_MAX_YEARS = 100  # ordinal over years: outputs k = 1..100 answer "age >= k"


def _tf():
    """The TensorFlow side (losses, metrics, tensor maths), imported when training needs it."""
    import edgeface.models.age_losses

    return edgeface.models.age_losses


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
        return _tf().keras.layers.Dense(self.units(), activation=self.activation(), name="age", dtype="float32")

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
        return _tf().sigmoid_soft_loss(teacher, student, temperature)


class RegressionHead(AgeHead):
    name = "regression"
    needs_years = True
    description = "a single output: the age in years"

    def units(self):
        return 1

    def layer(self, age_init: float = 33.0):
        keras = _tf().keras
        return keras.layers.Dense(1, name="age", dtype="float32", bias_initializer=keras.initializers.Constant(age_init))

    def targets(self, years, groups):
        return np.nan_to_num(years).reshape(-1, 1)

    def loss(self, age_loss="mae"):
        keras = _tf().keras
        return {"mae": keras.losses.MeanAbsoluteError, "huber": lambda name: keras.losses.Huber(3.0, name=name),
                "mse": keras.losses.MeanSquaredError}[age_loss](name="age_loss")

    def metrics(self):
        return [_tf().keras.metrics.MeanAbsoluteError(name="mae")]

    def decoding(self):
        return {"rule": "value", "unit": "years"}

    def meaning(self):
        return "estimated age in years", "age = output[0]"

    def years(self, output):
        return output

    def from_years(self, years):
        return years

    def soft_loss(self, teacher, student, temperature):
        return _tf().mean_absolute(teacher, student)


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
        return _tf().AgeDistributionLoss(DISTRIBUTION_SIGMA)

    def metrics(self):
        return [_tf().ExpectedAgeMAE(name="mae")]

    def decoding(self):
        return {"rule": "expectation", "unit": "years", "first_value": 0}

    def meaning(self):
        return (f"probability of each age in years: output[k] = P(age = k), k = 0..{DISTRIBUTION_YEARS - 1}",
                "age in years = sum(k * output[k]) / sum(output)")

    def years(self, output):
        return _tf().expected_age(output)

    def from_years(self, years):
        return _tf().gaussian_age_target(years, DISTRIBUTION_SIGMA, DISTRIBUTION_YEARS)

    def soft_loss(self, teacher, student, temperature):
        return _tf().softmax_soft_loss(teacher, student, temperature)


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
        return _tf().keras.losses.CategoricalCrossentropy(name="age_loss")

    def metrics(self):
        return [_tf().keras.metrics.CategoricalAccuracy(name="accuracy")]

    def decoding(self):
        return {"rule": "argmax", "unit": "age_group"}

    def meaning(self):
        return ("probabilities of the 8 Adience age groups (labels.age_groups)", "group = argmax(output)")

    def soft_loss(self, teacher, student, temperature):
        return _tf().softmax_soft_loss(teacher, student, temperature)


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
        return _tf().keras.losses.BinaryCrossentropy(name="age_loss")  # one BCE per "older than k" output

    def metrics(self):
        return [_tf().OrdinalMAE(name="mae")] if self.numeric_age else [_tf().OrdinalAccuracy(name="accuracy")]

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
