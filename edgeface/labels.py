"""Label vocabularies shared by data, models, runtimes and cards: one owner for genders, age groups and races."""
from __future__ import annotations

import numpy as np

MALE, FEMALE = 1, 0
GENDER_LABELS = ("female", "male")  # index = gender value; the gender head outputs P(male)
GENDER_MEANING = "probability that the face is male (index 0 of this output)"
RACE_LABELS = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's race codes

# The 8 Adience age groups (inclusive years). Numeric ages map to the group whose span (widened to the
# midpoints of the gaps between groups) contains them.
AGE_GROUPS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
AGE_GROUP_LABELS = tuple(f"{lo}-{hi}" for lo, hi in AGE_GROUPS)
_GROUP_UPPER_EDGES = np.array([3, 7, 14, 23, 36, 46, 57])  # age > edge[k] means group > k


AGE_GROUP_RULE = {
    "rule": "group index = how many upper_edges are below the age in years (age <= 3: 0-2, 3 < age <= 7: 4-6, ..., "
            "age > 57: 60-100); ages are continuous, so every age falls in exactly one group; a label's gaps "
            "(13-14, 21-24, ...) belong to the group below or above them by this rule",
    "upper_edges": [int(e) for e in _GROUP_UPPER_EDGES],
}


def age_to_group(age) -> np.ndarray:
    return np.searchsorted(_GROUP_UPPER_EDGES, np.asarray(age), side="left").astype(np.int32)


def group_midpoint(group) -> np.ndarray:
    """Years used when a group prediction must be scored with MAE."""
    mids = np.array([(lo + hi) / 2 for lo, hi in AGE_GROUPS], dtype=np.float32)
    mids[-1] = 65.0
    return mids[np.asarray(group)]


def age_band_label(group: int) -> str:
    return AGE_GROUP_LABELS[int(group)]
