"""Export facade: `export(run, formats, precisions)` writes artifacts, model cards and parity results."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgeface.data import load_data
from edgeface.data.pipeline import load_images, normalize
from edgeface.errors import EdgefaceError
from edgeface.export.calibration import calibration_batches, find_manifest
from edgeface.export.card import build_card, card_path
from edgeface.export.formats import CALIBRATED, FORMATS, export_variants, is_all, qat_variants
from edgeface.export.parity import compare, describe_failure
from edgeface.export.runtimes import KerasRunner, load_runner
from edgeface.export.tflite import float_weights_warning
from edgeface.models import has_quantize_wrappers, load_model, task_key
from edgeface.utils import atomic_path, write_json

__all__ = ["export", "ExportOptions", "ExportResult", "FORMATS", "export_variants", "artifact_path"]
DEFAULT_OUTPUT = Path("export")


@dataclasses.dataclass
class ExportOptions:
    calibration: str | None = None  # manifest name under calibration/ or a path
    calibration_root: str | None = None
    calibration_limit: int | None = None
    io: str = "int8"  # full-integer TFLite I/O: int8 | uint8 | float
    opset: int = 17
    nchw: bool = False
    per_channel: bool = True  # per-tensor weights ruin depthwise convolutions (MobileNets) in int8
    calibration_method: str = "minmax"
    tolerances: dict = dataclasses.field(default_factory=dict)
    parity_images: int = 256
    parity_data: str | None = None  # dataset spec for parity images; default: the run's own data
    trt_batch: tuple = (1, 16, 64)
    timing_cache: str | None = None


@dataclasses.dataclass
class ExportResult:
    format: str
    precision: str
    path: Path
    card_path: Path
    parity: dict
    size_bytes: int

    @property
    def passed(self) -> bool:
        return self.parity["passed"]


def artifact_path(folder: Path, name: str, fmt: str, precision: str) -> Path:
    return Path(folder) / f"{name}-{fmt}-{precision}{FORMATS[fmt].suffix}"


def _parity_set(run: Path, spec, options: ExportOptions):
    """A fixed batch of real labelled images: the first N of the run's validation split (or --parity-data)."""
    data = options.parity_data
    if data is None:
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        data = config.get("data")
        if not data:
            raise EdgefaceError(f"{run}: no training config to find parity images; pass --parity-data SPEC")
        bundle = load_data(data, seed=config.get("seed", 0), fold=config.get("fold"), check=False, verbose=False)
    else:
        bundle = load_data(data, check=False, verbose=False)
    records = (bundle.splits.get("val") or bundle.splits.get("test") or [])[: options.parity_images]
    if not records:
        raise EdgefaceError(f"{data}: no validation images for the parity check")
    try:
        images = normalize(load_images([r.path for r in records], spec.input_size), spec.config)
    except Exception as err:
        raise EdgefaceError(f"{data}: cannot read parity images ({str(err).splitlines()[0][:120]}); "
                            "pass --parity-data SPEC")
    true_age = np.array([np.nan if r.age is None else r.age for r in records], np.float32)
    return images.astype(np.float32), true_age


def _tflite_io(runner) -> dict:
    def qparams(details):
        params = details["quantization_parameters"]
        return (float(params["scales"][0]), int(params["zero_points"][0])) if len(params["scales"]) else None

    dtype = np.dtype(runner.input_details["dtype"]).name
    out_dtype = {np.dtype(d["dtype"]).name for d in runner.outputs.values()}.pop()
    return {"input_dtype": dtype, "input_quantization": qparams(runner.input_details),
            "output_dtype": out_dtype,
            # keyed by task: a QAT model's signature names its outputs quant_gender, quant_age
            "output_quantization": {task_key(k): qparams(d) for k, d in runner.outputs.items()}
            if out_dtype != "float32"
            else None}


def _write_artifact(model, spec, fmt, precision, target: Path, options: ExportOptions, calibration, workdir: Path):
    """Builds one artifact at `target` (a temporary path); returns format-specific options for the card."""
    from edgeface.export import tflite as tflite_export

    if fmt == "saved_model":
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints every endpoint's signature
            model.export(str(target))
        return {}
    if fmt == "tflite":
        flatbuffer = tflite_export.convert(model, precision, calibration, options.io, qat=has_quantize_wrappers(model))
        target.write_bytes(flatbuffer)
        if precision not in ("int8", "dynamic"):
            return {}
        return {**({"io": options.io} if precision == "int8" else {}),
                "weights": tflite_export.weight_census(flatbuffer)}
    source, onnx_opts = _onnx_source(model, spec, precision, options, calibration, workdir)
    if fmt == "onnx":
        shutil.copyfile(source, target)
        return onnx_opts
    from edgeface.export import tensorrt as trt_export

    cache = Path(options.timing_cache) if options.timing_cache else None
    trt_export.build_engine(source, target, spec.input_size, options.trt_batch, cache, nchw=options.nchw)
    return {**onnx_opts, "batch_profile_min_opt_max": list(options.trt_batch),
            "timing_cache": str(cache) if cache else None}


def _onnx_source(model, spec, precision, options: ExportOptions, calibration, workdir: Path):
    """The ONNX model for a precision (fp32, fp16 or int8 QDQ), built once per export and shared by ONNX and
    TensorRT, with the options that describe it."""
    from edgeface.export import onnx as onnx_export

    opts = {"opset": options.opset, "layout": "NCHW" if options.nchw else "NHWC"}
    fp32 = workdir / "fp32.onnx"
    if not fp32.is_file():
        onnx_export.convert(model, spec.input_size, fp32, options.opset, options.nchw)
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


