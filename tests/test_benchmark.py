import csv
import json
import os
import shutil
import stat

import numpy as np
import pytest
from PIL import Image
from click.testing import CliRunner

from conftest import SHARED, require_shared
from edgeface.benchmark import Row, Settings, benchmark, pick_best
from edgeface.benchmark.adb import parse_benchmark_model
from edgeface.cli import main
from edgeface.errors import EdgefaceError
from edgeface.export import export
from edgeface.run.train_config import TrainConfig
from edgeface.train.trainer import train

pytestmark = pytest.mark.slow  # trains a tiny model, exports it and times every row in its own process

BENCHMARK_MODEL_LOG = """\
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/edgeface/tiny-tflite-fp32.tflite]
INFO: Loaded model /data/local/tmp/edgeface/tiny-tflite-fp32.tflite
INFO: count=12 first=2211 curr=1602 min=1544 max=2211 avg=1650.2 std=170 p5=1544 median=1601 p95=2211
INFO: count=50 first=1580 curr=1530 min=1490 max=1700 avg=1540.5 std=40 p5=1495 median=1533 p95=1650
INFO: Inference timings in us: Init: 5120, First inference: 2211, Warmup (avg): 1650.2, Inference (avg): 1540.5
INFO: Peak memory footprint (MB): init=2.5 overall=7.25
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    run = train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", epochs=1,
                            batch_size=16, runs_dir=str(root), name="tiny", verbose=0)).path
    results = export(run, ["tflite", "onnx"], ["fp32"], root / "export")
    return run, {r.format: r.path for r in results}


def settings(**kw):
    return Settings(**{"data": "synthetic:120", "runs": 5, "warmup": 1, "limit": 24, "rounds": 1, **kw})


def test_two_artifacts_a_broken_and_a_corrupted_one(artifacts, tmp_path):
    _, paths = artifacts
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3 but not really a model")
    shutil.copy(paths["tflite"].with_suffix(".json"), tmp_path / "broken.json")
    corrupted = tmp_path / "corrupted.tflite"  # weights overwritten after export: still runs, answers wrongly
    data = bytearray(paths["tflite"].read_bytes())
    data[len(data) // 3: len(data) // 3 + 2048] = bytes(2048)
    corrupted.write_bytes(bytes(data))
    shutil.copy(paths["tflite"].with_suffix(".json"), tmp_path / "corrupted.json")
    payload = benchmark([paths["tflite"], paths["onnx"], broken, corrupted], settings(rounds=2), tmp_path / "out")
    rows = payload["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok", "validation failed", "validation failed"]
    assert "broken.tflite" in rows[2]["error"]
    assert "sha256" in rows[3]["error"] and rows[3]["gender_acc"] is None  # refused before it was scored
    for r in rows[:2]:
        assert 0.3 <= r["gender_acc"] <= 1 and 0 < r["age_mae"] < 60
        assert 0 < r["latency_p50_ms"] <= r["latency_p90_ms"] and r["latency_mean_ms"] > 0
        assert r["throughput_ips"] > 0 and r["peak_memory_mb"] > 10 and r["size_kb"] > 10
        assert 0 < r["gzip_kb"] <= r["size_kb"] * 1.01 and r["threads"] == 1 and r["runs"] == 5
        assert r["latency_drift"] >= 0  # two interleaved rounds (3 + 2 runs) make one row's latency
    assert rows[0]["gender_acc"] == rows[1]["gender_acc"]  # same weights, same images, same decisions
    assert rows[0]["latency_ratio"] == 1.0 and rows[0]["format"] == "tflite" and rows[1]["format"] == "onnx"
    assert rows[0]["gender_acc_delta"] is None  # the reference row
    assert rows[1]["gender_acc_delta"] == pytest.approx(rows[1]["gender_acc"] - rows[0]["gender_acc"])
    assert rows[1]["gender_acc_delta_low"] <= rows[1]["gender_acc_delta"] <= rows[1]["gender_acc_delta_high"]
    assert rows[1]["age_mae_delta"] == pytest.approx(rows[1]["age_mae"] - rows[0]["age_mae"], abs=1e-5)
    assert rows[1]["gender_mcnemar_p"] == 1.0 and rows[3]["age_mae_delta"] is None
    assert rows[0]["accelerators"] == "GPU: all ops"  # the cards carry the checks
    assert rows[1]["accelerators"].startswith("NNAPI ") and "CoreML " in rows[1]["accelerators"]
    assert (tmp_path / "out" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    with (tmp_path / "out" / "benchmark.csv").open() as f:  # the files say what the payload says
        table = list(csv.DictReader(f))
    assert [r["status"] for r in table] == [r["status"] for r in rows]
    assert [r["format"] for r in table] == ["tflite", "onnx", "?", "?"]
    assert float(table[0]["gender_acc"]) == pytest.approx(rows[0]["gender_acc"]) and table[3]["gender_acc"] == ""
    md = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert len(md) == 2 + len(rows) and md[2].startswith("| tiny | tflite | fp32 | ok |")
    assert "Δ acc vs ref, pt [95% CI]" in md[0] and "+0.00 [+0.00, +0.00] negligible |" in md[3]  # not "real"
    assert f"{100 * rows[1]['gender_acc']:.2f}" in md[3] and "validation failed" in md[5]
    assert json.loads((tmp_path / "out" / "benchmark.json").read_text())["rows"] == rows


def test_run_folder_expands_to_its_formats_and_failed_exports_are_rows(artifacts, tmp_path):
    run, _ = artifacts
    payload = benchmark([run], settings(formats=("tflite",), precisions=("fp16", "int8")), tmp_path)
    rows = {(r["format"], r["precision"]): r for r in payload["rows"]}
    assert rows[("keras", "fp32")]["status"] == "ok" and rows[("tflite", "fp16")]["status"] == "ok"
    assert rows[("tflite", "int8")]["status"] == "export failed"
    assert "needs --calibration" in rows[("tflite", "int8")]["error"]
    assert rows[("tflite", "fp16")]["latency_ratio"] == 1.0  # the first compiled-runtime row, not Keras
    fp16 = rows[("tflite", "fp16")]  # cold start and the memory the model added, measured in the probe
    assert fp16["load_ms"] > 0 and 0 < fp16["model_memory_mb"] < fp16["peak_memory_mb"]
    assert payload["reference"] == "tiny tflite fp16"
    assert payload["host"]["cpu"] and "onnxruntime" in payload["host"]["runtimes"]  # figures name their host


def test_budget_picks_the_most_accurate_row_that_fits():
    rows = [Row("a", "tflite", "fp32", gender_acc=0.95, age_mae=5.0, latency_mean_ms=5, size_kb=900),
            Row("b", "tflite", "int8", gender_acc=0.94, age_mae=5.1, latency_mean_ms=1, size_kb=300),
            Row("c", "onnx", "int8", status="validation failed", gender_acc=0.99, latency_mean_ms=1, size_kb=10),
            Row("peer:gender-only", "onnx", "fp32", gender_acc=0.97, latency_mean_ms=1, size_kb=50)]
    assert pick_best(rows)[0].model == "a"  # the peer is more accurate but gives no age, which the models do
    assert pick_best(rows, budget_ms=2)[0].model == "b"
    best, left_out = pick_best(rows, budget_kb=100)  # "none fits" says why (issue 32 item 8)
    assert best is None and left_out == "left out of 4 rows: 2 over the size budget, 1 not ok, 1 lacks a task"


def test_parse_benchmark_model_output():
    parsed = parse_benchmark_model(BENCHMARK_MODEL_LOG)
    assert parsed["latency_mean_ms"] == pytest.approx(1.5405) and parsed["latency_p50_ms"] == pytest.approx(1.533)
    assert parsed["runs"] == 50 and parsed["peak_memory_mb"] == 7.25 and parsed["latency_p90_ms"] is None


def test_adb_device_rows_with_a_fake_adb(artifacts, tmp_path, monkeypatch):
    _, paths = artifacts
    log = tmp_path / "benchmark_model.log"
    log.write_text(BENCHMARK_MODEL_LOG)
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\ncase \"$*\" in *benchmark_model*) cat {log};; esac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    payload = benchmark([paths["tflite"]], settings(device="adb:emulator-5554", threads=2), tmp_path / "out")
    row = payload["rows"][0]
    assert row["status"] == "ok" and row["where"] == "adb:emulator-5554"
    assert row["latency_mean_ms"] == pytest.approx(1.5405) and row["peak_memory_mb"] == 7.25
    recorded = calls.read_text()
    assert "-s emulator-5554 push" in recorded and "--num_threads=2 --num_runs=5 --warmup_runs=1" in recorded


def test_cli_benchmark_errors_and_budget(artifacts, tmp_path):
    _, paths = artifacts
    result = CliRunner().invoke(main, ["benchmark", "--data", "synthetic:120"])
    assert result.exit_code == 2 and "give run folders or artifacts" in result.output
    result = CliRunner().invoke(main, ["benchmark", str(paths["tflite"]), "--data", "synthetic:120", "--limit", "16",
                                       "--runs", "3", "--output", str(tmp_path), "--budget-kb", "100000",
                                       "--device", "usb:1"])
    assert result.exit_code == 2 and "expected adb:SERIAL" in result.output
    result = CliRunner().invoke(main, ["benchmark", str(paths["tflite"]), "--data", "synthetic:120", "--limit", "16",
                                       "--runs", "3", "--output", str(tmp_path), "--budget-kb", "100000"])
    assert result.exit_code == 0, result.output
    assert "best under 100000 KB: tiny tflite fp32" in result.output


# which of each peer.json's documented UTKFace-test measurements edgeface's feeding reproduces
DOCUMENTED = {"dlib_cydral_age_gender": "ag", "human_gear": "gear", "human_gender_minixception": "minix",
              "human_ssrnet_age": "ssr_age_bgr", "human_ssrnet_gender_imdb": "ssr_g_bgr",
              "insightface_genderage_2018": "iga"}


def test_peers_score_as_their_peer_json_documents():
    """Every shared peer loads; fed and decoded per peer.json, each scores on 400 UTKFace test images what its own project's figures
    say (within binomial noise: 0.07 of accuracy, 1.5 years of MAE): a channel-order or decoding bug fails here
    (SSR-Net's gender falls from 0.75 to 0.58 with RGB for BGR), where value ranges alone would pass."""
    import json

    from edgeface.data import load_data, stratified_subset
    from edgeface.data.images import load_images
    from edgeface.data.records import label_arrays
    from edgeface.peers import find_peers, load_peer

    peers_dir = require_shared(SHARED / "peers")
    records = stratified_subset(load_data(f"utkface:{require_shared(SHARED / 'data' / 'utkface')}",
                                          check=False)["test"], 400, 0)
    images = load_images([r.path for r in records], 200)
    gender, age = label_arrays(records)
    found = find_peers(peers_dir)
    assert len(found) == 6
    for folder in found:
        documented = json.loads((folder / "peer.json").read_text())["utkface_test_split"][DOCUMENTED[folder.name]]
        out = load_peer(folder).predict(images)
        if "acc" in documented:
            accuracy = float(((out["prob_male"] >= 0.5) == (gender == 1)).mean())
            assert abs(accuracy - documented["acc"]) < 0.07, (folder.name, accuracy, documented["acc"])
        if "mae" in documented:
            mae = float(np.abs(out["age_years"] - age).mean())
            assert abs(mae - documented["mae"]) < 1.5, (folder.name, mae, documented["mae"])


def test_a_quantization_aware_run_benchmarks_as_int8_tflite_only(tmp_path):
    """A QAT run in a table that asks for TFLite and ONNX at fp32 and int8 gets its Keras row and its int8 TFLite
    row; the other cells do not apply to it (its float twin is the parent run)."""
    from edgeface.benchmark.sources import row_sources

    run = tmp_path / "tiny-qat"
    run.mkdir()
    (run / "best.h5").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"data": "synthetic:40", "compression": {"method": "qat"}}))
    settings = Settings(data="synthetic:40", formats=("tflite", "onnx"), precisions=("fp32", "int8"))
    rows = [(row.format, row.precision) for row, _, _ in row_sources([run], settings, tmp_path / "work")]
    assert rows == [("keras", "fp32"), ("tflite", "int8")]
    only_onnx = Settings(data="synthetic:40", formats=("onnx",), precisions=("fp32",))
    (row, make, _), = list(row_sources([run], only_onnx, tmp_path / "work"))[1:]
    with pytest.raises(EdgefaceError, match="exports as tflite int8 only"):
        make()


