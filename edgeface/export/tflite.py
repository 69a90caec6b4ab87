"""TFLite conversion: fp32, fp16 weights, dynamic-range int8, full-integer int8 with calibration."""
from __future__ import annotations

import contextlib
import csv
import io as text_io
import sys
import warnings

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from edgeface.errors import EdgefaceError

IO_TYPES = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}
FLOAT_SHARE_WARNING = 0.05  # of a quantized file's weight bytes


def converter_for(model, precision: str, calibration=None, io: str = "int8", qat: bool = False,
                  batch: int | None = None):
    """The configured TFLiteConverter for a Keras model (convert() runs it; the sensitivity analysis hands it to
    TensorFlow's QuantizationDebugger). `batch`: a fixed batch size in the file's input shape (None: dynamic)."""
    converter = (_named_by_task(model, batch) if qat or batch
                 else tf.lite.TFLiteConverter.from_keras_model(model))
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
    return converter


def convert(model, precision: str, calibration=None, io: str = "int8", qat: bool = False,
            keep_float: tuple = (), batch: int | None = None) -> bytes:
    """Keras model -> flatbuffer bytes. `calibration` is a list of normalized float batches (int8 only); a
    quantization-aware model (qat) brings its own ranges and needs none. `keep_float`: Keras layers left in
    float32 in a full-integer int8 file (mixed precision; `edgeface analyze` says which)."""
    if keep_float:
        if precision != "int8" or qat or not calibration:
            raise EdgefaceError("--keep-float applies to post-training full-integer int8 (with --calibration)")
        quantizer = Quantizer(model, calibration)
        return quantizer.file(quantizer.tensors(keep_float))
    converter = converter_for(model, precision, calibration, io, qat, batch)
    with _converter_warnings():
        return converter.convert()


@contextlib.contextmanager
def _converter_warnings():
    """Warnings of TensorFlow's converter tooling that say nothing to our users: int8 I/O makes the converter ask
    for input statistics meant for old TF1 graphs (the calibration set, or the QAT ranges, gives the input scale,
    which the model card records from the converted file); the quantization debugger runs the deprecated
    tf.lite.Interpreter inside."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        yield


def layer_name(tensor_name: str) -> str:
    """The Keras layer behind a converted op's output tensor. A fused op names every layer it absorbed, the
    weighted one last ('m/block_1_relu/Relu6;m/block_1_bn/FusedBatchNormV3;m/block_1_conv/Conv2D' -> block_1_conv)."""
    parts = tensor_name.split(";")[-1].split("/")
    return parts[1] if len(parts) > 2 else tensor_name.split(";")[-1]


class Quantizer:
    """One calibration of a Keras model, then any number of full-integer int8 files with chosen ops left float."""

    def __init__(self, model, calibration):
        converter = converter_for(model, "int8", calibration)
        with _converter_warnings():
            self.debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=lambda: ([batch] for batch in calibration))

    def layer_statistics(self) -> list[dict]:
        """Per quantized op output: op, tensor, layer, scale, RMSE (float units) and RMSE / scale."""
        with _converter_warnings():
            self.debugger.run()
        buffer = text_io.StringIO()
        self.debugger.layer_statistics_dump(buffer)
        rows = []
        for row in csv.DictReader(text_io.StringIO(buffer.getvalue())):
            scale, mse = float(row["scale"]), float(row["mean_squared_error"])
            rows.append({"op": row["op_name"], "tensor": row["tensor_name"], "layer": layer_name(row["tensor_name"]),
                         "scale": scale, "rmse": float(np.sqrt(mse)),
                         "rmse_steps": float(np.sqrt(mse) / scale) if scale else 0.0})
        return rows

    def tensors(self, layers) -> list[str]:
        """Output tensor names of the ops that carry these Keras layers (one layer may feed a fused op)."""
        by_layer = {}
        for name in self._op_tensors():
            by_layer.setdefault(layer_name(name), []).append(name)
        missing = [layer for layer in layers if layer not in by_layer]
        if missing:
            named = sorted(name for name in by_layer if ":" not in name)  # not the signature's output tensors
            raise EdgefaceError(f"--keep-float: no quantized op carries layer(s) {', '.join(missing)}; layers that "
                                f"do: {', '.join(named)}")
        return [t for layer in layers for t in by_layer[layer]]

    def _op_tensors(self) -> list[str]:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self.file())
        names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
        return [names[op["outputs"][0]] for op in interpreter._get_ops_details()
                if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and op["outputs"]]

    def file(self, keep_float=()) -> bytes:
        """Full-integer int8 except the ops producing the `keep_float` tensors, which stay float32 with float
        weights (the debugger's denylisted nodes). Such a file takes float input and gives float output: its
        quantize and dequantize ops are inside it."""
        with _converter_warnings():
            self.debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(keep_float))
            return self.debugger.get_nondebug_quantized_model()


def _named_by_task(model, batch: int | None = None):
    """A converter whose signature names the outputs by task (gender, age), as the model card does (tfmot's
    quantize wrappers would otherwise name them quant_gender, quant_age), with a fixed or dynamic batch."""
    from edgeface.runtime import task_key

    @tf.function(input_signature=[tf.TensorSpec([batch, *model.input_shape[1:]], tf.float32, name="image")])
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


def gpu_readiness(flatbuffer: bytes) -> dict:
    """Which ops a GPU delegate would leave to the CPU, from TensorFlow's model analyzer (its GPU compatibility
    check for this TFLite version); a check of the op set, not a run on a GPU."""
    text = text_io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    return parse_gpu_report(text.getvalue())


def parse_gpu_report(text: str) -> dict:
    fallback = []
    for line in text.splitlines():
        line = line.strip()
        if "GPU COMPATIBILITY WARNING" in line and line.startswith("Op#"):
            op, _, reason = line.partition("GPU COMPATIBILITY WARNING:")
            fallback.append(f"{op.split('(')[0].strip()}: {reason.strip()}")
    compatible = "looks compatible with GPU delegate" in text and not fallback
    return {"checker": f"tf.lite.experimental.Analyzer (TFLite {tf.__version__})", "compatible": compatible,
            "cpu_fallback_ops": fallback}


def float_weights_warning(census: dict) -> str | None:
    if census["float32_share"] <= FLOAT_SHARE_WARNING:
        return None
    return (f"{100 * census['float32_share']:.0f}% of the weight bytes stayed float32 (largest: "
            f"{', '.join(census['largest_float32'])}); integer-only delegates (NNAPI, Edge TPU, Hexagon) will not "
            "run those layers")
