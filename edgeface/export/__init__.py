"""Export facade: `export(run, formats, precisions)` writes artifacts, each with its model card (built once,
embedded where the format allows) and a parity check against the run's Keras model.

    the formats table      edgeface.runtime.formats (writers here, runners in runtime/, CLI choices, card enums)
    tflite / onnx / tensorrt   one writer per format; calibration: versioned int8 calibration manifests
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydantic

from edgeface.card import PARITY_KEYS, build_card, card_path, seal
from edgeface.config import Config
from edgeface.data.images import load_images, normalize
from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.export.app import APP_FORMATS, APP_IO, app_ready_onnx, app_tflite
from edgeface.export.calibration import calibration_batches, find_manifest
from edgeface.export.ptq import PtqCorrections
from edgeface.export.tflite import float_weights_warning
from edgeface.models import has_quantize_wrappers
from edgeface.run import Run
from edgeface.runtime import KerasRunner, open_runner
from edgeface.runtime.formats import CALIBRATED, FORMATS, check_tolerances, export_variants, is_all, qat_variants
from edgeface.runtime.parity import compare, describe as describe_parity, describe_failure
from edgeface.utils import scratch_dir, write_json

__all__ = ["export", "export_run", "ExportOptions", "ExportResult", "FORMATS", "export_variants", "artifact_path",
           "PtqCorrections"]
DEFAULT_OUTPUT = Path("export")
log = logging.getLogger(__name__)


class ExportOptions(Config):
    """How `export` writes and checks artifacts; typed like TrainConfig (a wrong key or type is one line)."""

    calibration: str | None = None  # manifest name under calibration/ or a path
    calibration_root: str | None = None
    calibration_limit: int | None = None
    io: str = "int8"  # full-integer TFLite I/O: int8 | uint8 | float, or "app" (edgeface.export.app)
    opset: int = 17
    nchw: bool = False
    per_channel: bool = True  # per-tensor weights ruin depthwise convolutions (MobileNets) in int8
    calibration_method: str = "minmax"
    tolerances: dict = {}
    parity_images: int = 256
    parity_data: str | None = None  # dataset spec for parity images; default: the run's own validation split
    trt_batch: tuple[int, int, int] = (1, 16, 64)
    fixed_batch: int | None = None  # a fixed batch size in TFLite and ONNX files (an app runs batch 1); None: dynamic
    timing_cache: str | None = None
    # Keras layers left float in int8 TFLite (mixed precision), and why; export() also takes "a,b" or "auto" (the
    # fewest layers that bring int8 within tolerance of float, edgeface.export.sensitivity.auto_keep_float)
    keep_float: tuple[str, ...] | str = ()
    keep_float_reason: str = ""
    corrections: PtqCorrections = PtqCorrections()  # before post-training int8 TFLite

    @pydantic.field_validator("tolerances", mode="before")
    @classmethod
    def _tolerances(cls, value):
        return check_tolerances(value)

    @pydantic.field_validator("fixed_batch")
    @classmethod
    def _fixed_batch(cls, value):
        if value is not None and value < 1:
            raise EdgefaceError(f"--fixed-batch {value}: a batch size is at least 1")
        return value


@dataclasses.dataclass
class ExportResult:
    format: str
    precision: str
    path: Path
    card_path: Path | None = None
    parity: dict | None = None
    size_bytes: int | None = None
    error: str = ""  # the export itself failed (nothing installed)
    source: Path | None = None  # the artifact this one was rewritten from (the app form of an exported file)

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.parity and self.parity["passed"])


def artifact_path(folder: Path, name: str, fmt: str, precision: str) -> Path:
    return Path(folder) / f"{name}-{fmt}-{precision}{FORMATS[fmt].suffix}"


def _parity_set(run: Run, spec, options: ExportOptions):
    """A fixed batch of real labelled images: N of the run's recorded validation split (or of --parity-data's),
    stratified by gender x age group. Not the first N: split files are sorted by name, and UTKFace names start
    with the age, so the first 256 were centenarians and children, where gender is hardest and int8 flips most."""
    from edgeface.data import stratified_subset

    if options.parity_data is None:
        records = run.split("val")
        source = f"{run.path} (splits/val.txt)"
    else:
        from edgeface.data import load_data

        bundle = load_data(options.parity_data, check=False, verbose=False)
        records = bundle.splits.get("val") or bundle.splits.get("test") or []
        source = options.parity_data
    records = stratified_subset(records, options.parity_images, seed=0)
    if not records:
        raise EdgefaceError(f"{source}: no validation images for the parity check; pass --parity-data SPEC")
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
    from edgeface.export import tflite as tflite_export

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

    source, onnx_opts = _onnx_source(model, spec, precision, options, calibration, workdir)
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
    from edgeface.export import tensorrt as trt_export

    _dynamic_batch_only("trt", options)
    source, onnx_opts = _onnx_source(model, spec, precision, options, calibration, workdir)
    cache = Path(options.timing_cache) if options.timing_cache else None
    trt_export.build_engine(source, target, spec.input_size, options.trt_batch, cache, nchw=options.nchw)
    return {**onnx_opts, "batch_profile_min_opt_max": list(options.trt_batch),
            "timing_cache": str(cache) if cache else None}


# One writer per row of the formats table (tests/test_formats.py checks they match). Each builds the artifact
# at a staging path and returns format-specific options for the card.
WRITERS = {"saved_model": _write_saved_model, "tflite": _write_tflite, "onnx": _write_onnx, "trt": _write_trt}


def _onnx_source(model, spec, precision, options: ExportOptions, calibration, workdir: Path):
    """The ONNX model for a precision (fp32, fp16 or int8 QDQ), built once per export and shared by ONNX and
    TensorRT, with the options that describe it."""
    from edgeface.export import onnx as onnx_export

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
    training = _training(run, which)
    metrics = _run_metrics(run)
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
                vectors, fmt_options["test_vectors"] = _vectors(staged, runner, spec, spec.backbone_config, spec.decodings())
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
            _install(staged, path, card, [vectors])
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


def _vectors(staged: Path, runner, spec, normalization, decodings: dict) -> tuple[Path, dict]:
    """Writes NAME.vectors.json beside the staged artifact; returns it and the card's record of it."""
    import edgeface.golden as golden

    file = golden.vectors_path(staged)
    with tempfile.TemporaryDirectory(dir=staged.parent) as scratch:
        vectors = golden.compute(runner, normalization, decodings, spec.input_size, Path(scratch))
    sha = golden.write(file, golden.document(staged.name, vectors))
    return file, {"file": file.name, "sha256": sha, "images": len(vectors)}