def export(run, formats=("tflite",), precisions=("fp32",), output_dir=None, options: ExportOptions | None = None,
           log=print) -> list[ExportResult]:
    """Exports a run (or .keras model) to each requested (format, precision) with a model card and parity check.

    Raises EdgefaceError after writing everything if any artifact fails its parity check."""
    options = options or ExportOptions()
    model, spec = load_model(run)
    run = Path(run) if Path(run).is_dir() else Path(run).parent
    variants = export_variants(formats, precisions)
    if any(FORMATS[f].needs_gpu for f, _ in variants):
        from edgeface.export.tensorrt import require_gpu

        require_gpu()
    folder = Path(output_dir) if output_dir else DEFAULT_OUTPUT / run.name
    manifest = None
    calibration = None
    qat = has_quantize_wrappers(model)  # quantization-aware runs carry their own int8 ranges
    if qat:
        variants = qat_variants(variants, explicit=not (is_all(formats) and is_all(precisions)))
    if any(p in CALIBRATED for _, p in variants) and (options.calibration or not qat):
        if not options.calibration:
            raise EdgefaceError("int8 export needs --calibration NAME (a manifest from `edgeface calibrate`, "
                                "e.g. utkface-train-300)")
        manifest = find_manifest(options.calibration)
        log(f"calibration: {manifest.path} ({len(manifest.images)} images)")
        calibration = calibration_batches(manifest, spec, options.calibration_root, options.calibration_limit)
    parity_images, true_age = _parity_set(run, spec, options)
    reference = KerasRunner(model).predict(parity_images)
    metrics = _run_metrics(run)
    results, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for fmt, precision in variants:
            path = artifact_path(folder, run.name, fmt, precision)
            log(f"exporting {fmt} {precision} -> {path}")
            staging = workdir / ("staged" + FORMATS[fmt].suffix)
            try:
                fmt_options = _write_artifact(model, spec, fmt, precision, staging, options, calibration, workdir)
            except EdgefaceError:
                raise
            except Exception as err:  # converter failures are reported per artifact, not as tracebacks
                raise EdgefaceError(f"{fmt} {precision} export failed: {type(err).__name__}: "
                                    f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}")
            runner = load_runner(staging)
            parity = compare(reference, runner.predict(parity_images), spec, precision, true_age, options.tolerances)
            io_details = _tflite_io(runner) if fmt == "tflite" else {}
            card_kwargs = dict(fmt=fmt, precision=precision, runtime=FORMATS[fmt].runtime, spec=spec, run=run,
                               parameters=int(model.count_params()),
                               layout="NCHW" if options.nchw and fmt in ("onnx", "trt") else "NHWC",
                               calibration=manifest.describe() if manifest and precision in CALIBRATED else None,
                               metrics={**metrics, "parity_vs_keras": parity}, options=fmt_options, **io_details)
            _install(staging, path, fmt, card_kwargs)
            card = build_card(artifact=path, **card_kwargs)
            card["model"]["spec"] = spec.to_dict()
            card_file = card_path(path)
            write_json(card_file, card)
            result = ExportResult(fmt, precision, path, card_file, parity, card["artifact"]["size_bytes"])
            results.append(result)
            status = "parity ok" if parity["passed"] else f"PARITY FAILED: {describe_failure(parity)}"
            log(f"  {result.size_bytes / 1024:.0f} KiB, {status}")
            # dynamic-range files compute in float by design; only full-integer ones promise integer-only kernels
            warning = precision == "int8" and "weights" in fmt_options and float_weights_warning(fmt_options["weights"])
            if warning:
                log(f"  {warning}")
            if not parity["passed"]:
                failures.append(f"{path.name}: {describe_failure(parity)}")
    if failures:
        raise EdgefaceError(f"parity check failed for {'; '.join(failures)} (artifacts and cards kept for "
                            "inspection; loosen with --tolerance KEY=VALUE if intended)")
    return results


def _install(staging: Path, path: Path, fmt: str, card_kwargs: dict) -> None:
    """Moves a finished artifact into place atomically; TFLite files get the model card embedded first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "saved_model":
        if path.exists():
            shutil.rmtree(path)
        shutil.move(str(staging), str(path))
        return
    data = staging.read_bytes()
    if fmt == "tflite":
        from edgeface.export.tflite import embed_model_card

        embedded = build_card(artifact=staging, **card_kwargs)
        embedded["artifact"].update(file=path.name, sha256=None)  # a file cannot carry its own hash
        plain = data
        while True:  # the size written into the card must be the size of the file that carries it
            data = embed_model_card(plain, embedded)
            if embedded["artifact"]["size_bytes"] == len(data):
                break
            embedded["artifact"]["size_bytes"] = len(data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _run_metrics(run: Path) -> dict:
    """Keras-model metrics already measured for the run: validation (training) and any test evaluations."""
    out = {}
    if (run / "metrics.json").is_file():
        out["keras_val"] = _headline(json.loads((run / "metrics.json").read_text()))
    for file in sorted(run.glob("eval-*-test.json")):
        out[f"keras_{file.stem.removeprefix('eval-')}"] = _headline(json.loads(file.read_text()))
    return out


def _headline(report: dict) -> dict:
    out = {"split": report.get("split"), "n": report.get("n")}
    if "gender" in report:
        out.update(gender_accuracy=report["gender"].get("accuracy"),
                   gender_balanced_accuracy=report["gender"].get("balanced_accuracy"))
    if "age" in report:
        out.update({f"age_{k}": report["age"][k] for k in ("mae", "group_accuracy") if k in report["age"]})
    return out
