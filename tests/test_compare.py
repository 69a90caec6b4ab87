"""Paired comparison: McNemar's exact test against scipy, the paired bootstrap against the normal approximation,
and `edgeface compare` on the bundled TFLite model and its ONNX twin."""
import json

import numpy as np
import pytest
from PIL import Image
from click.testing import CliRunner

from conftest import SHARED, require_shared
from edgeface.bundled import bundled_model
from edgeface.cli import main
from edgeface.errors import EdgefaceError
from edgeface.stats import mcnemar, paired_deltas, per_image


@pytest.mark.parametrize("only_a,only_b", [(0, 10), (7, 3), (25, 40), (0, 0)])
def test_mcnemar_is_the_exact_binomial_test(only_a, only_b):
    scipy_stats = pytest.importorskip("scipy.stats")
    a = np.array([True] * only_a + [False] * only_b + [True] * 50)
    b = np.array([False] * only_a + [True] * only_b + [True] * 50)
    result = mcnemar(a, b)
    assert (result["only_reference_right"], result["only_candidate_right"]) == (only_a, only_b)
    expected = 1.0 if only_a + only_b == 0 else scipy_stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result["mcnemar_p"] == pytest.approx(expected, rel=1e-9)


def outcomes(correct, errors):
    return {"gender_correct": np.asarray(correct, float), "age_error": np.asarray(errors, float)}


def test_identical_models_differ_by_exactly_nothing():
    rng = np.random.default_rng(0)
    a = outcomes(rng.random(500) < 0.9, rng.exponential(5, 500))
    d = paired_deltas(a, a, resamples=1000)
    for metric in ("gender_accuracy", "age_mae"):
        assert d[metric]["delta"] == d[metric]["low"] == d[metric]["high"] == 0 and not d[metric]["real"]
    assert d["gender_accuracy"]["mcnemar_p"] == 1.0


def test_bootstrap_interval_matches_the_paired_normal_approximation():
    rng = np.random.default_rng(1)
    n = 2000
    a_correct = rng.random(n) < 0.90
    b_correct = a_correct.copy()
    b_correct[rng.choice(np.flatnonzero(~a_correct), 60, replace=False)] = True  # B fixes 60 of A's errors
    b_correct[rng.choice(np.flatnonzero(a_correct), 20, replace=False)] = False  # and breaks 20 others
    a_err = rng.exponential(5, n)
    b_err = a_err + rng.normal(0.0, 1.0, n)  # no real age difference
    d = paired_deltas(outcomes(a_correct, a_err), outcomes(b_correct, b_err), resamples=4000, seed=3)
    for metric, diff in (("gender_accuracy", b_correct.astype(float) - a_correct), ("age_mae", b_err - a_err)):
        se = diff.std(ddof=1) / np.sqrt(n)
        assert d[metric]["delta"] == pytest.approx(diff.mean())
        assert d[metric]["low"] == pytest.approx(diff.mean() - 1.96 * se, abs=0.15 * se)
        assert d[metric]["high"] == pytest.approx(diff.mean() + 1.96 * se, abs=0.15 * se)
    assert d["gender_accuracy"]["real"] and d["gender_accuracy"]["delta"] == pytest.approx(40 / n)
    assert d["gender_accuracy"]["mcnemar_p"] < 1e-4
    assert not d["age_mae"]["real"]
    again = paired_deltas(outcomes(a_correct, a_err), outcomes(b_correct, b_err), resamples=4000, seed=3)
    assert again == d  # seeded


def test_unknown_labels_and_missing_heads_are_left_out():
    pred = {"prob_male": np.array([0.9, 0.2, 0.7])}  # a gender-only model
    out = per_image(pred, np.array([1, -1, 0]), np.array([30.0, np.nan, 12.0]))
    assert out["gender_correct"][0] == 1 and np.isnan(out["gender_correct"][1]) and out["gender_correct"][2] == 0
    assert np.isnan(out["age_error"]).all()
    full = per_image({**pred, "age_years": np.array([31.0, 5.0, 10.0])}, np.array([1, -1, 0]),
                     np.array([30.0, np.nan, 12.0]))
    d = paired_deltas(full, out, resamples=1000)
    assert "age_mae" not in d and d["gender_accuracy"]["n"] == 2


