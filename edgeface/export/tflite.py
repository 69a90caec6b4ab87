"""TFLite conversion: fp32, fp16 weights, dynamic-range int8, full-integer int8 with calibration."""
from __future__ import annotations

import sys
import warnings

import tensorflow as tf
from tqdm import tqdm

from edgeface.errors import EdgefaceError

IO_TYPES = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}
FLOAT_SHARE_WARNING = 0.05  # of a quantized file's weight bytes


def convert(model, precision: str, calibration=None, io: str = "int8", qat: bool = False) -> bytes:
    """Keras model -> flatbuffer bytes. `calibration` is a list of normalized float batches (int8 only); a
    quantization-aware model (qat) brings its own ranges and needs none."""
    converter = _named_by_task(model) if qat else tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if not calibration and not qat:
            raise EdgefaceError("int8 TFLite needs a calibration set (--calibration NAME)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration:
            converter.representative_dataset = lambda: ([batch] for batch in tqdm(
                calibration, desc="calibrating int8", unit="img", leave=False, disable=not sys.stderr.isatty()))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # else quantization-aware: every op already carries fake-quant ranges, no representative set needed
        converter.inference_input_type = IO_TYPES[io]
        converter.inference_output_type = IO_TYPES[io]
    elif precision != "fp32":
        raise EdgefaceError(f"TFLite has no {precision} precision")
    with warnings.catch_warnings():
        # int8 I/O: the converter asks for input statistics meant for old TF1 graphs; the calibration set (or the
        # QAT ranges) gives the input scale, which the model card records from the converted file
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


def _named_by_task(model):
    """A converter whose signature names the outputs by task (gender, age), as the model card does; tfmot's
    quantize wrappers would otherwise name them quant_gender, quant_age."""
    from edgeface.runtime import task_key

    @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="image")])
    def serve(image):
        return {task_key(name): value for name, value in model(image, training=False).items()}

    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)


def weight_census(flatbuffer: bytes) -> dict:
    """Bytes of constant tensors by element type, and the largest float32 ones: an "int8" file may keep layers
    float (a batch norm the converter cannot fold, say), which costs size and falls off integer-only delegates."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    by_type, floats, seen = {}, [], set()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            if tensor.Buffer() in seen:
                continue
            nbytes = model.Buffers(tensor.Buffer()).DataLength()
            if not nbytes:
                continue
            seen.add(tensor.Buffer())
            kind = names.get(tensor.Type(), str(tensor.Type())).lower()
            by_type[kind] = by_type.get(kind, 0) + nbytes
            if kind == "float32":
                floats.append((nbytes, tensor.Name().decode().split(";")[0]))
    total = sum(by_type.values())
    return {"bytes_by_type": by_type, "float32_share": round(by_type.get("float32", 0) / total, 4) if total else 0.0,
            "largest_float32": [name for _, name in sorted(floats, reverse=True)[:3]]}


def float_weights_warning(census: dict) -> str | None:
    if census["float32_share"] <= FLOAT_SHARE_WARNING:
        return None
    return (f"warning: {100 * census['float32_share']:.0f}% of the weight bytes stayed float32 (largest: "
            f"{', '.join(census['largest_float32'])}); integer-only delegates (NNAPI, Edge TPU, Hexagon) will not "
            "run those layers")
