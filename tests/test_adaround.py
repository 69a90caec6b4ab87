"""AdaRound and bias correction (edgeface.export.adaround): the integers chosen here are the ones the converter
stores, learned rounding never does worse than nearest on its calibration loss, and bias correction removes the
mean output error on images it did not see."""
import numpy as np
import pytest
import tf_keras as keras

from edgeface.export.adaround import correct, folded_grid, grid_integers, weighted_layers
from edgeface.export.equalize import following_bn
from edgeface.export.tflite import convert

from test_equalize import _random_batch_norms


@pytest.fixture(scope="module")
def tiny():
    """Every kind of layer the converter stores per channel: Conv2D and DepthwiseConv2D each folding a batch norm
    (random, trained-looking), a Dense head."""
    layers = keras.layers
    image = keras.Input((32, 32, 3))
    x = layers.ReLU(6.0)(layers.BatchNormalization()(layers.Conv2D(16, 3, strides=2, use_bias=False)(image)))
    x = layers.ReLU(6.0)(layers.BatchNormalization()(layers.DepthwiseConv2D(3, use_bias=False)(x)))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(24, 1, use_bias=False)(x)))
    x = layers.Conv2D(24, 3, strides=2)(x)  # no batch norm: its own bias takes the correction
    model = _random_batch_norms(keras.Model(image, layers.Dense(5)(layers.GlobalAveragePooling2D()(x))))
    rng = np.random.default_rng(1)
    return model, rng.uniform(-1, 1, (48, 32, 32, 3)).astype(np.float32), \
        rng.uniform(-1, 1, (48, 32, 32, 3)).astype(np.float32)


def _file_weights(flatbuffer: bytes) -> dict:
    """int8 weight tensors of a TFLite file by name, with their per-channel steps."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    graph, out = model.Subgraphs(0), {}
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if tensor.Type() == 9 and not isinstance(data, int) and tensor.Quantization().ScaleLength() >= 1:
            out[tensor.Name().decode()] = (data.view(np.int8).reshape(tensor.ShapeAsNumpy()),
                                           tensor.Quantization().ScaleAsNumpy())
    return out


def _as_file_layout(layer, kernel: np.ndarray) -> np.ndarray:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return kernel[:, :, :, 0][None]
    if isinstance(layer, keras.layers.Conv2D):
        return kernel.transpose(3, 0, 1, 2)
    return kernel.T


def test_adaround_integers_are_the_files_and_never_worse_than_nearest(tiny):
    model, images, _ = tiny
    corrected, report = correct(model, images, adaround=True, iterations=120, positions=1024)
    layers = report["adaround"]["layers"]
    assert len(layers) == len(weighted_layers(model))
    for entry in layers:  # the guard: a layer keeps learned rounding only when it beats nearest on its loss
        assert min(entry["loss_adaround"], entry["loss_nearest"]) <= entry["loss_nearest"]
    assert report["adaround"]["layers_improved"] >= 1  # and it does beat nearest somewhere
    assert sum(e["loss_adaround"] < e["loss_nearest"] for e in layers) == report["adaround"]["layers_improved"]

    stored = _file_weights(convert(corrected, "int8", [images[i:i + 1] for i in range(16)]))
    checked = 0
    for layer in weighted_layers(corrected):
        folded, step = folded_grid(layer)
        matches = [name for name in stored if f"/{layer.name}/" in name]
        assert len(matches) == 1, (layer.name, matches)
        integers, steps = stored[matches[0]]
        np.testing.assert_allclose(steps, step.ravel(), rtol=1e-5)
        np.testing.assert_array_equal(integers, _as_file_layout(layer, grid_integers(folded, step)))
        checked += 1
    assert checked == len(layers)
    # an improved layer's chosen integers differ from nearest rounding of the original weights
    changed = [e for e in layers if not e["nearest_kept"]]
    assert all(e["changed"] > 0 for e in changed)


def test_each_layer_learns_from_the_input_its_rounded_predecessors_give_it(tiny):
    """The paper's asymmetric reconstruction: layer k's loss is measured on what the already-rounded layers before
    it feed it, against the float layer on the float input. Recomputed here with a Keras probe per layer on the
    corrected model (an independent path: correct() takes every input from one pass of its copy); a loss taken on
    the float model's inputs instead fails from the second layer on."""
    from edgeface.export.adaround import _op

    model, images, _ = tiny
    corrected, report = correct(model, images, adaround=True, iterations=40, positions=1024)
    for k, (layer, entry) in enumerate(zip(weighted_layers(model), report["adaround"]["layers"])):
        x_q = keras.Model(corrected.inputs, corrected.get_layer(layer.name).input)(images).numpy()
        x_f = keras.Model(model.inputs, layer.input)(images).numpy()
        folded, step = folded_grid(layer)
        op = _op(layer)
        error = op(x_q, grid_integers(folded, step) * step) - op(x_f, folded)
        assert entry["layer"] == layer.name
        assert entry["loss_nearest"] == pytest.approx(float(np.square(error.numpy()).sum()) / len(images), rel=1e-4)
        assert k == 0 or not np.allclose(x_q, x_f)  # the inputs really are the rounded model's


def test_bias_correction_reduces_the_mean_output_error_on_unseen_images(tiny):
    model, images, unseen = tiny
    rounded, _ = correct(model, images, adaround=False)  # nearest rounding only: what the converter does
    fixed, report = correct(model, images, adaround=False, bias_correction=True)
    assert report["bias_correction"]["layers_corrected"] == len(weighted_layers(model))

    def mean_error(candidate):
        errors = []
        for layer in weighted_layers(model):
            after = following_bn(layer) or layer  # the folded output: where the correction lands
            probe_c = keras.Model(candidate.inputs, candidate.get_layer(after.name).output)
            probe_f = keras.Model(model.inputs, after.output)
            diff = probe_c(unseen).numpy() - probe_f(unseen).numpy()
            errors.append(np.abs(diff.reshape(-1, diff.shape[-1]).mean(axis=0)).mean())
        return np.mean(errors)

    assert mean_error(fixed) < mean_error(rounded)
