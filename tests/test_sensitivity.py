"""Int8 sensitivity and mixed precision on a small model with one layer sabotaged on purpose: a dead feature gets
a huge gender weight, which changes nothing in float but crushes every other weight of that per-tensor int8
layer; the analysis must find it, and --keep-float must leave it float in the file."""
import numpy as np
import pytest

from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sabotaged(tmp_path_factory):
    from edgeface.export.calibration import create_manifest
    from edgeface.train.trainer import train

    tmp = tmp_path_factory.mktemp("sens")
    cfg = TrainConfig(data="synthetic:240", backbone="compact_cnn", input_size=32, weights="none", batch_size=16,
                      warmup_epochs=0, lr=3e-3, verbose=0, epochs=4, runs_dir=str(tmp), name="victim")
    run = train(cfg)
    model = run.load_model()
    bn = model.get_layer("block4_bn")
    gamma, beta, mean, var = bn.get_weights()
    gamma[0], beta[0] = 0.0, -1.0  # feature 0 of the pooled vector is always 0 after the ReLU
    bn.set_weights([gamma, beta, mean, var])
    dense = model.get_layer("gender")
    kernel, bias = dense.get_weights()
    kernel[0, 0] = 1000.0  # multiplies a feature that is always 0: no effect in float
    dense.set_weights([kernel, bias])
    Run(run.path).save_model(model, "best")
    manifest = create_manifest("synthetic:240", "cal", size=60, folder=tmp)
    return Run.open(run.path), manifest


def test_analysis_finds_the_sabotaged_layer(sabotaged, tmp_path):
    from edgeface.export.sensitivity import analyze, format_analysis, write_analysis

    run, manifest = sabotaged
    report = analyze(run.path, str(manifest), val_limit=None, top=20)
    assert report["float"]["gender_accuracy"] - report["int8"]["gender_accuracy"] > 0.1  # int8 broke gender
    best = report["layers"][0]
    assert best["layer"] == "gender" and best["recovered"]["gender_points"] > 10
    assert "gender" in report["verdict"] and "--keep-float gender" in report["verdict"]
    assert "gender" in format_analysis(report)
    folder = write_analysis(report, tmp_path / "analysis")
    assert {p.name for p in folder.iterdir()} == {"analysis.json", "layers.csv", "sensitivity.png"}


def test_blocks_are_named_across_backbones():
    from edgeface.export.sensitivity import block_name

    assert block_name("block_3_expand") == block_name("block_3_project") == "block_3"  # MobileNetV2
    assert block_name("conv_dw_3") == block_name("conv_pw_3") == "block 3"  # MobileNet v1
    assert block_name("expanded_conv_3_depthwise") == "expanded_conv_3"  # MobileNetV3
    assert block_name("block2a_expand_conv") == "block2a" and block_name("block1_conv") == "block1"
    assert block_name("gender") == "gender"


def test_block_analysis_keeps_whole_blocks_float(sabotaged):
    from edgeface.export.sensitivity import analyze

    run, manifest = sabotaged
    report = analyze(run.path, str(manifest), val_limit=None, top=20, by="block")
    best = report["layers"][0]
    assert best["layer"] == "gender" and report["by"] == "block"
    assert {r["layer"] for r in report["layers"]} >= {"block1", "block4"}
    block4 = next(r for r in report["layers"] if r["layer"] == "block4")
    assert "block4_conv" in block4["layers"]


def test_keep_float_leaves_that_layer_float_in_the_file(sabotaged, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgeface.export import ExportOptions, export

    run, manifest = sabotaged
    (result,) = export(run.path, ["tflite"], ["int8"], tmp_path,
                       ExportOptions(calibration=str(manifest), keep_float=("gender",)))
    path = result.path
    interpreter = Interpreter(model_path=str(path))
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    fc = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    kinds = {tensors[op["outputs"][0]]["name"].split(";")[-1].split("/")[1]:
             np.dtype(tensors[op["inputs"][1]]["dtype"]).name for op in fc}
    assert kinds == {"gender": "float32", "age": "int8"}
    import json
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["artifact"]["options"]["keep_float"] == ["gender"] and result.passed
    with pytest.raises(Exception, match="no quantized op carries layer"):
        export(run.path, ["tflite"], ["int8"], tmp_path / "x", ExportOptions(calibration=str(manifest),
                                                                              keep_float=("nope",)))



def test_export_keep_float_auto_from_python(sabotaged, tmp_path):
    """export(..., ExportOptions(keep_float="auto")) works from Python (it used to be CLI-only orchestration): the
    search finds the sabotaged layer, the file keeps it float and the card says why."""
    import json

    from edgeface.export import ExportOptions, export

    run, manifest = sabotaged
    (result,) = export(run.path, ["tflite"], ["int8"], tmp_path, ExportOptions(calibration=str(manifest),
                                                                                keep_float="auto"))
    options = json.loads(result.card_path.read_text())["artifact"]["options"]
    assert "gender" in options["keep_float"] and options["keep_float_reason"].startswith("auto: the fewest layers")
    with pytest.raises(EdgefaceError, match="use --format tflite --precision int8"):
        export(run.path, ["onnx"], ["int8"], tmp_path, ExportOptions(calibration=str(manifest), keep_float="auto"))
