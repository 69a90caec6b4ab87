"""A run exported to every asked format and precision (`export_run`), each checked for parity against the run's
Keras model; `export` raises when any failed, resolves `keep_float="auto"` and takes an exported file for its app
form."""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from edgeface.card import build_card, card_path, seal
from edgeface.data.images import load_images, normalize
from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.export.app import APP_FORMATS, APP_IO
from edgeface.export.app_form import export_app
from edgeface.export.calibration import calibration_batches, find_manifest
from edgeface.export.install import install, write_vectors
from edgeface.export.options import (
    DEFAULT_OUTPUT,
    ExportOptions,
    ExportResult,
    artifact_path,
)
from edgeface.export.parity_images import parity_records
from edgeface.export.provenance import run_metrics, training_record
from edgeface.export.tflite import float_weights_warning
from edgeface.export.writers import WRITERS
from edgeface.models import has_quantize_wrappers
from edgeface.run import Run
from edgeface.runtime import KerasRunner, open_runner
from edgeface.runtime.formats import (
    CALIBRATED,
    FORMATS,
    export_variants,
    is_all,
    qat_variants,
)
from edgeface.runtime.parity import compare, describe_failure
from edgeface.runtime.parity import describe as describe_parity
from edgeface.utils import scratch_dir

log = logging.getLogger(__name__)


def _parity_set(run: Run, spec, options: ExportOptions):
    """A fixed batch of real labelled images: N of the run's recorded validation split (or of --parity-data's),
    stratified by gender x age group. Not the first N: split files are sorted by name, and UTKFace names start
    with the age, so the first 256 were centenarians and children, where gender is hardest and int8 flips most."""
    if options.parity_data is None:
        from edgeface.data import stratified_subset

        source = f"{run.path} (splits/val.txt)"
        records = stratified_subset(run.split("val"), options.parity_images, seed=0)
        if not records:
            raise EdgefaceError(f"{source}: no validation images for the parity check; pass --parity-data SPEC")
    else:
        source = options.parity_data
        records = parity_records(options.parity_data, options.parity_images)
    try:
        images = normalize(load_images([r.path for r in records], spec.input_size), spec.backbone_config)
    except Exception as err:
        raise EdgefaceError(f"{source}: cannot read parity images ({str(err).splitlines()[0][:120]}); "
                            "pass --parity-data SPEC")
    return images.astype(np.float32), label_arrays(records)[1]


def _open(source) -> tuple[Run, str]:
    """(run, which model) for a run folder or the best/last model file inside one."""
    source = Path(source)
    if source.is_file() and Run.is_run(source.parent) and source.stem in ("best", "last"):
        return Run.open(source.parent), source.stem
    if not source.exists():
        raise EdgefaceError(f"{source}: no such run folder")
    run = Run.open(source, finished=True)
    why = run.unfinished()
    if why:  # its card would carry no final metrics, or a best model that may still change
        raise EdgefaceError(f"{source}: {why}; to export its best model so far anyway, pass {source / 'best.keras'}")
    return run, "best"


def _ptq_model(model, variants, options: ExportOptions, qat: bool, calibration):
    """The model post-training int8 TFLite is converted from, and the records of its corrections (None when
    none was asked)."""
    if not options.corrections:
        return model, None
    if qat or ("tflite", "int8") not in variants or not calibration:
        raise EdgefaceError(f"{options.corrections.flags()} corrects post-training int8 TFLite: use --format tflite "
                            "--precision int8 --calibration NAME on a float (not quantization-aware) run")
    return options.corrections.apply(model, np.concatenate(calibration))


