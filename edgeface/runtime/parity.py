"""Parity: an exported artifact must answer like the Keras model it came from, on real images, within the
tolerances the formats table sets for its precision."""
from __future__ import annotations

import numpy as np

from edgeface.runtime.decode import decode_outputs, male_decisions
from edgeface.runtime.formats import tolerances_for

CONTINUOUS_AGE_RULES = ("value", "expectation")  # decodings whose age in years moves continuously with the outputs


def compare(reference: dict, candidate: dict, decodings: dict, precision: str, true_age=None, overrides=None) -> dict:
    """Checks candidate outputs against the reference (Keras) outputs with the precision's tolerances from the
    formats table; `decodings` are the outputs' decoding rules. Returns {passed, checks, n, tolerances}."""
    tol = tolerances_for(precision, overrides)
    checks = []

    def check(name, value, limit=None, ok=True):
        """limit None: reported for information, never fails."""
        checks.append({"name": name, "value": float(value), "limit": None if limit is None else float(limit),
                       "ok": bool(ok)})

    ref, cand = decode_outputs(reference, decodings), decode_outputs(candidate, decodings)
    if "atol" in tol:
        for key in reference:
            if key == "age" and decodings["age"]["rule"] in CONTINUOUS_AGE_RULES:
                # an age in years is compared in years (age_atol): a distribution head's 101 bin probabilities
                # may each move by more than atol while the age they give moves by 0.06 y (issue 32 item 1)
                diff = np.abs(cand["age_years"] - ref["age_years"]).max()
                check("age_max_abs_diff_years", diff, tol["age_atol"], diff <= tol["age_atol"])
            else:
                diff = np.abs(candidate[key] - reference[key]).max()
                check(f"{key}_max_abs_diff", diff, tol["atol"], diff <= tol["atol"])
    if "prob_male" in ref:
        agreement = np.mean(male_decisions(ref) == male_decisions(cand))
        if "agreement" in tol:
            check("gender_agreement", agreement, tol["agreement"], agreement >= tol["agreement"])
        else:
            check("gender_agreement", agreement)
    if "age_years" in ref:
        mean_diff = np.abs(ref["age_years"] - cand["age_years"]).mean()
        check("age_mean_abs_diff_years", mean_diff)
        if true_age is not None and decodings["age"].get("unit") == "years" and "mae_shift" in tol:
            known = ~np.isnan(true_age)
            shift = (np.abs(cand["age_years"][known] - true_age[known]).mean()
                     - np.abs(ref["age_years"][known] - true_age[known]).mean())
            check("age_mae_shift_years", shift, tol["mae_shift"], shift <= tol["mae_shift"])  # better never fails
    return {"passed": all(c["ok"] for c in checks), "checks": checks, "n": int(len(next(iter(reference.values())))),
            "tolerances": tol}


def describe(result: dict) -> str:
    """Every check with its value and limit, e.g. "gender_agreement 0.9961 (>= 0.95), age_mae_shift_years -0.012
    (<= 0.5)": the numbers behind "parity ok"."""
    def one(c):
        if c["limit"] is None:
            return f"{c['name']} {c['value']:.4g}"
        sign = ">=" if c["name"] == "gender_agreement" else "<="
        return f"{c['name']} {c['value']:.4g} ({sign} {c['limit']:.4g}){'' if c['ok'] else ' FAILED'}"

    return ", ".join(one(c) for c in result["checks"]) + f" on {result['n']} images"


def describe_failure(result: dict) -> str:
    bad = [c for c in result["checks"] if not c["ok"]]
    return ", ".join(f"{c['name']} {c['value']:.4g} (limit {c['limit']:.4g})" for c in bad)
