"""Output decoding by rule: each model card states, for every output, the rule that turns raw numbers into
answers, and this module is the only implementation of those rules (the age-head registry names the rule its
head needs; apps follow the same rule from the card)."""
from __future__ import annotations

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.labels import age_to_group, group_midpoint

# The gender decision: male when P(male) >= this. Models' cards state it (models.heads.GENDER_DECODING) and
# decode_outputs applies the card's value; peers and ensembles, which have no card, use this one (issue 31).
GENDER_THRESHOLD = 0.5

# rule -> what it does to the output vector of one face
RULES = {
    "probability": "output[0] is P(positive); the answer is positive when it is >= threshold",
    "value": "output[0] is the answer in `unit`",
    "expectation": "answer = sum(values[k] * output[k]) / sum(output), values[k] = first_value + k",
    "argmax": "answer = the index of the largest output, in `unit`",
    "count_above": "answer = how many outputs exceed `threshold` (counting decode of an ordinal head), in `unit`",
}


def expectation(probs: np.ndarray, first_value: float = 0.0) -> np.ndarray:
    """Expected value; renormalized so a quantized softmax that no longer sums to 1 is not biased."""
    probs = np.asarray(probs, dtype=np.float32)
    values = first_value + np.arange(probs.shape[-1], dtype=np.float32)
    return (probs * values).sum(-1) / np.maximum(probs.sum(-1), 1e-6)


def apply_rule(raw, decoding: dict) -> np.ndarray:
    raw = np.asarray(raw, dtype=np.float32)
    rule = decoding.get("rule")
    if rule in ("probability", "value"):
        return raw.reshape(len(raw), -1)[:, 0]
    if rule == "expectation":
        return expectation(raw, decoding.get("first_value", 0.0))
    if rule == "argmax":
        return raw.argmax(-1).astype(np.int32)
    if rule == "count_above":
        return (raw > decoding["threshold"]).sum(-1).astype(np.int32)
    raise EdgefaceError(f"unknown decoding rule {rule!r} (known: {', '.join(RULES)})")


def decode_age(raw, decoding: dict) -> dict:
    """Age output -> years (float; a group's midpoint when the head predicts groups), group index, and whether
    the years are a real estimate (`numeric`)."""
    value = apply_rule(raw, decoding)
    if decoding.get("unit") == "age_group":
        group = value.astype(np.int32)
        return {"years": group_midpoint(group), "group": group, "numeric": False}
    years = value.astype(np.float32)
    return {"years": years, "group": age_to_group(years), "numeric": True}


def decode_outputs(outputs: dict, decodings: dict) -> dict:
    """Raw head outputs {"gender", "age"} -> prob_male, male, age_years, age_group, by each output's decoding rule."""
    decoded = {}
    if "gender" in outputs:
        decoded["prob_male"] = apply_rule(outputs["gender"], decodings["gender"])
        decoded["male"] = decoded["prob_male"] >= decodings["gender"]["threshold"]
    if "age" in outputs:
        age = decode_age(outputs["age"], decodings["age"])
        decoded["age_years"], decoded["age_group"] = age["years"], age["group"]
    return decoded


def male_decisions(pred: dict) -> np.ndarray:
    """Gender decisions (True = male) of decoded predictions: the card's threshold where decode_outputs applied
    it, else GENDER_THRESHOLD on P(male) (a peer, an ensemble's averaged probabilities)."""
    if "male" in pred:
        return np.asarray(pred["male"], bool)
    return np.asarray(pred["prob_male"]) >= GENDER_THRESHOLD
