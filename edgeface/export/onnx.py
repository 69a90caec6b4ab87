"""ONNX export with tf2onnx, and int8 QDQ static quantization with ONNX Runtime's quantization tools."""
from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from edgeface.errors import EdgefaceError
from edgeface.runtime.formats import ONNX_CALIBRATION_METHODS as CALIBRATION_METHODS

log = logging.getLogger(__name__)


# exact graph rewrites after conversion: Keras' ZeroPadding2D layers (MobileNet v1 puts one before each stride-2
# depthwise convolution) become Pad ops that CoreML's ML Program provider cannot run; folded into the following
# convolution's own padding, the outputs are bit-identical and the graph stays in one accelerator partition
GRAPH_PASSES = ("fuse_pad_into_conv", "eliminate_unused_initializer")


def convert(model, size: int, path: Path, opset: int = 17, nchw: bool = False, batch: int | None = None) -> None:
    import onnx
    import onnxoptimizer
    import tf2onnx

    signature = (tf.TensorSpec((batch, size, size, 3), tf.float32, name="image"),)
    converted, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset,
                                              inputs_as_nchw=["image"] if nchw else None)
    if batch is None:
        _name_batch_dimension(converted.graph)
    onnx.save(onnxoptimizer.optimize(converted, list(GRAPH_PASSES)), str(path))


def _name_batch_dimension(graph) -> None:
    """tf2onnx names the dynamic batch dimension after an internal tensor (unk__608); apps and tools (Netron, ONNX
    Runtime's errors) show that name, so every input and output calls it `batch` (issue 32 item 13)."""
    for value in (*graph.input, *graph.output):
        first = value.type.tensor_type.shape.dim[0]
        if first.HasField("dim_param") or not first.HasField("dim_value"):
            first.dim_param = "batch"


def to_fp16(fp32_path: Path, out_path: Path) -> None:
    """float16 weights and activations with float32 inputs/outputs (for GPU runtimes and TensorRT)."""
    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings(record=True) as caught:  # one per tensor with a value beyond float16's range
        warnings.simplefilter("always")
        onnx.save(float16.convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True), str(out_path))
    truncated = [w for w in caught if "will be truncated" in str(w.message)]
    for w in caught:
        if w not in truncated:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if truncated:  # the parity check measures what it costs; one line instead of one warning per tensor
        log.info(f"  float16: {len(truncated)} weight extremes beyond float16's range clamped (to 6.0e-8 / 65504, "
                 "as onnxconverter-common does)")


class _Reader:
    """onnxruntime CalibrationDataReader over normalized float batches (with a progress bar)."""

    def __init__(self, batches, input_name: str, nchw: bool):
        self.batches = iter(tqdm(batches, desc="calibrating int8", unit="img", leave=False,
                                 disable=not sys.stderr.isatty()))  # no carriage-return floods in log files
        self.input_name, self.nchw = input_name, nchw

    def get_next(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        return {self.input_name: np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if self.nchw else batch)}


def quantize_int8(fp32_path: Path, out_path: Path, calibration, nchw: bool = False, per_channel: bool = True,
                  method: str = "minmax") -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise EdgefaceError("int8 ONNX needs a calibration set (--calibration NAME)")
    if method not in CALIBRATION_METHODS:
        raise EdgefaceError(f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(calibration, "image", nchw)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method])


def mobile_ep_readiness(path: Path) -> dict:
    """Which mobile execution providers of ONNX Runtime would take the model, from ONNX Runtime's own usability
    checker (onnxruntime.tools.mobile_helpers): per provider, the nodes it supports, the partitions the graph
    splits into, the ops it cannot run, and the checker's verdict (YES / MAYBE / NO; more than two partitions
    is NO: the copies cost more than the accelerator gains). Input shapes are taken as fixed, as an app runs
    them (batch 1)."""
    from onnxruntime.tools.mobile_helpers.usability_checker import check_coreml_partitions, check_nnapi_partitions
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo

    model = ModelProtoWithShapeInfo(Path(path)).model_with_shape_info
    out = {}
    for name, check in (("nnapi", lambda: check_nnapi_partitions(model, False)),
                        ("coreml_mlprogram", lambda: check_coreml_partitions(model, False,
                                                                             "coreml_supported_mlprogram_ops.md"))):
        info = check()
        out[name] = {"verdict": info.suitability().name, "supported_nodes": info.num_supported_nodes,
                     "nodes": info.num_nodes, "partitions": info.num_partitions,
                     "unsupported_ops": sorted(info.unsupported_ops)}
    return out
