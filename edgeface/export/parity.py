"""Parity: an exported artifact must answer like the Keras model it came from, on real images."""
from __future__ import annotations

import numpy as np

from edgeface.errors import EdgefaceError

# Float formats: every probability output within `atol` of Keras, a regression age within `age_atol` years.
# Quantized formats: gender decisions agree, and age MAE against the labels moves by at most mae_shift years.
DEFAULT_TOLERANCES = {
    "fp32": {"atol": 1e-3, "age_atol": 0.05},
    "fp16": {"atol": 2e-2, "age_atol": 1.0},
    "dynamic": {"agreement": 0.95, "mae_shift": 0.5},
    "int8": {"agreement": 0.95, "mae_shift": 0.5},
}
TOLERANCE_KEYS = ("atol", "age_atol", "agreement", "mae_shift")


def tolerances_for(precision: str, overrides: dict | None = None) -> dict:
    base = dict(DEFAULT_TOLERANCES[precision])
    for key, value in (overrides or {}).items():
        if key not in TOLERANCE_KEYS:
            raise EdgefaceError(f"unknown tolerance {key!r} (use {', '.join(TOLERANCE_KEYS)})")
        base[key] = float(value)
    return base


def compare(reference: dict, candidate: dict, spec, precision: str, true_age=None, overrides=None) -> dict:
    """Checks candidate outputs against the Keras reference; returns {passed, checks, n}."""
    from edgeface.eval import decode_outputs

    tol = tolerances_for(precision, overrides)
    checks = []

    def check(name, value, limit=None, ok=True):
        """limit None: reported for information, never fails."""
        checks.append({"name": name, "value": float(value), "limit": None if limit is None else float(limit),
                       "ok": bool(ok)})

    if "atol" in tol:
        for key in reference:
            diff = np.abs(candidate[key] - reference[key]).max()
            limit = tol["age_atol"] if key == "age" and spec.age_head == "regression" else tol["atol"]
            check(f"{key}_max_abs_diff", diff, limit, diff <= limit)
    ref, cand = decode_outputs(reference, spec), decode_outputs(candidate, spec)
    if "prob_male" in ref:
        agreement = np.mean((ref["prob_male"] >= 0.5) == (cand["prob_male"] >= 0.5))
        if "agreement" in tol:
            check("gender_agreement", agreement, tol["agreement"], agreement >= tol["agreement"])
        else:
            check("gender_agreement", agreement)
    if "age_years" in ref:
        mean_diff = np.abs(ref["age_years"] - cand["age_years"]).mean()
        check("age_mean_abs_diff_years", mean_diff)
        if true_age is not None and spec.numeric_age and "mae_shift" in tol:
            known = ~np.isnan(true_age)
            shift = (np.abs(cand["age_years"][known] - true_age[known]).mean()
                     - np.abs(ref["age_years"][known] - true_age[known]).mean())
            check("age_mae_shift_years", shift, tol["mae_shift"], abs(shift) <= tol["mae_shift"])
    return {"passed": all(c["ok"] for c in checks), "checks": checks, "n": int(len(next(iter(reference.values())))),
            "tolerances": tol}


def describe_failure(result: dict) -> str:
    bad = [c for c in result["checks"] if not c["ok"]]
    return ", ".join(f"{c['name']} {c['value']:.4g} (limit {c['limit']:.4g})" for c in bad)