def test_compare_cli_scores_every_model_on_the_same_images(csv_manifest, tmp_path):
    tflite = bundled_model()
    onnx = next(tflite.parent.glob("*.onnx"))
    out = tmp_path / "cmp.json"
    result = CliRunner().invoke(main, ["compare", str(tflite), str(onnx), "--data", f"csv:{csv_manifest}",
                                       "--split", "train", "--resamples", "1000", "--output", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["reference"] == str(tflite) and [m["format"] for m in report["models"]] == ["tflite", "onnx"]
    vs = report["models"][1]["vs_reference"]
    assert {"gender_accuracy", "age_mae"} <= set(vs)
    assert vs["gender_accuracy"]["n"] == report["n"] and vs["gender_accuracy"]["low"] <= vs["gender_accuracy"]["high"]
    assert "(reference)" in result.output and "Δ gender" in result.output and "McNemar p" in result.output
    single = CliRunner().invoke(main, ["compare", str(tflite), "--data", f"csv:{csv_manifest}"])
    assert single.exit_code != 0 and "at least two models" in single.output
    by = CliRunner().invoke(main, ["compare", str(tflite), str(onnx), "--data", f"csv:{csv_manifest}", "--split",
                                   "train", "--resamples", "1000", "--by", "age_band", "--output", str(out)])
    assert by.exit_code == 0, by.output
    groups = json.loads(out.read_text())["models"][1]["by"]  # per age band, paired within the band
    assert sum(g["n"] for g in groups.values()) == report["n"] and all("vs_reference" in g for g in groups.values())
    bands = list(groups)
    assert bands == sorted(bands, key=lambda b: int(b.split("-")[0]))  # in age order


def test_an_eval_report_stands_for_its_model_on_the_same_images(csv_manifest, tmp_path):
    """A report keeps per-image outcomes: paired against the live model it gives the same deltas as scoring it
    (so a model whose files are gone can still be compared), and refuses other images."""
    from edgeface.eval import evaluate, write_report

    tflite = bundled_model()
    onnx = next(tflite.parent.glob("*.onnx"))
    data = ["--data", f"csv:{csv_manifest}", "--split", "train", "--resamples", "1000"]
    saved = write_report(evaluate(onnx, f"csv:{csv_manifest}", "train"), str(tmp_path / "onnx.json"))
    stored = json.loads(saved.read_text())["per_image"]
    assert len(stored["gender_correct"]) == len(stored["age_error"]) == json.loads(saved.read_text())["n"]
    live, kept = tmp_path / "live.json", tmp_path / "kept.json"
    for model, out in ((onnx, live), (saved, kept)):
        result = CliRunner().invoke(main, ["compare", str(tflite), str(model), *data, "--output", str(out)])
        assert result.exit_code == 0, result.output
    a, b = (json.loads(p.read_text())["models"][1] for p in (live, kept))
    for task in ("gender_accuracy", "age_mae"):
        assert b["vs_reference"][task]["delta"] == pytest.approx(a["vs_reference"][task]["delta"], abs=2e-3)
        assert b[task] == pytest.approx(a[task], abs=1e-3)  # age errors are stored to 0.001 years
    assert b["format"] == "onnx" and b["precision"] == "fp32"
    other = CliRunner().invoke(main, ["compare", str(tflite), str(saved), "--data", f"csv:{csv_manifest}",
                                      "--split", "train", "--limit", "3"])
    assert other.exit_code != 0 and "scored on other images" in other.output
    report = json.loads(saved.read_text())
    n = report["n"]
    for field, bad, message in (("gender_correct", "x" * n, "gender_correct must be"),
                                ("gender_correct", "1", "gender_correct must be"),
                                ("age_error", ["3"] * n, "age_error must be"),
                                ("age_error", {"a": 1}, "age_error must be")):
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps({**report, "per_image": {**report["per_image"], field: bad}}))
        result = CliRunner().invoke(main, ["compare", str(tflite), str(forged), *data])
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert result.exit_code == 2 and "Traceback" not in result.output and len(errors) == 1, result.output
        assert message in errors[0] and "forged.json" in errors[0]
    first = sorted(csv_manifest.parent.rglob("*.png")) or sorted(csv_manifest.parent.rglob("*.jpg"))
    Image.open(first[0]).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(first[0])  # same name, other image
    renamed = CliRunner().invoke(main, ["compare", str(tflite), str(saved), *data])
    assert renamed.exit_code != 0 and "names or contents differ" in renamed.output
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"split": "train", "n": 3}))
    result = CliRunner().invoke(main, ["compare", str(tflite), str(old), *data])
    assert result.exit_code != 0 and "no per-image outcomes" in result.output


