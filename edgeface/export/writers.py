"""One writer per format of the formats table (edgeface.runtime.formats), keyed by its name: each writes the
artifact for a precision and returns the options its card records. ONNX and TensorRT share one ONNX source per
precision (`onnx_source`)."""
from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.export.app import APP_IO, app_ready_onnx, app_tflite
from edgeface.export.options import ExportOptions
from edgeface.models import has_quantize_wrappers


def _dynamic_batch_only(fmt: str, options: ExportOptions) -> None:
    if options.fixed_batch:
        raise EdgefaceError(f"--fixed-batch is for tflite and onnx files; {fmt} keeps a dynamic batch"
                            + (" (its min/opt/max profile sets the batches)" if fmt == "trt" else ""))


def _write_saved_model(model, spec, precision, target: Path, options: ExportOptions, calibration, workdir: Path):
    _dynamic_batch_only("saved_model", options)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints every endpoint's signature
        model.export(str(target))
    return {}


def _write_tflite(model, spec, precision, target: Path, options: ExportOptions, calibration, workdir: Path):
    import edgeface.export.tflite as tflite_export

    keep_float = tuple(options.keep_float) if precision == "int8" else ()
    if keep_float and options.io != "int8":
        raise EdgefaceError(f"--keep-float writes a mixed-precision file with float input and outputs (quantize and "
                            f"dequantize inside), so --io {options.io} cannot apply; drop one of them")
    app = options.io == APP_IO
    if app and (precision != "int8" or keep_float):
        raise EdgefaceError("--io app (raw pixels in, float outputs, batch 1) is made from a full-integer int8 "
                            "TFLite file (or any ONNX precision): use --precision int8 without --keep-float")
    if app and calibration:
        calibration = _with_full_pixel_range(calibration, spec.backbone_config)
    if options.fixed_batch and keep_float:
        raise EdgefaceError("--fixed-batch does not combine with --keep-float (the mixed-precision file keeps the "
                            "model's dynamic batch)")
    flatbuffer = tflite_export.convert(model, precision, calibration, "int8" if app else options.io,
                                       qat=has_quantize_wrappers(model), keep_float=keep_float,
                                       batch=options.fixed_batch)
    if app:
        flatbuffer = app_tflite(flatbuffer, spec.backbone_config, spec.input_size, spec.card_outputs(), target.name)
    target.write_bytes(flatbuffer)
    gpu = {"gpu_delegate": tflite_export.gpu_readiness(flatbuffer)}
    if precision not in ("int8", "dynamic"):
        return gpu
    mixed = {"keep_float": list(keep_float), "keep_float_reason": options.keep_float_reason or "requested",
             "io": "float (mixed precision: quantize and dequantize inside)"} if keep_float else {}
    return {**({"io": options.io} if precision == "int8" else {}), **mixed, **gpu,
            "weights": tflite_export.weight_census(flatbuffer)}


def _with_full_pixel_range(calibration: list, config) -> list:
    """Calibration for a raw-pixel (app) file: the first image gets one black and one white pixel, so the input's
    int8 range spans every byte an app can feed (scale 1/std) instead of whatever range the calibration images
    happen to reach; two pixels of one image leave every other range as it was."""
    first = np.array(calibration[0], copy=True)
    mean, std = np.asarray(config.mean, np.float32), np.asarray(config.std, np.float32)
    first[0, 0, 0], first[0, 0, 1] = (0 - mean) / std, (255 - mean) / std
    return [first, *calibration[1:]]


def _write_onnx(model, spec, precision, target: Path, options: ExportOptions, calibration, workdir: Path):
    from edgeface.export.onnx import mobile_ep_readiness

    source, onnx_opts = onnx_source(model, spec, precision, options, calibration, workdir)
    if options.io == APP_IO:
        import onnx

        app = app_ready_onnx(onnx.load(str(source)), spec.backbone_config.mean, spec.backbone_config.std,
                             [o["name"] for o in spec.card_outputs()], channels_first=options.nchw)
        onnx.save(app, str(target))
        onnx_opts = {**onnx_opts, "io": APP_IO}
    else:
        shutil.copyfile(source, target)
    return {**onnx_opts, "mobile_eps": mobile_ep_readiness(target)}


def _write_trt(model, spec, precision, target: Path, options: ExportOptions, calibration, workdir: Path):
    import edgeface.export.tensorrt as trt_export

    _dynamic_batch_only("trt", options)
    source, onnx_opts = onnx_source(model, spec, precision, options, calibration, workdir)
    cache = Path(options.timing_cache) if options.timing_cache else None
    trt_export.build_engine(source, target, spec.input_size, options.trt_batch, cache, nchw=options.nchw)
    return {**onnx_opts, "batch_profile_min_opt_max": list(options.trt_batch),
            "timing_cache": str(cache) if cache else None}


# One writer per row of the formats table (tests/test_formats.py checks they match). Each builds the artifact
# at a staging path and returns format-specific options for the card.
WRITERS = {"saved_model": _write_saved_model, "tflite": _write_tflite, "onnx": _write_onnx, "trt": _write_trt}


def onnx_source(model, spec, precision, options: ExportOptions, calibration, workdir: Path):
    """The ONNX model for a precision (fp32, fp16 or int8 QDQ), built once per export and shared by ONNX and
    TensorRT, with the options that describe it."""
    import edgeface.export.onnx as onnx_export

    opts = {"opset": options.opset, "layout": "NCHW" if options.nchw else "NHWC",
            "graph_passes": list(onnx_export.GRAPH_PASSES)}
    fp32 = workdir / "fp32.onnx"
    if not fp32.is_file():
        onnx_export.convert(model, spec.input_size, fp32, options.opset, options.nchw, options.fixed_batch)
    if precision == "fp32":
        return fp32, opts
    target = workdir / f"{precision}.onnx"
    if precision == "fp16":
        if not target.is_file():
            onnx_export.to_fp16(fp32, target)
        return target, {**opts, "conversion": "onnxconverter-common float16, float32 I/O kept"}
    if not target.is_file():
        onnx_export.quantize_int8(fp32, target, calibration, options.nchw, options.per_channel,
                                  options.calibration_method)
    return target, {**opts, "quantization": "QDQ static (ONNX Runtime)", "per_channel": options.per_channel,
                    "calibration_method": options.calibration_method}