def _write_sums(folder: Path, files: list[Path]) -> None:
    """SHA256SUMS in the output folder, `sha256sum -c` format: the plain hash of each shipped file (the card's
    artifact.sha256 is a content hash that leaves the embedded card out)."""
    from edgeface.utils import atomic_path, sha256_file

    sums = folder / "SHA256SUMS"
    entries = {}
    if sums.is_file():
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if name and (folder / name).exists():
                entries[name] = digest
    for file in files:
        if file.is_file():
            entries[file.name] = sha256_file(file)
    with atomic_path(sums) as tmp:
        tmp.write_text("".join(f"{d}  {n}\n" for n, d in sorted(entries.items())))


def _install(staged: Path, path: Path, card: dict, extras: list = ()) -> None:
    """Installs the new artifact, its card and extras (test vectors) over any previous ones. Everything is first
    copied into a staging folder inside the destination folder (same filesystem), so a full disk or a kill while
    copying leaves the previous verified files untouched; then each file is renamed into place (atomic), and
    SHA256SUMS is updated. An interrupted swap can only leave a card whose hash does not match, which every load
    refuses. A failure names the output folder."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with scratch_dir(folder) as where:
            moves = []
            for source in (staged, *extras):
                target = where / source.name
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copyfile(source, target)
                moves.append((target, folder / source.name))
            new_card = where / card_path(path).name
            write_json(new_card, card)
            moves.append((new_card, card_path(path)))
            for source, target in moves:
                if target.is_dir() and not source.is_dir():
                    shutil.rmtree(target)
                if source.is_dir() and target.exists():
                    old = where / f"{target.name}.old"
                    os.replace(target, old)
                os.replace(source, target)
        _write_sums(folder, [target for _, target in moves])
    except OSError as err:
        raise EdgefaceError(f"{folder}: cannot write the export there ({err.strerror or err}); any previous "
                            f"{path.name} and its card are unchanged") from None


def _training(run: Run, which: str = "best") -> dict:
    """The card's training section: data, split, counts and lineage, read from the run; the run is recorded by
    where it was (`run`, as given) and by content (`run_model`: the exported model file's sha256), so `verify`
    can tell the parent found elsewhere, or changed since, from the one exported."""
    data, cfg = run.data_info, run.config
    model = run.info.get("models", {}).get(which, {})
    return {"data": data.get("spec") or cfg.data, "split": data.get("split"), "counts": data.get("counts"),
            "run": str(run.path), "run_absolute": str(run.path.resolve()),
            "run_model": {"file": model.get("file"), "sha256": model.get("sha256")},
            "parents": list(cfg.parents), "compression": cfg.compression or {}}


def _run_metrics(run: Run) -> dict:
    """Keras-model metrics already measured for the run: validation (training) and any test evaluations."""
    out = {}
    if run.metrics is not None:
        out["keras_val"] = _headline(run.metrics)
    for stem, report in run.eval_reports("test").items():
        out[f"keras_{stem.removeprefix('eval-')}"] = _headline(report)
    return out


def _headline(report: dict) -> dict:
    out = {"split": report.get("split"), "n": report.get("n")}
    if "gender" in report:
        out.update(gender_accuracy=report["gender"].get("accuracy"),
                   gender_balanced_accuracy=report["gender"].get("balanced_accuracy"))
    if "age" in report:
        out.update({f"age_{k}": report["age"][k] for k in ("mae", "group_accuracy") if k in report["age"]})
    return out


def export_app(artifact, output_dir=None, parity_data: str | None = None, parity_images: int = 256,
               tolerances: dict | None = None) -> ExportResult:
    """An exported int8 TFLite or ONNX artifact rewritten to the app form (edgeface.export.app) without its run:
    the integer arithmetic inside is kept bit for bit, parity is checked against the source artifact on real
    labelled images (the card's training data, or `parity_data`), and the new card records the source."""
    import onnx

    from edgeface.data import load_data, stratified_subset
    from edgeface.models import ModelSpec
    from edgeface.predictor import load

    tolerances = check_tolerances(tolerances)
    artifact = Path(artifact)
    source = load(artifact)  # verified: card, hash, contract
    card = source.card
    if card["input"].get("encoding") == "raw_pixels":
        raise EdgefaceError(f"{artifact}: already in the app form")
    fmt, precision = card["artifact"]["format"], card["artifact"]["precision"]
    spec = ModelSpec(**card["model"]["spec"])
    folder = Path(output_dir) if output_dir else artifact.parent
    path = folder / f"{artifact.name.removesuffix(artifact.suffix)}-app{artifact.suffix}"
    spec_data = parity_data or card["training"]["data"]
    try:
        bundle = load_data(spec_data, check=False, verbose=False)
    except EdgefaceError as err:
        raise EdgefaceError(f"{err}; pass --parity-data SPEC (labelled images for the parity check)") from None
    records = stratified_subset(bundle.splits.get("val") or bundle.splits.get("test") or [], parity_images, seed=0)
    if not records:
        raise EdgefaceError(f"{spec_data}: no validation images for the parity check; pass --parity-data SPEC")
    images = load_images([r.path for r in records], spec.input_size)
    true_age = label_arrays(records)[1]
    order = [o["name"] for o in card["outputs"]]
    folder.mkdir(parents=True, exist_ok=True)
    with scratch_dir(folder) as staging:  # beside the destination
        staged = Path(staging) / path.name
        if fmt == "tflite" and precision == "int8":
            staged.write_bytes(app_tflite(artifact.read_bytes(), source.normalization, spec.input_size,
                                          card["outputs"], path.name))
        elif fmt == "onnx":
            model = app_ready_onnx(onnx.load(str(artifact)), source.normalization.mean, source.normalization.std,
                                   order, channels_first=card["input"]["layout"] == "NCHW")
            onnx.save(model, str(staged))
        else:
            raise EdgefaceError(f"{artifact}: the app form is made from int8 TFLite or ONNX, not {fmt} {precision}")
        runner = open_runner(staged, pixels=source.normalization)
        parity = compare(source.outputs(images), runner.predict(source.preprocess(images)), source.decodings,
                         precision, true_age, tolerances)
        options = {**card["artifact"].get("options", {}), "io": APP_IO,
                   "source": {"file": artifact.name, "sha256": card["artifact"]["sha256"],
                              "sha256_of": card["artifact"]["sha256_of"]}}
        vectors, options["test_vectors"] = _vectors(staged, runner, spec, source.normalization, source.decodings)
        training = {**card["training"], "parents": [*card["training"].get("parents", []), artifact.name]}
        new = seal(staged, build_card(
            file_name=path.name, fmt=fmt, precision=precision, runtime=card["artifact"]["runtime"], spec=spec,
            parameters=card["model"]["parameters"], io=runner.io(), training=training,
            layout=card["input"]["layout"], calibration=card["calibration"],
            metrics={**{("source_" + k if k in PARITY_KEYS else k): v for k, v in card["metrics"].items()},
                     "parity_vs_source": {**parity, "images": f"{len(records)} of {spec_data}"}},
            options=options, raw_pixels=True))
        _install(staged, path, new, [vectors])
    return ExportResult(fmt, precision, path, card_path(path), parity, new["artifact"]["size_bytes"], source=artifact)
