import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgeface.cli import main
from edgeface.errors import EdgefaceError
import edgeface
from edgeface.card import embedded_card, validate_card
from edgeface.export import ExportOptions, export, export_run
from edgeface.export.calibration import create_manifest, read_manifest
from edgeface.export.tflite import float_weights_warning, weight_census
from edgeface.run.train_config import TrainConfig
from edgeface.runtime import open_runner
from edgeface.runtime.tensorrt import cuda_available
from edgeface.train.trainer import train

pytestmark = pytest.mark.slow  # trains a tiny model and converts it to every format

GPU, WHY_NO_GPU = cuda_available()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", epochs=1,
                             batch_size=16, runs_dir=str(runs), name="tiny", verbose=0)).path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return create_manifest("synthetic:120", "synth-40", size=40, folder=tmp_path_factory.mktemp("calibration"))


def test_calibration_manifest_is_stratified_and_readable(manifest):
    m = read_manifest(manifest)
    assert len(m.images) == 40 and m.meta["data"] == "synthetic:120"
    assert "stratified by gender x age group" in m.meta["selection"]
    assert all(p.is_file() for p in m.resolve())
    assert m.describe()["size"] == 40 and len(m.describe()["sha256"]) == 64


def test_every_cpu_format_exports_runs_and_passes_parity(run, manifest, tmp_path):
    results = export(run, "all", "all", tmp_path, ExportOptions(calibration=str(manifest)))
    assert {(r.format, r.precision) for r in results} == {
        ("saved_model", "fp32"), ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "dynamic"), ("tflite", "int8"),
        ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8")}
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    sizes = {}
    for r in results:
        assert r.passed, (r.path, r.parity)
        out = open_runner(r.path)(x)
        assert out["gender"].shape == (3, 1) and out["age"].shape == (3, 101)  # the default age head
        card = json.loads(r.card_path.read_text())
        validate_card(card)
        age = next(o for o in card["outputs"] if o["name"] == "age")
        assert age["shape"] == [-1, 101] and "sum(k * output[k])" in age["decode"]
        assert card["artifact"]["size_bytes"] == r.size_bytes and card["metrics"]["parity_vs_keras"]["passed"]
        assert card["model"]["spec"]["backbone"] == "compact_cnn"
        assert (card["calibration"] is not None) == (r.precision == "int8")
        sizes[(r.format, r.precision)] = r.size_bytes
    assert sizes[("tflite", "int8")] * 2.5 < sizes[("tflite", "fp32")]
    int8 = next(r for r in results if (r.format, r.precision) == ("tflite", "int8"))
    card = json.loads(int8.card_path.read_text())
    assert card["input"]["dtype"] == "int8" and card["input"]["quantization"]["scale"] > 0
    assert card["calibration"]["manifest"] == str(manifest)
    assert card["artifact"]["options"]["weights"]["float32_share"] == 0  # full-integer: every weight int8
    for r in results:  # each card is built once: the copy inside the file is the JSON card, hash included
        if r.path.suffix in (".tflite", ".onnx"):
            assert embedded_card(r.path) == json.loads(r.card_path.read_text())
        predictor = edgeface.load(r.path)  # the verified loader accepts every artifact it wrote
        assert predictor.format == r.format and predictor.precision == r.precision


def test_weight_census_finds_layers_left_float():
    """A BN after a ReLU cannot fold into the convolution before it and stays a float op: in a quantization-aware
    model the converter then keeps the next convolution's weights float32, which the census and the export
    warning must show."""
    import tensorflow as tf
    import tf_keras as keras

    from edgeface.compress.qat import quantize_for_training

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv_relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, name="conv_plain")(x))
    model, left_float = quantize_for_training(keras.Model(inputs, keras.layers.Dense(1)(x)), False)
    assert left_float  # the batch norm
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    census = weight_census(converter.convert())
    assert census["bytes_by_type"]["int8"] > 0 and census["float32_share"] > 0.5
    assert "conv_plain" in census["largest_float32"][0]
    assert "stayed float32" in float_weights_warning(census)
    assert float_weights_warning({**census, "float32_share": 0.0}) is None


def test_age_regression_head_exports_with_its_decoding_on_the_card(manifest, tmp_path):
    run = train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", epochs=1,
                            batch_size=16, runs_dir=str(tmp_path), name="reg", age_head="regression", verbose=0)).path
    results = export(run, ["tflite"], ["dynamic", "int8"], tmp_path / "out", ExportOptions(calibration=str(manifest)))
    for r in results:
        assert r.passed, (r.path, r.parity)
        age = json.loads(r.card_path.read_text())["outputs"]
        age = next(o for o in age if o["name"] == "age")
        assert age["shape"] == [-1, 1] and age["decode"] == "age = output[0]"
        x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
        assert open_runner(r.path)(x)["age"].shape == (2, 1)


