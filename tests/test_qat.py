"""Quantization-aware training: resume with teachers, integer-only int8 export, what tfmot cannot rebuild, ranges
from the float model, per-channel depthwise kernels (pruned parents' QAT is in test_compress.py)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from compress_runs import interrupted, resume
from edgeface.cli import main
from edgeface.compress import qat_run
from edgeface.errors import EdgefaceError
from edgeface.export import ExportOptions, export
from edgeface.models import create_model
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.runtime.formats import export_variants, qat_variants
from edgeface.train.trainer import train

pytestmark = pytest.mark.slow  # trains parents and fine-tunes children


@pytest.fixture(scope="module")
def qat_resumed(cnn_parent, tmp_path_factory):
    """QAT of the compact CNN distilled from its own float parent (any run will do), killed after epoch 1 and
    resumed with `train --resume` (shared by the resume test and the QAT export test: one QAT training instead of
    two; the compact CNN keeps it short; MobileNetV2's QAT model is built in
    test_qat_refuses_what_tfmot_cannot_rebuild)."""
    folder = tmp_path_factory.mktemp("qat") / "student"
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupted(monkeypatch, lambda: qat_run(cnn_parent, epochs=2, teacher=cnn_parent, name=folder.name,
                                                 runs_dir=str(folder.parent)))
    killed = Run(folder).state["epochs_done"]
    return Run(folder), killed, resume(folder).output


def test_qat_exports_int8_without_calibration(cnn_parent, qat_resumed, tmp_path):
    """Also the plain CNN's case of integer-only QAT: its BN sits before the ReLU so that it folds into the int8
    convolution (after it, the converter kept 97% of the compact CNN's weight bytes float32)."""
    run = qat_resumed[0]
    assert run.model_path().suffix == ".h5" and run.quantization_aware
    assert run.info["models"]["best"]["sha256"]  # the run vouches for its own HDF5 file by hash
    run = run.path
    # after one epoch on 120 synthetic faces the age output is noise (MAE ~20 years): allow it to move; its 11
    # validation images make one borderline face that int8 flips 0.909 agreement
    result, = export(run, ["tflite"], ["int8"], tmp_path, ExportOptions(tolerances={"mae_shift": 2.0,
                                                                                    "agreement": 0.9}))
    assert result.passed and result.size_bytes > 0
    card = json.loads(result.card_path.read_text())
    assert card["input"]["dtype"] == "int8" and card["calibration"] is None
    assert all(out["quantization"]["scale"] > 0 for out in card["outputs"])  # an app must dequantize them
    assert card["artifact"]["options"]["weights"]["float32_share"] == 0  # conv-BN-ReLU folds to integer-only
    assert card["training"]["run"] == str(run) and card["training"]["parents"][0] == str(cnn_parent)
    assert card["training"]["compression"]["method"] == "qat"  # what was done to the run, on the card
    from ai_edge_litert.interpreter import Interpreter

    outputs = Interpreter(str(result.path)).get_signature_list()["serving_default"]["outputs"]
    assert sorted(outputs) == ["age", "gender"]  # named as the card names them, not quant_age/quant_gender
    # `all` means what applies to it (checked on the variant list: a second conversion would take a minute)
    assert qat_variants(export_variants("all", "all"), explicit=False) == [("tflite", "int8")]
    with pytest.raises(EdgefaceError, match="exports as tflite int8 only, not onnx int8"):
        export(run, ["onnx"], ["int8"], tmp_path)


def test_qat_of_levi_hassner_exports_integer_only(tmp_path, caplog):
    """Its BN sits before the ReLU too (the compact CNN's case is the QAT export test)."""
    run = train(TrainConfig(data="synthetic:120", backbone="levi_hassner", input_size=32, weights="none", epochs=1,
                            batch_size=16, runs_dir=str(tmp_path), name="levi_hassner", verbose=0))
    # after one epoch on 120 synthetic faces the age output is noise (MAE ~20 years): allow it to move
    result, = export(qat_run(run.path, epochs=1).path, ["tflite"], ["int8"], tmp_path / "out",
                     ExportOptions(tolerances={"mae_shift": 2.0, "agreement": 0.9}))  # 11 images, as above
    assert json.loads(result.card_path.read_text())["artifact"]["options"]["weights"]["float32_share"] == 0
    assert "stayed float32" not in caplog.text


def test_qat_refuses_what_tfmot_cannot_rebuild(cnn_parent):
    """MobileNetV2 (the default backbone) becomes quantization-aware with its heads' names kept (its QAT training
    runs the shared loop that the compact CNN's QAT tests train through); MobileNetV3 cannot, and says why."""
    from edgeface.compress.qat import quantize_for_training
    from edgeface.runtime import task_key

    mobilenet = create_model(backbone="mobilenet_v2", alpha=0.35, input_size=32, weights="none")
    qat, _ = quantize_for_training(mobilenet)
    assert any("quant" in l.name for l in qat.layers)
    assert sorted(task_key(name) for name in qat.output_names) == ["age", "gender"]
    with pytest.raises(EdgefaceError, match="cannot make this network quantization-aware.*post-training int8"):
        quantize_for_training(create_model(backbone="mobilenet_v3_small", input_size=32, weights="none"))
    result = CliRunner().invoke(main, ["qat", str(cnn_parent), "--kd-weight", "0.3"])
    assert result.exit_code == 2 and "apply with --teacher" in result.output


def test_an_interrupted_qat_with_a_teacher_resumes(cnn_parent, qat_resumed):
    run, killed, output = qat_resumed
    assert killed == 1 and "resumed phase 0 at epoch 1" in output
    rows = run.history_file.read_text().splitlines()
    assert len(rows) == 3 and "distill_soft_loss" in rows[0]
    assert run.quantization_aware and run.compression["teacher"] == str(cnn_parent)
    assert "layers_left_float" in run.compression and run.metrics["split"] == "val"


def test_qat_ranges_start_from_the_float_model():
    """Without calibration tfmot clips activations to [-6, 6]: a 0-100 year age head would be ruined."""
    from edgeface.compress.qat import calibrate_ranges, quantize_for_training
    model = create_model(backbone="compact_cnn", input_size=32, weights="none", age_head="regression", age_init=40.0)
    qat, _ = quantize_for_training(model)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    assert float(np.abs(qat(x)["age"] - model(x)["age"]).max()) > 20
    assert calibrate_ranges(qat, model, x) > 0
    assert float(np.abs(qat(x)["age"] - model(x)["age"]).max()) < 1.0


def test_qat_quantizes_depthwise_kernels_per_channel():
    """tfmot alone gives a depthwise kernel one range for all channels: one large channel erases the rest."""
    import tf_keras as keras
    from edgeface.compress.qat import quantize_for_training
    from edgeface.models.quantizers import DepthwiseWeightsQuantizer
    model = create_model(backbone="mobilenet_v1", alpha=0.25, input_size=32, weights="none")
    qat, _ = quantize_for_training(model)
    ranges = {v.name: v.shape for v in qat.weights if v.name.endswith("depthwise_kernel_min:0")}
    assert ranges["quant_conv_dw_1/depthwise_kernel_min:0"] == (model.get_layer("conv_dw_1").depthwise_kernel.shape[2],)
    kernel = np.random.default_rng(0).uniform(-0.3, 0.3, (3, 3, 8, 1)).astype("float32")
    kernel[..., 0, :] *= 200  # one channel reaching ~60, as in a trained MobileNet v1
    quantizer = DepthwiseWeightsQuantizer()
    fake = quantizer(kernel, True, quantizer.build(kernel.shape, "k", keras.layers.Layer()))
    assert np.abs(fake.numpy() - kernel)[..., 1:, :].max() < 0.3 / 127 * 0.51  # small channels keep their own step