def test_an_ensemble_is_scored_as_the_average_of_its_members(csv_manifest):
    """ensemble:A,B averages the members' probability and years (what a distillation from A and B learns), the
    same through the three steps the latency probe times (members of one size) as through files; it is paired like
    any model; one member is refused."""
    from edgeface.any_model import open_model
    from edgeface.benchmark.probe import measure
    from edgeface.data import load_data
    from edgeface.data.images import load_images
    from edgeface.ensemble import Ensemble
    from edgeface.eval.compare import compare
    from edgeface.predictor import load

    tflite = bundled_model()
    onnx = next(tflite.parent.glob("*.onnx"))
    records = load_data(f"csv:{csv_manifest}")["train"]
    each = [load(m).predict_records(records) for m in (tflite, onnx)]
    ensemble = open_model(f"ensemble:{tflite},{onnx}")
    assert isinstance(ensemble, Ensemble) and ensemble.input_size == 128
    both = ensemble.predict_records(records)
    steps = ensemble.predict(load_images([r.path for r in records], ensemble.input_size), batch_size=2)
    for key in ("prob_male", "age_years"):
        np.testing.assert_allclose(both[key], (each[0][key] + each[1][key]) / 2, rtol=1e-6)
        np.testing.assert_array_equal(steps[key], both[key])
    assert measure(ensemble, load_images([records[0].path], 128), warmup=1, runs=2)["runs"] == 2
    report = compare([tflite, f"ensemble:{tflite},{onnx}"], f"csv:{csv_manifest}", "train", resamples=1000)
    row = report["models"][1]
    assert row["format"] == "ensemble" and row["precision"] == "int8+fp32" and "vs_reference" in row
    with pytest.raises(EdgefaceError, match="two or more models"):
        Ensemble(f"ensemble:{tflite}")


def test_a_difference_below_the_margin_is_negligible_not_real():
    """Two exports of one model: MAE differs by 5e-6 years on every image, an interval that excludes zero, yet no
    difference that matters (issue 32 item 2); a big one is still real, one inside the interval is noise."""
    from edgeface.stats import verdict

    n = 500
    a = outcomes(np.ones(n), np.full(n, 4.0))
    tiny = paired_deltas(a, outcomes(np.ones(n), np.full(n, 4.0 + 5e-6)))["age_mae"]
    assert tiny["low"] > 0 and tiny["verdict"] == "negligible" and not tiny["real"]
    assert verdict("age_mae", 0.5, 0.3, 0.7) == "real" and verdict("age_mae", 0.05, -0.2, 0.3) == "noise"
    assert verdict("gender_accuracy", 0.0005, -0.0008, 0.0009) == "negligible"


def test_a_recorded_split_is_matched_by_real_path_not_by_spelling(tmp_path, monkeypatch):
    """A run that recorded /abs/data/x.jpg holds ../data/x.jpg of the same file: no false "not the split the run
    recorded" warning because the paths were spelled differently."""
    from edgeface.run import Run

    (tmp_path / "data").mkdir()
    images = [tmp_path / "data" / f"{i}.jpg" for i in range(3)]
    for image in images:
        image.write_bytes(b"x")
    (tmp_path / "run" / "splits").mkdir(parents=True)
    (tmp_path / "run" / "splits" / "val.txt").write_text("\n".join(str(p) for p in images) + "\n")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run = Run(tmp_path / "run")
    assert run.records_all("val", [f"../data/{i}.jpg" for i in range(3)])
    assert not run.records_all("val", ["../data/0.jpg", "../elsewhere.jpg"])


def test_a_peer_folder_is_scored_like_any_model(csv_manifest, tmp_path, monkeypatch):
    """Another project's model (a peer folder) opens wherever ours do: eval scores what its predictions say (its
    report goes to the working folder, never into the peer's), and compare pairs it with the bundled model (one
    model-running abstraction, issue 31)."""
    from edgeface.any_model import open_model
    from edgeface.data import load_data
    from edgeface.data.records import label_arrays
    from edgeface.eval import evaluate, write_report
    from edgeface.eval.compare import compare

    folder = require_shared(SHARED / "peers" / "insightface_genderage_2018")
    data = f"csv:{csv_manifest}"
    records = load_data(data)["train"]
    gender, age = label_arrays(records)
    pred = open_model(folder).predict_records(records)
    report = evaluate(folder, data, "train")
    assert report["format"] == "onnx" and report["input_size"] == 200 and "backbone" not in report
    assert report["gender"]["accuracy"] == float(((pred["prob_male"] >= 0.5) == (gender == 1)).mean())
    assert report["age"]["mae"] == pytest.approx(float(np.abs(pred["age_years"] - age).mean()), rel=1e-6)
    monkeypatch.chdir(tmp_path)
    assert write_report(report) == tmp_path / f"{folder.name}.eval-csv-train.json"
    row = compare([bundled_model(), folder], data, "train", resamples=200)["models"][1]
    assert row["gender_accuracy"] == report["gender"]["accuracy"] and "vs_reference" in row
