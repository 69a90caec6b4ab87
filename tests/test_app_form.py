"""The app form's TFLite rewrite on a tiny int8 model converted here: raw uint8 pixels give exactly the integers
the int8 file would be fed (pixel - 128), for every one of the 256 values; outputs are float32, named and ordered
as the card, with no dynamic dimension left; normalizations that raw pixels cannot meet are refused."""
from __future__ import annotations

import numpy as np
import pytest

from edgeface.card import raw_pixel_mapping
from edgeface.errors import EdgefaceError
from edgeface.export.app import app_ready_tflite


@pytest.fixture(scope="module")
def int8_file():
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, {"gender": keras.layers.Dense(1, activation="sigmoid", name="gender")(x),
                                 "age": keras.layers.Dense(1, name="age")(x)})
    rng = np.random.default_rng(0)
    calibration = [(rng.integers(0, 256, (1, 16, 16, 3)).astype(np.float32) - 127.5) / 127.5 for _ in range(32)]
    calibration[0][0, 0, 0] = (-1.0, 1.0, 0.0)  # the full [-1, 1] range: scale 1/127.5, zero point 0
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _run(data, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    runner = interpreter.get_signature_runner()
    out = runner(image=x)
    details = runner.get_output_details()
    return {k: (v.astype(np.float32) - details[k]["quantization_parameters"]["zero_points"][0])
            * details[k]["quantization_parameters"]["scales"][0] if v.dtype != np.float32 else v
            for k, v in out.items()}, interpreter


def test_raw_pixels_feed_exactly_what_the_int8_file_is_fed(int8_file):
    from ai_edge_litert.interpreter import Interpreter

    source = Interpreter(model_content=int8_file).get_input_details()[0]
    scale, zero = source["quantization"]
    assert scale == pytest.approx(1 / 127.5) and zero in (0, -1)  # the converter nudges 127.5 to either side
    app = app_ready_tflite(int8_file, [127.5] * 3, [127.5] * 3, ["gender", "age"])
    pixels = np.arange(256 * 3, dtype=np.int64).reshape(1, 16, 16, 3).astype(np.uint8)  # every value, thrice
    ours, interpreter = _run(app, pixels)
    theirs, _ = _run(int8_file, (pixels.astype(np.int16) - 128).astype(np.int8))  # q = p - (zero + 128) + zero
    for name in ("gender", "age"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6)  # the same integers, dequantized
    inp = interpreter.get_input_details()[0]
    assert (inp["name"], inp["dtype"], list(inp["shape_signature"])) == ("image", np.uint8, [1, 16, 16, 3])
    assert [o["name"] for o in interpreter.get_output_details()] == ["gender", "age"]
    assert all(o["dtype"] == np.float32 for o in interpreter.get_output_details())
    assert all(-1 not in t["shape_signature"] for t in interpreter.get_tensor_details() if len(t["shape_signature"]))
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops[:2] == ["DEQUANTIZE", "QUANTIZE"] or "DELEGATE" in ops


@pytest.mark.parametrize("mean,std,message", [
    ([123.7, 116.3, 103.5], [58.4, 57.1, 57.4], "one mean and std"),
    ([127.5] * 3, [64.0] * 3, "not 1/std"),
    ([100.0] * 3, [127.5] * 3, "more than half a level away"),
])
def test_normalizations_raw_pixels_cannot_meet_are_refused(mean, std, message):
    with pytest.raises(EdgefaceError, match=message):
        raw_pixel_mapping(1 / 127.5, 0, mean, std)
