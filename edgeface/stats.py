"""Paired statistics for "is B really better than A on these images?": a paired bootstrap interval for the
difference of gender accuracy and of age MAE (both tasks resampled together, seeded), and McNemar's exact test on
the images where exactly one of the two models is right about gender. On a 2,307-image split the standard error
of an accuracy near 94% is about 0.5 points, so differences below that are noise unless a paired test says not."""
from __future__ import annotations

import math

import numpy as np

from edgeface.runtime.decode import male_decisions

RESAMPLES = 2000
CONFIDENCE = 0.95
# Practical-equivalence margins: a difference smaller than these does not matter, whatever its interval says
# (two exports of one model differ by 5e-6 years of MAE with an interval that excludes zero; issue 32 item 2)
NEGLIGIBLE = {"gender_accuracy": 0.001, "age_mae": 0.01}  # 0.1 points of accuracy, 0.01 years of MAE


def verdict(metric: str, delta: float, low: float, high: float) -> str:
    """real: the paired interval excludes zero and the difference reaches the margin; negligible: the interval
    lies within ±margin, or the difference is below it; noise: anything else (the interval includes zero)."""
    margin = NEGLIGIBLE[metric]
    if -margin <= low and high <= margin or ((low > 0 or high < 0) and abs(delta) < margin):
        return "negligible"
    return "real" if low > 0 or high < 0 else "noise"


def interval_text(delta: float, low: float, high: float, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """'+0.12 [-0.20, +0.45]' (values times `scale`): how every report writes a paired difference."""
    return f"{scale * delta:+.{digits}f}{unit} [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"


def interval_entry_text(entry: dict, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    """interval_text of a paired_deltas entry."""
    return interval_text(entry["delta"], entry["low"], entry["high"], scale, digits, unit)


def per_image(pred: dict, gender: np.ndarray, age: np.ndarray) -> dict:
    """Per-image outcomes of one model: gender right (NaN where the label is unknown or the model has no gender
    output) and absolute age error in years (NaN likewise)."""
    out = {"gender_correct": np.full(len(gender), np.nan), "age_error": np.full(len(gender), np.nan)}
    if "prob_male" in pred:
        known = gender >= 0
        out["gender_correct"][known] = (male_decisions(pred)[known].astype(int) == gender[known])
    if "age_years" in pred:
        known = ~np.isnan(age)
        out["age_error"][known] = np.abs(pred["age_years"][known] - age[known])
    return out


def _name_order(records) -> tuple[list, np.ndarray]:
    import os

    names = [os.path.basename(r.path) for r in records]
    return names, np.argsort(np.array(names), kind="stable")


def images_digest(records) -> str:
    """sha256 of the images' sorted file names: which images an outcome list belongs to, whatever their order or
    folder (the same dataset under another path still matches)."""
    import hashlib

    names, order = _name_order(records)
    return hashlib.sha256("\n".join(names[i] for i in order).encode()).hexdigest()


def contents_digest(records) -> str:
    """sha256 over the images' sorted file names and each file's own sha256: the images themselves, so a report
    scored on other images renamed like these no longer pairs (images_digest covers the names only)."""
    import hashlib

    from edgeface.utils import sha256_file

    names, order = _name_order(records)
    digest = hashlib.sha256()
    for i in order:
        digest.update(names[i].encode() + b"\0" + sha256_file(records[i].path).encode() + b"\n")
    return digest.hexdigest()


def stored_outcomes(records, outcome: dict) -> dict:
    """Per-image outcomes as an eval report keeps them (in file-name order), so `compare` can pair against a model
    that is gone: gender as a string of 1 (right), 0 (wrong), - (unknown); age errors rounded to 0.001 years."""
    _, order = _name_order(records)
    gender = "".join("-" if np.isnan(v) else str(int(v)) for v in outcome["gender_correct"][order])
    age = [None if np.isnan(v) else round(float(v), 3) for v in outcome["age_error"][order]]
    return {"images_sha256": images_digest(records), "contents_sha256": contents_digest(records),
            "gender_correct": gender, "age_error": age}


def outcomes_from_store(stored: dict, records) -> dict:
    """The arrays `per_image` returns, in the order of `records` (the images `stored` was scored on)."""
    _, order = _name_order(records)
    g, a = stored["gender_correct"], stored["age_error"]
    if not isinstance(g, str) or set(g) - set("01-") or len(g) != len(records):
        raise ValueError(f"per_image.gender_correct must be {len(records)} characters of 0, 1 or -")
    if (not isinstance(a, list) or len(a) != len(records)
            or any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0) for v in a)):
        raise ValueError(f"per_image.age_error must be a list of {len(records)} errors in years (>= 0) or nulls")
    gender = np.array([np.nan if c == "-" else float(c) for c in g])
    age = np.array([np.nan if v is None else v for v in a], dtype=float)
    out = {"gender_correct": np.empty_like(gender), "age_error": np.empty_like(age)}
    out["gender_correct"][order], out["age_error"][order] = gender, age
    return out