def test_photos_add_a_pipeline_row_per_detector(artifacts, tmp_path, caplog):
    """--photos: detector + the reference model on full photos, next to the model rows; a photo that cannot be
    read is left out by name, and the rows count only the photos that ran (issue 29 item 6)."""
    from conftest import photo_with_chip
    from edgeface.detect import DETECTORS

    _, paths = artifacts
    lines = ["path,gender,age"]
    for index in range(4):
        path, _ = photo_with_chip(tmp_path, index)
        lines.append(f"{path.name},{'m' if index % 2 else 'f'},{30 + index}")
    broken = tmp_path / "broken.jpg"
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(broken, quality=90)
    broken.write_bytes(broken.read_bytes()[:400])  # truncated
    lines.append("broken.jpg,m,40")
    (tmp_path / "photos.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING", logger="edgeface"):
        payload = benchmark([paths["tflite"]], settings(runs=2, photos=f"csv:{tmp_path / 'photos.csv'}"),
                            tmp_path / "o")
    assert any("1 of 5 photos left out" in m and "broken.jpg" in m for m in caplog.messages), caplog.messages
    rows = payload["rows"]
    pipeline = [r for r in rows if r["model"].startswith("pipeline: ")]
    assert [r["model"].split(" ")[1] for r in pipeline] == list(DETECTORS)
    for r in pipeline:
        assert r["status"] == "ok" and r["detection_rate"] is not None and r["latency_mean_ms"] > 0
        assert r["runs"] == 4
        assert r["size_kb"] > rows[0]["size_kb"]  # the detector's file counts too
    assert pipeline[0]["detection_rate"] == 1.0  # BlazeFace finds every pasted chip
    assert pick_best([Row(**r) for r in rows])[0].model == rows[0]["model"]  # photos are not the scored images