def test_uint8_io_and_nchw_onnx(run, manifest, tmp_path):
    tfl, = export(run, ["tflite"], ["int8"], tmp_path, ExportOptions(calibration=str(manifest), io="uint8"))
    assert open_runner(tfl.path).input_dtype == np.uint8 and tfl.passed
    onnx_result, = export(run, ["onnx"], ["fp32"], tmp_path / "nchw", ExportOptions(nchw=True))
    runner = open_runner(onnx_result.path)
    assert runner.channels_first and onnx_result.passed
    assert json.loads(onnx_result.card_path.read_text())["input"]["shape"] == [-1, 3, 32, 32]
    import onnx

    graph = onnx.load(str(onnx_result.path)).graph  # the dynamic dimension is named for what it is, not unk__608
    assert {v.type.tensor_type.shape.dim[0].dim_param for v in (*graph.input, *graph.output)} == {"batch"}


def test_int8_needs_a_calibration_manifest(run, tmp_path):
    with pytest.raises(EdgefaceError, match="int8 export needs --calibration"):
        export(run, ["tflite"], ["int8"], tmp_path)
    with pytest.raises(EdgefaceError, match="calibration manifest not found"):
        export(run, ["tflite"], ["int8"], tmp_path, ExportOptions(calibration="nope"))


def test_parity_failure_fails_the_export_but_keeps_the_artifact(run, tmp_path):
    with pytest.raises(EdgefaceError, match="export failed for tiny-tflite-fp16.tflite: "):
        export(run, ["tflite"], ["fp16"], tmp_path, ExportOptions(tolerances={"atol": 0.0, "age_atol": 0.0}))
    card = json.loads((tmp_path / "tiny-tflite-fp16.json").read_text())
    assert card["metrics"]["parity_vs_keras"]["passed"] is False
    report = edgeface.predictor.verify(tmp_path / "tiny-tflite-fp16.tflite")  # its own card says parity failed
    assert not report["passed"] and any(c["name"] == "parity recorded at export" and not c["ok"]
                                        for c in report["checks"])


def test_unknown_format_and_precision(run, tmp_path):
    with pytest.raises(EdgefaceError, match="unknown format 'coreml'"):
        export(run, ["coreml"], ["fp32"], tmp_path)
    with pytest.raises(EdgefaceError, match="format onnx has no dynamic precision"):
        export(run, ["onnx"], ["dynamic"], tmp_path)


def test_cli_export_then_eval_the_artifact(run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(run), "--format", "onnx", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["eval", str(tmp_path / "tiny-onnx-fp32.onnx")])  # the run's recorded test split
    assert result.exit_code == 0 and "gender acc" in result.output, result.output
    assert "recorded by" in result.output
    result = runner.invoke(main, ["verify", str(tmp_path / "tiny-onnx-fp32.onnx")])
    assert result.exit_code == 0 and "parity with parent" in result.output and "verified" in result.output
    result = runner.invoke(main, ["eval", str(tmp_path / "tiny-onnx-fp32.onnx"), "--data", "synthetic:120",
                                  "--seed", "1"])  # another split: some of its test images trained the model
    assert result.exit_code == 0 and "not the split" in result.output, result.output


@pytest.mark.skipif(GPU, reason="a CUDA GPU is present: the no-GPU message does not apply")
def test_trt_without_gpu_is_one_clear_line(run, tmp_path):
    result = CliRunner().invoke(main, ["export", str(run), "--format", "trt", "--precision", "fp16",
                                       "--output", str(tmp_path)])
    assert result.exit_code == 2 and result.output.startswith("error: TensorRT export needs an NVIDIA GPU")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(not GPU, reason=f"TensorRT engine build needs a CUDA GPU: {WHY_NO_GPU}")
def test_trt_engines_build_run_and_pass_parity(run, manifest, tmp_path):
    results = export(run, ["trt"], ["fp16", "int8"], tmp_path,
                     ExportOptions(calibration=str(manifest), timing_cache=str(tmp_path / "timing.cache")))
    assert all(r.passed for r in results) and (tmp_path / "timing.cache").is_file()
    runner = open_runner(results[0].path)
    out = runner(np.zeros((2, 32, 32, 3), np.float32))
    assert out["gender"].shape == (2, 1)
    first = dict(runner._buffers)  # device buffers: allocated once per engine, not on every run (issue 31)
    runner(np.ones((2, 32, 32, 3), np.float32))
    assert runner._buffers == first
    assert runner(np.zeros((4, 32, 32, 3), np.float32))["gender"].shape == (4, 1)  # a larger batch grows them
    assert all(runner._buffers[name][1] > first[name][1] for name in first)
    runner.close()


