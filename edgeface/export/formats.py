"""The one table of export formats and precisions; export, parity checks and the benchmark all read it."""
from __future__ import annotations

import dataclasses

from edgeface.errors import EdgefaceError


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str  # file suffix, or "" for a folder artifact
    precisions: tuple
    runtime: str
    needs_gpu: bool = False
    description: str = ""


FORMATS = {
    f.name: f
    for f in (
        ExportFormat("saved_model", "", ("fp32",), "tensorflow", description="TensorFlow SavedModel for TF Serving"),
        ExportFormat("tflite", ".tflite", ("fp32", "fp16", "dynamic", "int8"), "litert",
                     description="LiteRT/TFLite flatbuffer for Android, iOS and embedded Linux"),
        ExportFormat("onnx", ".onnx", ("fp32", "fp16", "int8"), "onnxruntime",
                     description="ONNX (tf2onnx); fp16 via onnxconverter-common; int8 as ONNX Runtime static QDQ"),
        ExportFormat("trt", ".engine", ("fp16", "int8"), "tensorrt", needs_gpu=True,
                     description="Serialized TensorRT engine built from the ONNX model"),
    )
}
# Precisions that are integer-quantized from a calibration set.
CALIBRATED = {"int8"}


def export_variants(formats=None, precisions=None, gpu: bool = False) -> list[tuple[str, str]]:
    """(format, precision) pairs from the table, filtered; "all" or None means every one."""
    names = list(FORMATS) if formats in (None, "all", ("all",)) else list(formats)
    pairs = []
    for name in names:
        if name not in FORMATS:
            raise EdgefaceError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
        fmt = FORMATS[name]
        if fmt.needs_gpu and not gpu and formats in (None, "all", ("all",)):
            continue
        wanted = fmt.precisions if precisions in (None, "all", ("all",)) else precisions
        for precision in wanted:
            if precision not in fmt.precisions:
                raise EdgefaceError(f"format {name} has no {precision} precision (has {', '.join(fmt.precisions)})")
            pairs.append((name, precision))
    return pairs
