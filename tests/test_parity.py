"""Parity checks measure what the card promises, in the card's units (issue 32 item 1)."""
import numpy as np
import pytest

from edgeface.models import ModelSpec
from edgeface.runtime.parity import compare


def _distribution_outputs(rng, n=64):
    logits = rng.normal(scale=0.3, size=(n, 101))
    logits[:, 38:44] += 3  # most mass near 40 y, as a trained head puts it
    bins = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return {"gender": rng.uniform(size=(n, 1)).astype(np.float32), "age": bins.astype(np.float32)}


def test_an_fp16_distribution_head_is_judged_by_the_age_in_years():
    """Bin probabilities that each move by up to 0.03 (over fp16's 0.02 atol) while the age moves by hundredths of a
    year pass; an age that moves by more than age_atol (1 year) fails, named in years."""
    rng = np.random.default_rng(0)
    spec = ModelSpec(backbone="compact_cnn", input_size=32)  # distribution age head
    ref = _distribution_outputs(rng)
    moved = ref["age"].copy()
    moved[:, 40] += 0.03  # mass to 40 y and away from 41 y: the expectation moves by 0.03 y
    moved[:, 41] -= 0.03
    assert moved.min() >= 0
    result = compare(ref, {"gender": ref["gender"], "age": moved}, spec.decodings(), "fp16")
    check = {c["name"]: c for c in result["checks"]}
    assert result["passed"] and check["age_max_abs_diff_years"]["value"] < 0.1
    assert check["age_max_abs_diff_years"]["limit"] == 1.0 and "age_max_abs_diff" not in check
    shifted = ref["age"].copy()
    shifted[:, 60] += 0.5  # ~+10 years for every image
    result = compare(ref, {"gender": ref["gender"], "age": shifted / shifted.sum(1, keepdims=True)},
                     spec.decodings(), "fp16")
    assert not result["passed"] and [c["name"] for c in result["checks"] if not c["ok"]] == ["age_max_abs_diff_years"]


@pytest.mark.parametrize("offset,passes", [(-3.0, True), (0.3, True), (3.0, False)])
def test_an_int8_age_mae_fails_only_when_it_gets_worse(offset, passes):
    """mae_shift is one-sided: a quantized model whose age MAE drops is not a failed export."""
    spec = ModelSpec(backbone="compact_cnn", input_size=32, age_head="regression")
    n = 50
    true_age = np.full(n, 30.0)
    ref = {"gender": np.full((n, 1), 0.9, np.float32), "age": np.full((n, 1), 35.0, np.float32)}  # MAE 5
    cand = {"gender": ref["gender"], "age": ref["age"] + offset}
    result = compare(ref, cand, spec.decodings(), "int8", true_age)
    check = {c["name"]: c for c in result["checks"]}["age_mae_shift_years"]
    assert check["value"] == pytest.approx(offset if offset > -5 else -5, abs=1e-5) and result["passed"] is passes