def summarize(outcome: dict) -> dict:
    """Gender accuracy and age MAE of per-image outcomes; a metric the model or the labels lack is None."""
    def mean(values):
        known = ~np.isnan(values)
        return float(values[known].mean()) if known.any() else None

    return {"gender_accuracy": mean(outcome["gender_correct"]), "age_mae": mean(outcome["age_error"])}


def bootstrap_counts(n: int, resamples: int = RESAMPLES, seed: int = 0, chunk: int = 250):
    """Yields (chunk, n) arrays: how often each image is drawn in each bootstrap resample of n images."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, resamples - start)).astype(np.float32)


def paired_deltas(reference: dict, candidate: dict, resamples: int = RESAMPLES, seed: int = 0,
                  confidence: float = CONFIDENCE) -> dict:
    """Δ = candidate − reference for gender accuracy and age MAE on the same images, each with a paired bootstrap
    interval (the same resamples for both metrics) and, for gender, McNemar's exact p-value. A metric is left out
    when either model lacks it."""
    n = len(reference["gender_correct"])
    out = {}
    parts = {}
    for key, metric in (("gender_correct", "gender_accuracy"), ("age_error", "age_mae")):
        a, b = reference[key], candidate[key]
        known = ~np.isnan(a) & ~np.isnan(b)
        if known.any():
            parts[metric] = (np.where(known, b - a, 0.0).astype(np.float32), known.astype(np.float32))
            out[metric] = {"reference": float(a[known].mean()), "candidate": float(b[known].mean()),
                           "delta": float((b - a)[known].mean()), "n": int(known.sum())}
    if not parts:
        return out
    draws = {metric: [] for metric in parts}
    for counts in bootstrap_counts(n, resamples, seed):
        for metric, (diff, known) in parts.items():
            weight = counts @ known
            draws[metric].append((counts @ diff) / np.maximum(weight, 1))
    tail = (1 - confidence) / 2 * 100
    for metric, values in draws.items():
        low, high = np.percentile(np.concatenate(values), [tail, 100 - tail])
        judged = verdict(metric, out[metric]["delta"], float(low), float(high))
        out[metric].update(low=float(low), high=float(high), verdict=judged, real=judged == "real",
                           resamples=resamples, confidence=confidence, seed=seed)
    if "gender_accuracy" in out:
        a, b = reference["gender_correct"], candidate["gender_correct"]
        known = ~np.isnan(a) & ~np.isnan(b)
        out["gender_accuracy"].update(mcnemar(a[known].astype(bool), b[known].astype(bool)))
    return out


def mcnemar(reference_correct: np.ndarray, candidate_correct: np.ndarray) -> dict:
    """McNemar's exact test: of the images where exactly one model is right, is the split 50/50? Two-sided
    binomial p-value on the discordant pairs."""
    only_reference = int((reference_correct & ~candidate_correct).sum())
    only_candidate = int((~reference_correct & candidate_correct).sum())
    discordant = only_reference + only_candidate
    k = min(only_reference, only_candidate)
    tail = sum(math.comb(discordant, i) for i in range(k + 1)) / 2 ** discordant if discordant else 1.0
    return {"only_reference_right": only_reference, "only_candidate_right": only_candidate,
            "mcnemar_p": float(min(1.0, 2 * tail))}
