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


# A quantization-aware run carries its own int8 ranges in fake-quant wrappers, which only the TFLite converter
# turns into an integer model; its float twin is the parent run.
QAT_VARIANTS = {("tflite", "int8")}


def is_all(value) -> bool:
    return value in (None, "all", ("all",))


def qat_variants(variants: list, explicit: bool) -> list[tuple[str, str]]:
    """The variants a quantization-aware run can export to, out of those asked for; an error when none is, or
    when an `explicit` ask (not `all`) names one it cannot."""
    kept = [v for v in variants if v in QAT_VARIANTS]
    dropped = [f"{f} {p}" for f, p in variants if (f, p) not in QAT_VARIANTS]
    if not kept or (dropped and explicit):
        raise EdgefaceError(f"a quantization-aware run exports as tflite int8 only, not {', '.join(dropped)}; "
                            "export its parent run for float formats")
    return kept


def export_variants(formats=None, precisions=None, gpu: bool = False) -> list[tuple[str, str]]:
    """(format, precision) pairs from the table, filtered; "all" or None means every one."""
    names = list(FORMATS) if is_all(formats) else list(formats)
    pairs = []
    for name in names:
        if name not in FORMATS:
            raise EdgefaceError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
        fmt = FORMATS[name]
        if fmt.needs_gpu and not gpu and is_all(formats):
            continue
        wanted = fmt.precisions if is_all(precisions) else precisions
        for precision in wanted:
            if precision not in fmt.precisions:
                raise EdgefaceError(f"format {name} has no {precision} precision (has {', '.join(fmt.precisions)})")
            pairs.append((name, precision))
    return pairs