def export_run(source, formats=("tflite",), precisions=("fp32",), output_dir=None,
               options: ExportOptions | None = None, variants: list | None = None) -> list[ExportResult]:
    """Exports a run (or its best/last model file) to each requested (format, precision), or to the given
    (format, precision) `variants`. Every variant gets a result: installed with its card and parity check, or
    `error` set when conversion failed. The fp32 ONNX model is converted once and reused for fp16, int8 and
    TensorRT."""
    from edgeface.runtime.tensorrt import cuda_available

    options = options or ExportOptions()
    gpu, why = cuda_available()
    asked = {f for f, _ in variants} if variants is not None else (set() if is_all(formats) else set(formats))
    if not gpu and any(f in FORMATS and FORMATS[f].needs_gpu for f in asked):  # before anything slow
        raise EdgefaceError(f"TensorRT export needs an NVIDIA GPU with CUDA: {why}")
    if not gpu and variants is None and is_all(formats):
        log.info(f"trt skipped: {why}")
    run, which = _open(source)
    variants = list(variants) if variants is not None else export_variants(formats, precisions, gpu)
    model, spec = run.load_model(which), run.spec
    folder = Path(output_dir) if output_dir else DEFAULT_OUTPUT / run.name
    manifest = calibration = calibration_error = None
    qat = has_quantize_wrappers(model)  # quantization-aware runs carry their own int8 ranges
    if qat:
        try:
            variants = qat_variants(variants, explicit=not (is_all(formats) and is_all(precisions)))
        except EdgefaceError as err:
            parent = run.lineage[0] if run.lineage else "its parent run"
            raise EdgefaceError(f"{run.path}: {err} ({parent})") from None
    if any(p in CALIBRATED for _, p in variants) and (options.calibration or not qat):
        try:  # a calibration problem fails the calibrated variants only
            if not options.calibration:
                raise EdgefaceError("int8 export needs --calibration NAME (a manifest from `edgeface calibrate`, "
                                    "e.g. utkface-train-300)")
            manifest = find_manifest(options.calibration)
            log.info(f"calibration: {manifest.path} ({len(manifest.images)} images)")
            calibration = calibration_batches(manifest, spec, options.calibration_root, options.calibration_limit)
        except EdgefaceError as err:
            calibration_error = str(err)
    ptq_model, ptq_records = _ptq_model(model, variants, options, qat, calibration)
    parity_images, true_age = _parity_set(run, spec, options)
    reference = KerasRunner(model).predict(parity_images)
    training = training_record(run, which)
    metrics = run_metrics(run)
    results = []

    def failed(fmt, precision):
        """Progress only: each failure's reason is in its ExportResult, which the caller reports once."""
        if len(variants) > 1:
            log.info(f"  {fmt} {precision}: not exported (the reason is reported at the end)")

    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(scratch_dir(folder))  # beside the output: one a kill left goes next time
        for fmt, precision in variants:
            path = artifact_path(folder, run.name, fmt, precision)
            if calibration_error and precision in CALIBRATED:
                results.append(ExportResult(fmt, precision, path, error=calibration_error))
                failed(fmt, precision)
                continue
            if options.io == APP_IO and fmt not in APP_FORMATS:
                error = f"--io app (raw pixels in) is made for tflite and onnx, not {fmt}"
                results.append(ExportResult(fmt, precision, path, error=error))
                failed(fmt, precision)
                continue
            log.info(f"exporting {fmt} {precision} -> {path}")
            staging = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=workdir)))
            staged = staging / path.name
            try:
                corrected = ptq_records is not None and (fmt, precision) == ("tflite", "int8")
                fmt_options = WRITERS[fmt](ptq_model if corrected else model, spec, precision, staged, options,
                                           calibration, workdir)
                if corrected:
                    fmt_options["ptq_corrections"] = ptq_records
                app = options.io == APP_IO
                runner = open_runner(staged, pixels=spec.backbone_config if app else None)
                parity = compare(reference, runner.predict(parity_images), spec.decodings(), precision, true_age,
                                 options.tolerances)
                vectors, fmt_options["test_vectors"] = write_vectors(staged, runner, spec, spec.backbone_config, spec.decodings())
                card = seal(staged, build_card(
                    file_name=path.name, fmt=fmt, precision=precision, runtime=FORMATS[fmt].runtime, spec=spec,
                    parameters=int(model.count_params()), io=runner.io(), training=training,
                    layout="NCHW" if options.nchw and fmt in ("onnx", "trt") else "NHWC",
                    calibration=manifest.describe() if manifest and precision in CALIBRATED else None,
                    metrics={**metrics, "parity_vs_keras": parity}, options=fmt_options, raw_pixels=app))
            except EdgefaceError as err:
                results.append(ExportResult(fmt, precision, path, error=str(err)))
                failed(fmt, precision)
                continue
            except Exception as err:  # converter failures are reported per artifact, not as tracebacks
                text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
                results.append(ExportResult(fmt, precision, path, error=f"{type(err).__name__}: {text}"))
                failed(fmt, precision)
                continue
            install(staged, path, card, [vectors])
            result = ExportResult(fmt, precision, path, card_path(path), parity, card["artifact"]["size_bytes"])
            results.append(result)
            status = ("parity ok: " if parity["passed"] else "PARITY FAILED: ") + describe_parity(parity)
            log.info(f"  {result.size_bytes / 1024:.0f} KiB, {status}")
            # dynamic-range files compute in float by design; only full-integer ones promise integer-only kernels,
            # unless layers were kept float on purpose (--keep-float), which the card records
            warning = precision == "int8" and "weights" in fmt_options and not fmt_options.get("keep_float") \
                and float_weights_warning(fmt_options["weights"])
            if warning:
                log.warning(warning)
            elif fmt_options.get("keep_float"):
                log.info(f"  float layers: {', '.join(fmt_options['keep_float'])} "
                         f"({100 * fmt_options['weights']['float32_share']:.0f}% of the weight bytes)")
    return results


