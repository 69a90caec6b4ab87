"""Cross-layer equalization (edgeface.export.equalize): exact in float, ranges equal per pair, residual outputs
left alone, and the export records it on the card."""
import json

import numpy as np
import pytest
import tf_keras as keras

from edgeface.export.equalize import _input_ranges, _output_ranges, equalize, find_pairs, relu6_as_relu
from edgeface.models import create_model


def _random_batch_norms(model, seed=0):
    """Trained-looking batch norms (channel scales spread over 30x), so equalization has work to do."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.1, 3, n))
            layer.beta.assign(rng.normal(0, 0.5, n))
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.1, 4, n))
    return model


@pytest.mark.parametrize("backbone,alpha,relu6", [("mobilenet_v2", 0.35, "bound"), ("mobilenet_v2", 0.35, "replace"),
                                               ("mobilenet_v1", 0.25, "bound"), ("compact_cnn", None, "bound")])
def test_equalization_is_exact_and_equalizes_each_pair(backbone, alpha, relu6):
    """"replace" is exact against the model with those ReLU6 as ReLU; "bound" against the model itself, on the
    images that bounded its scales."""
    model = _random_batch_norms(create_model(backbone=backbone, input_size=32, alpha=alpha, weights="none"))
    x = np.random.default_rng(1).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    equalized, report = equalize(model, x, relu6)
    assert report["pairs"] and report["channel_range_ratio"]["after"] < report["channel_range_ratio"]["before"]
    reference, out = relu6_as_relu(model, report["relu6_to_relu"])(x), equalized(x)
    assert (report["relu6_to_relu"] != []) == (relu6 == "replace" and backbone != "compact_cnn")
    for task in reference:
        np.testing.assert_allclose(out[task], reference[task], atol=2e-5)  # same function, rescaled weights
    assert model.get_weights()[0] is not equalized.get_weights()[0]  # the original is untouched
    if relu6 == "replace" or backbone == "compact_cnn":  # the last pair is equalized last: its ranges now match
        last = find_pairs(equalized)[-1]
        np.testing.assert_allclose(_output_ranges(last[0]), _input_ranges(last[3]), rtol=1e-4)


def test_bounded_equalization_never_moves_a_clip_the_model_uses():
    """A channel pushed past 6 on the images keeps its scale; without images, ReLU6 pairs are left alone."""
    model = _random_batch_norms(create_model(backbone="mobilenet_v1", input_size=32, alpha=0.25, weights="none"))
    bn = model.get_layer("conv_dw_1_bn")
    bn.beta.assign(bn.beta.numpy() + np.where(np.arange(bn.beta.shape[0]) == 0, 50.0, 0.0))  # channel 0 always clips
    x = np.random.default_rng(1).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    equalized, report = equalize(model, x)
    assert report["clipping_channels_kept"] >= 1 and "conv_dw_1 -> conv_pw_1" in report["pairs"]
    before, after = model.get_layer("conv_dw_1_bn").gamma.numpy(), equalized.get_layer("conv_dw_1_bn").gamma.numpy()
    assert before[0] == after[0] and not np.allclose(before[1:], after[1:])
    for task, value in model(x).items():
        np.testing.assert_allclose(equalized(x)[task], value, atol=2e-5)
    _, data_free = equalize(model)
    assert data_free["pairs"] == []  # every MobileNet v1 pair is joined by a ReLU6


def test_residual_outputs_are_not_equalized():
    model = create_model(backbone="mobilenet_v2", input_size=32, alpha=0.35, weights="none")
    firsts = {a.name for a, _, _, _ in find_pairs(model)}
    assert "expanded_conv_project" in firsts  # block 0 has no residual: its output feeds block 1 alone
    assert "block_1_project" not in firsts and "block_2_project" not in firsts  # they feed block_2_add
    relu6 = {act.name for _, _, act, _ in find_pairs(model) if act is not None}
    assert "block_1_expand_relu" in relu6 and "out_relu" not in relu6  # Conv_1 feeds pooling, not a convolution


@pytest.mark.slow
def test_export_with_every_correction_passes_parity_and_says_so_on_the_card(tmp_path):
    """Equalization, AdaRound and bias correction compose in one export, each recorded on the card."""
    from edgeface.errors import EdgefaceError
    from edgeface.export import ExportOptions, PtqCorrections, export
    from edgeface.export.calibration import create_manifest
    from edgeface.run.train_config import TrainConfig
    from edgeface.train.trainer import train

    run = train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", epochs=1,
                            batch_size=16, runs_dir=str(tmp_path), name="cnn", verbose=0))
    manifest = create_manifest("synthetic:120", "cal", size=40, folder=tmp_path)
    every = PtqCorrections(equalize="bound", adaround=True, bias_correction=True)
    result, = export(run.path, ["tflite"], ["int8"], tmp_path / "out",
                     ExportOptions(calibration=str(manifest), corrections=every))
    card = json.loads(result.card_path.read_text())
    equalized, rounding, bias = card["artifact"]["options"]["ptq_corrections"]
    assert equalized["method"].startswith("cross-layer equalization") and equalized["relu6_to_relu"] == []
    assert equalized["pairs"] == ["block1_conv -> block2_conv", "block2_conv -> block3_conv",
                                  "block3_conv -> block4_conv"]
    assert rounding["method"].startswith("AdaRound") and len(rounding["layers"]) == 6  # 4 convolutions, 2 heads
    assert bias["method"].startswith("empirical bias correction") and bias["layers_corrected"] == 6
    assert result.passed  # parity against the original float model
    with pytest.raises(EdgefaceError, match="--equalize bound --adaround corrects post-training int8 TFLite"):
        export(run.path, ["tflite"], ["fp32"], tmp_path / "out",
               ExportOptions(corrections=PtqCorrections(equalize="bound", adaround=True)))