def test_gpu_readiness_reads_the_analyzer_report():
    from edgeface.export.tflite import parse_gpu_report

    ok = parse_gpu_report("Your model looks compatible with GPU delegate on TFLite runtime version 2.21.0.")
    assert ok["compatible"] and ok["cpu_fallback_ops"] == []
    bad = parse_gpu_report(
        "GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 3 on TFLite runtime\n"
        "  Op#3 GATHER(T#1, T#2) -> [T#3]\n"
        "    Op#3 GATHER(T#1, T#2) -> [T#3] GPU COMPATIBILITY WARNING: Not supported op GATHER\n")
    assert not bad["compatible"] and bad["cpu_fallback_ops"] == ["Op#3 GATHER: Not supported op GATHER"]


def test_app_form_exports_from_a_run(run, manifest, tmp_path):
    """--io app from a run: raw uint8 pixels in, named float outputs, batch 1, test vectors and SHA256SUMS beside
    it; verify replays the vectors and checks parity with the run it names by content."""
    import hashlib

    import edgeface.predictor

    results = export(run, ["tflite", "onnx"], ["int8"], tmp_path, ExportOptions(calibration=str(manifest), io="app"))
    sums = dict(line.split("  ")[::-1] for line in (tmp_path / "SHA256SUMS").read_text().splitlines())
    for r in results:
        card = json.loads(r.card_path.read_text())
        assert r.passed and card["input"]["encoding"] == "raw_pixels" and card["input"]["dtype"] == "uint8"
        assert card["input"]["shape"][0] == 1 and all(o["dtype"] == "float32" for o in card["outputs"])
        assert card["training"]["run_model"]["sha256"]
        assert sums[r.path.name] == hashlib.sha256(r.path.read_bytes()).hexdigest()
        report = edgeface.predictor.verify(r.path)
        assert report["passed"], report
        assert any(c["name"] == "test vectors" and c["ok"] for c in report["checks"])
    refused, = export_run(run, ["saved_model"], ["fp32"], tmp_path / "sm", ExportOptions(io="app"))
    assert "made for tflite and onnx" in refused.error and not refused.path.exists()  # not silently dropped


def test_an_exported_file_is_rewritten_to_the_app_form_from_python(run, tmp_path):
    """`export(FILE, options=ExportOptions(io="app"))` does from Python what `edgeface export FILE --io app` does
    (issue 31: the CLI only parses): the app form of an already exported file, parity checked against that
    file, the source recorded; any other io is refused in one line."""
    import edgeface.predictor

    source, = export(run, ["onnx"], ["fp32"], tmp_path / "onnx")  # an int8 .tflite qualifies when its input
    app, = export(source.path, output_dir=tmp_path / "app", options=ExportOptions(io="app"))  # spans 0-255
    card = json.loads(app.card_path.read_text())
    assert app.passed and app.source == source.path and app.path.name.endswith("-app.onnx")
    assert card["input"]["encoding"] == "raw_pixels" and card["artifact"]["options"]["source"]["file"] == \
        source.path.name
    assert edgeface.predictor.verify(app.path, skip_parent=True)["passed"]
    with pytest.raises(EdgefaceError, match="can only be re-exported with --io app"):
        export(source.path, options=ExportOptions())


def test_a_fixed_batch_one_file_answers_like_the_dynamic_one(run, tmp_path):
    """--fixed-batch 1: TFLite and ONNX files whose input is [1, H, W, 3] (what an app runs), the same answers as
    the dynamic-batch export (our runners feed them one image at a time); SavedModel refuses it."""
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    fixed = export(run, ["tflite", "onnx"], ["fp32"], tmp_path / "fixed", ExportOptions(fixed_batch=1))
    dynamic = export(run, ["tflite", "onnx"], ["fp32"], tmp_path / "dynamic")
    for a, b in zip(fixed, dynamic):
        assert json.loads(a.card_path.read_text())["input"]["shape"][0] == 1
        assert json.loads(b.card_path.read_text())["input"]["shape"][0] == -1
        out_a, out_b = open_runner(a.path).run(images), open_runner(b.path).run(images)
        for key in out_a:
            np.testing.assert_allclose(out_a[key], out_b[key], atol=1e-5)
    with pytest.raises(EdgefaceError, match="saved_model keeps a dynamic batch"):
        export(run, ["saved_model"], ["fp32"], tmp_path / "sm", ExportOptions(fixed_batch=1))


def test_parity_images_from_a_dataset_spec_are_its_stratified_val_split(tmp_path):
    """--parity-data (and the app form of an exported file) draw the same images every time: `count` of the spec's
    validation split, stratified; a spec that cannot be read says how to give another."""
    from edgeface.data import load_data, stratified_subset
    from edgeface.export.parity_images import parity_records

    records = parity_records("synthetic:120", 10)
    val = load_data("synthetic:120", check=False, verbose=False).splits["val"]
    assert records == parity_records("synthetic:120", 10) == stratified_subset(val, 10, seed=0)
    assert len(records) == 10 and {r.path for r in records} <= {r.path for r in val}
    with pytest.raises(EdgefaceError, match="pass --parity-data SPEC"):
        parity_records(f"csv:{tmp_path / 'missing.csv'}", 10)
