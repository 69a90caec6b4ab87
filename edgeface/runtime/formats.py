"""The one table of export formats and precisions. Export writers, runners, parity tolerances, the CLI's choices
and the model card schema's enums all read it, and README's formats table describes it (tests/test_formats.py
checks they agree)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from edgeface.errors import EdgefaceError


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str  # file suffix, or "" for a folder artifact
    precisions: tuple
    runtime: str
    runner: str  # "module:Runner" that opens it (imported on first use: the runtimes are heavy)
    needs_gpu: bool = False
    other_suffixes: tuple = ()  # also opened as this format

    def open(self, path, threads: int | None = None, pixels=None):
        """This format's runner for the artifact at `path` (`pixels`: an app-form artifact's normalization)."""
        import importlib

        module, name = self.runner.split(":")
        return getattr(importlib.import_module(module), name).open(path, threads, pixels)


_RUNNERS = "edgeface.runtime.runners"
# The writers live in edgeface.export.writers (above this layer), keyed by these names: WRITERS, checked against
# this table by tests/test_formats.py (Ultralytics' exporter likewise finds `export_NAME` by the table's name).
FORMATS = {
    f.name: f
    for f in (
        ExportFormat("saved_model", "", ("fp32",), "tensorflow", f"{_RUNNERS}:SavedModelRunner"),
        ExportFormat("tflite", ".tflite", ("fp32", "fp16", "dynamic", "int8"), "litert", f"{_RUNNERS}:TFLiteRunner"),
        ExportFormat("onnx", ".onnx", ("fp32", "fp16", "int8"), "onnxruntime", f"{_RUNNERS}:ONNXRunner"),
        ExportFormat("trt", ".engine", ("fp16", "int8"), "tensorrt", "edgeface.runtime.tensorrt:TensorRTRunner",
                     needs_gpu=True, other_suffixes=(".plan",)),
    )
}
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
# Export I/O: int8 / uint8 / float full-integer TFLite I/O as the converter writes it, or "app": raw uint8 pixels
# in, float32 outputs named as the card, batch 1 (edgeface.export.app; TFLite int8 and every ONNX precision).
IO_CHOICES = ("int8", "uint8", "float", "app")
# ONNX Runtime's static-quantization calibration methods (onnxruntime.quantization.CalibrationMethod).
ONNX_CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Precisions that are integer-quantized from a calibration set.
CALIBRATED = {"int8"}
# Parity against the Keras model. Float formats: every probability output within `atol` of Keras, an age in
# years (a regression or distribution head) within `age_atol` years. Quantized formats: gender decisions agree, and
# age MAE against the labels grows by at most mae_shift years (an MAE that drops never fails).
TOLERANCES = {
    "fp32": {"atol": 1e-3, "age_atol": 0.05},
    "fp16": {"atol": 2e-2, "age_atol": 1.0},
    "dynamic": {"agreement": 0.95, "mae_shift": 0.5},
    "int8": {"agreement": 0.95, "mae_shift": 0.5},
}
TOLERANCE_KEYS = ("atol", "age_atol", "agreement", "mae_shift")

# A quantization-aware run carries its own int8 ranges in fake-quant wrappers, which only the TFLite converter
# turns into an integer model; its float twin is the parent run.
QAT_VARIANTS = {("tflite", "int8")}


def format_of(path) -> str:
    """The format of an artifact on disk, by suffix (or a SavedModel folder)."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "saved_model"
    for fmt in FORMATS.values():
        if fmt.suffix and path.suffix in (fmt.suffix, *fmt.other_suffixes):
            return fmt.name
    known = ", ".join(f.suffix for f in FORMATS.values() if f.suffix)
    raise EdgefaceError(f"{path}: unknown artifact type (expected {known}, a SavedModel folder, a run folder "
                        "or a .keras model)")


def is_all(value) -> bool:
    return value in (None, "all", ("all",))


def qat_variants(variants: list, explicit: bool) -> list[tuple[str, str]]:
    """The variants a quantization-aware run can export to, out of those asked for; an error when none is, or
    when an `explicit` ask (not `all`) names one it cannot."""
    kept = [v for v in variants if v in QAT_VARIANTS]
    dropped = [f"{f} {p}" for f, p in variants if (f, p) not in QAT_VARIANTS]
    if not kept or (dropped and explicit):
        raise EdgefaceError(f"a quantization-aware run exports as tflite int8 only, not {', '.join(dropped)}; "
                            "export its float parent run for other formats")
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


def check_tolerances(overrides: dict | None) -> dict:
    """Tolerance overrides as numbers, refused up front when unknown or out of range (an agreement of 1.5 could
    never pass, and an export would find out only after its work)."""
    checked = {}
    for key, value in (overrides or {}).items():
        if key not in TOLERANCE_KEYS:
            raise EdgefaceError(f"unknown tolerance {key!r} (use {', '.join(TOLERANCE_KEYS)})")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise EdgefaceError(f"tolerance {key}={value!r} is not a number") from None
        if not (0 <= value <= 1 if key == "agreement" else 0 <= value < float("inf")):
            raise EdgefaceError(f"tolerance {key}={value:g} is out of range ("
                                + ("a share of images, 0-1" if key == "agreement" else "a difference, >= 0") + ")")
        checked[key] = value
    return checked


def tolerances_for(precision: str, overrides: dict | None = None) -> dict:
    return {**TOLERANCES[precision], **check_tolerances(overrides)}
