"""Framing stress: the unstressed level is plain evaluation, and re-framing moves the face as asked."""
import numpy as np
import pytest

from edgeface.bundled import bundled_model
from edgeface.eval import evaluate
from edgeface.eval.framing import levels, reframe


def test_reframe_is_exact_at_rest_and_moves_the_content():
    chip = np.zeros((100, 100, 3), np.uint8)
    chip[40:60, 40:60] = 255  # a square in the middle
    np.testing.assert_array_equal(reframe(chip, 1.0, (0.0, 0.0), 0.0), chip)
    smaller = reframe(chip, 2.0, (0.0, 0.0), 0.0)  # zoomed out twice: the square halves
    rows = np.flatnonzero(smaller[:, 50, 0] > 127)
    assert 9 <= len(rows) <= 11 and abs(rows.mean() - 49.5) < 1
    right = reframe(chip, 1.0, (0.1, 0.0), 0.0)  # the crop moves right: the content moves left
    cols = np.flatnonzero(right[50, :, 0] > 127)
    assert abs(cols.mean() - 39.5) < 1


def test_unstressed_level_is_plain_evaluation(csv_manifest, tmp_path):
    """Through the command line (`eval --framing-stress`), whose table and JSON report are the library's."""
    import json

    from click.testing import CliRunner

    from edgeface.cli import main

    model = bundled_model()
    data = f"csv:{csv_manifest}"
    result = CliRunner().invoke(main, ["eval", str(model), "--framing-stress", "--data", data, "--split", "train",
                                       "--output", str(tmp_path / "framing.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "framing.json").read_text())
    assert all(s.name in result.output for s in levels())
    plain = evaluate(model, data, "train")
    none = report["levels"][0]
    assert none["level"] == "none" and "vs_none" not in none
    assert none["gender_accuracy"] == pytest.approx(plain["gender"]["accuracy"])
    assert none["age_mae"] == pytest.approx(plain["age"]["mae"], abs=1e-5)
    assert [r["level"] for r in report["levels"]] == [s.name for s in levels()]
    assert all("gender_accuracy" in r["vs_none"] for r in report["levels"][1:])