def export(run, formats=("tflite",), precisions=("fp32",), output_dir=None,
           options: ExportOptions | None = None) -> list[ExportResult]:
    """`export_run`, raising EdgefaceError (after installing everything that converted) when any variant failed
    to convert or failed its parity check. `options.keep_float` may be "auto" or comma-separated layers. `run`
    may instead be an exported int8 .tflite / .onnx file with `options.io == "app"`: its app form (`export_app`;
    formats and precisions are the file's own)."""
    options = options or ExportOptions()
    if Path(run).is_file() and Path(run).suffix in {FORMATS[f].suffix for f in APP_FORMATS}:
        if options.io != APP_IO:
            raise EdgefaceError(f"{run}: an exported artifact can only be re-exported with --io app (a run folder "
                                "exports to every other form)")
        results = [export_app(run, output_dir, options.parity_data, options.parity_images, options.tolerances)]
    else:
        options = _resolve_keep_float(run, formats, precisions, options)
        results = export_run(run, formats, precisions, output_dir, options)
    failures = [f"{r.format} {r.precision}: {r.error}" for r in results if r.error]
    failures += [f"{r.path.name}: {describe_failure(r.parity)}" for r in results if not r.error and not r.passed]
    if failures:
        kept = " (artifacts and cards kept for inspection; loosen with --tolerance KEY=VALUE if intended)" \
            if any(not r.error for r in results if not r.passed) else ""
        raise EdgefaceError(f"export failed for {'; '.join(failures)}{kept}")
    return results


def _resolve_keep_float(run, formats, precisions, options: ExportOptions) -> ExportOptions:
    """keep_float given as text ("a,b", or "auto": searched on the run's validation split) -> layer names and the
    reason the card records."""
    if not isinstance(options.keep_float, str):
        return options
    from edgeface.export.sensitivity import keep_float_options

    if set(formats) != {"tflite"} or set(precisions) != {"int8"}:
        raise EdgefaceError("--keep-float makes a mixed-precision int8 TFLite file: use --format tflite "
                            "--precision int8")
    if not options.calibration:
        raise EdgefaceError("--keep-float needs --calibration NAME (post-training int8)")
    layers, reason = keep_float_options(run, options.keep_float, options.calibration, options.calibration_root,
                                        options.corrections)
    return options.replace(keep_float=layers, keep_float_reason=reason)
