"""Task heads and how their outputs decode: gender is P(male); age is years, an Adience group, or ordinal."""
from __future__ import annotations

import numpy as np
import tf_keras as keras

from edgeface.errors import EdgefaceError

# The 8 Adience age groups (inclusive years). Numeric ages map to the group whose span (widened to the
# midpoints of the gaps between groups) contains them.
AGE_GROUPS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
AGE_GROUP_LABELS = tuple(f"{lo}-{hi}" for lo, hi in AGE_GROUPS)
_GROUP_UPPER_EDGES = np.array([3, 7, 14, 23, 36, 46, 57])  # age > edge[k] means group > k
AGE_HEADS = ("regression", "distribution", "groups", "ordinal")
NUMERIC_AGE_HEADS = ("regression", "distribution")  # heads that need ages in years
ORDINAL_MAX_YEARS = 100  # ordinal over years: outputs k = 1..100 answer "age >= k"
# distribution head (DLDL-v2, Gao et al. 2018): softmax over ages 0..100 in years, trained towards a Gaussian
# of this width around the true age plus L1 on its expectation; the deployed age is that expectation.
DISTRIBUTION_YEARS = 101
DISTRIBUTION_SIGMA = 2.0


def distribution_expectation(probs: np.ndarray) -> np.ndarray:
    """Expected age; renormalized so a quantized softmax that no longer sums to 1 is not biased."""
    probs = np.asarray(probs, dtype=np.float32)
    return (probs * np.arange(DISTRIBUTION_YEARS, dtype=np.float32)).sum(-1) / np.maximum(probs.sum(-1), 1e-6)


def age_to_group(age) -> np.ndarray:
    return np.searchsorted(_GROUP_UPPER_EDGES, np.asarray(age), side="left").astype(np.int32)


def group_midpoint(group) -> np.ndarray:
    """Years used when a group prediction must be scored with MAE."""
    mids = np.array([(lo + hi) / 2 for lo, hi in AGE_GROUPS], dtype=np.float32)
    mids[-1] = 65.0
    return mids[np.asarray(group)]


def ordinal_units(age_head: str, numeric_age: bool) -> int:
    """K-1 'older than' outputs: per year for numeric ages, per group boundary for group labels."""
    return ORDINAL_MAX_YEARS if numeric_age else len(AGE_GROUPS) - 1


def ordinal_targets(values, units: int) -> np.ndarray:
    """value (years or group index) -> K-1 binary targets [value >= 1, value >= 2, ...]."""
    return (np.asarray(values, dtype=np.float32)[..., None] >= np.arange(1, units + 1)).astype(np.float32)


def decode_age(raw: np.ndarray, age_head: str, numeric_age: bool) -> dict:
    """Turns the age output into years (when the head can give them) and an age group index."""
    raw = np.asarray(raw, dtype=np.float32)
    if age_head == "regression":
        years = raw.reshape(-1)
        return {"years": years, "group": age_to_group(years)}
    if age_head == "distribution":
        years = distribution_expectation(raw)
        return {"years": years, "group": age_to_group(years)}
    if age_head == "groups":
        group = raw.argmax(-1).astype(np.int32)
        return {"years": group_midpoint(group), "group": group, "numeric": False}
    if age_head == "ordinal":
        count = (raw > 0.5).sum(-1).astype(np.int32)  # counting decode (Niu et al. 2016)
        if numeric_age:
            return {"years": count.astype(np.float32), "group": age_to_group(count)}
        return {"years": group_midpoint(count), "group": count, "numeric": False}
    raise EdgefaceError(f"unknown age head {age_head!r}; choose one of {', '.join(AGE_HEADS)}")


def build_heads(features, tasks, age_head, numeric_age, dropout, head_units, age_init):
    layers = keras.layers
    x = layers.Dropout(dropout, name="head_dropout")(features) if dropout else features
    outputs = {}

    def trunk(task):
        if not head_units:
            return x
        return layers.Dense(head_units, activation="relu", name=f"{task}_hidden")(x)

    if "gender" in tasks:
        outputs["gender"] = layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(trunk("gender"))
    if "age" in tasks:
        if age_head == "regression":
            out = layers.Dense(1, name="age", dtype="float32",
                               bias_initializer=keras.initializers.Constant(age_init))
        elif age_head == "distribution":
            out = layers.Dense(DISTRIBUTION_YEARS, activation="softmax", name="age", dtype="float32")
        elif age_head == "groups":
            out = layers.Dense(len(AGE_GROUPS), activation="softmax", name="age", dtype="float32")
        elif age_head == "ordinal":
            out = layers.Dense(ordinal_units(age_head, numeric_age), activation="sigmoid", name="age",
                               dtype="float32")
        else:
            raise EdgefaceError(f"unknown age head {age_head!r}; choose one of {', '.join(AGE_HEADS)}")
        outputs["age"] = out(trunk("age"))
    return outputs