@pytest.mark.parametrize("runs,rounds,expected", [(300, 3, [100, 100, 100]), (5, 3, [2, 2, 1]), (2, 3, [1, 1]),
                                                  (7, 1, [7])])
def test_timed_runs_are_split_into_rounds_that_sum_to_runs(runs, rounds, expected):
    from edgeface.benchmark.timing import round_sizes

    assert round_sizes(Settings(runs=runs, rounds=rounds)) == expected


def test_every_row_is_a_numbered_point_or_named_with_why_not(tmp_path):
    """pareto.png: the Keras row (its latency stretched the axis), photo-pipeline rows and failed rows are named
    under the plot with their reason, not dropped (issue 32 item 7)."""
    from edgeface.benchmark.plot import _not_plotted, pareto_plot

    rows = [Row("m", "tflite", "int8", gender_acc=0.9, age_mae=5.0, latency_mean_ms=1.0, size_kb=900),
            Row("m", "keras", "fp32", gender_acc=0.9, age_mae=5.0, latency_mean_ms=150.0, size_kb=9000),
            Row("pipeline: blazeface + m", "tflite", "int8", latency_mean_ms=3.0, detection_rate=1.0),
            Row("m", "onnx", "int8", status="export failed")]
    assert [_not_plotted(r) is None for r in rows] == [True, False, False, False]
    assert "Keras" in _not_plotted(rows[1]) and "photo pipeline" in _not_plotted(rows[2])
    assert _not_plotted(rows[3]) == "export failed"
    pareto_plot(rows, tmp_path / "pareto.png", "test")
    assert (tmp_path / "pareto.png").stat().st_size > 10_000 and (tmp_path / "pareto.png").stat().st_mode & 0o044


def test_a_thread_sweep_times_every_row_at_each_count(tmp_path):
    """--threads 1,2: a row per thread count, the same answers, each timed in its own probes (issue 32 item 14)."""
    from edgeface.bundled import bundled_model

    payload = benchmark([bundled_model()], settings(data="synthetic:20", runs=4, rounds=1, thread_sweep=(2,)),
                        tmp_path / "o")
    rows = payload["rows"]
    assert [r["threads"] for r in rows] == [1, 2] and all(r["status"] == "ok" and r["latency_mean_ms"] for r in rows)
    assert rows[0]["gender_acc"] == rows[1]["gender_acc"] and rows[0]["size_kb"] == rows[1]["size_kb"]
