"""The `edgeface` command: each subcommand parses flags, calls one library function and prints."""
from __future__ import annotations

import functools
import json
import logging
import sys
import warnings
from pathlib import Path

import click

from edgeface import termination
from edgeface.config import choices
from edgeface.data import DATASETS
from edgeface.errors import EdgefaceError
from edgeface.recipes import SMOKE, names as recipe_names
from edgeface.run.compression import (ChannelNorm, Distillation, Magnitude, PruneMethod, PruneSchedule, Structured,
                                     default)
from edgeface.runtime.formats import FORMATS, IO_CHOICES, ONNX_CALIBRATION_METHODS, PRECISIONS
from edgeface.version import __version__


class _EchoHandler(logging.Handler):
    """Library messages (stdlib logging) as the CLI shows them: information on stdout, warnings and errors on
    stderr with their level, resolved at emit time so click's test runner captures them too."""

    def emit(self, record):
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            click.echo(f"{record.levelname.lower()}: {text}", err=True)
        else:
            click.echo(text)


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("edgeface")
    logger.handlers[:] = [_EchoHandler()]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False  # TensorFlow's absl gives the root logger a handler of its own: shown once, here


def user_errors(fn):
    """Turns EdgefaceError (a user mistake) and file-system failures (disk full, read-only folder) into one line
    on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = lambda message, *a, **k: click.echo(f"warning: {message}", err=True)
        termination.install()
        try:
            return fn(*args, **kwargs)
        except EdgefaceError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            click.echo(f"error: {where}{err.strerror or err}", err=True)
            sys.exit(2)
        except termination.Terminated as stop:
            termination.exit_now(stop.code)  # cleanup has run; shutdown would join blocked worker threads

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="edgeface")
@click.option("--verbose", is_flag=True, help="Also show debug messages.")
def main(verbose):
    """edgeface: face gender/age models from training to small, verified edge artifacts."""
    _setup_logging(verbose)


def entry():
    """The console script: TensorFlow's and LiteRT's known C++ start-up chatter is kept off stderr unless
    --verbose (edgeface.native_stderr), then the command runs."""
    from edgeface.native_stderr import quiet_unless_verbose

    quiet_unless_verbose()
    main()


def _option_group(*options):
    """One decorator for options several commands share, in the order --help lists them."""
    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


_data_options = _option_group(
    click.option("--data", help="Dataset KIND:PATH, KIND one of "
                                + ", ".join(k for k in DATASETS if k != "synthetic")
                                + " (README: Datasets; mix:FILE.yaml is several at once), or synthetic[:N]."),
    click.option("--fold", type=int, help="Adience: hold out this fold (0-4)."),
    click.option("--limit", type=int, help="Cap every split at N images (stratified) for quick runs."),
    click.option("--seed", type=int, help="Seed for splits, shuffling and augmentation."),
    click.option("--allow-outside-root", is_flag=True, default=None,
                 help="Let a csv manifest name images outside its own folder."),
)


def _ptq_options(fn):
    """The post-training int8 corrections (edgeface.export.ptq), handed to the command as one `corrections`."""
    @functools.wraps(fn)
    def wrapper(*args, equalize, adaround, bias_correction, **kwargs):
        from edgeface.export.ptq import PtqCorrections

        return fn(*args, corrections=PtqCorrections(equalize, adaround, bias_correction), **kwargs)

    return _option_group(
        click.option("--equalize", type=click.Choice(["bound", "replace"]), is_flag=False, flag_value="bound",
                     help="Cross-layer equalization before post-training int8 TFLite (Nagel et al. 2019): bound (the "
                          "default) keeps ReLU6 and bounds the scales with the calibration images; replace turns the "
                          "ReLU6 between equalized layers into ReLU (the paper's way; changes the float model)."),
        click.option("--adaround", is_flag=True,
                     help="Learn each weight's int8 rounding on the calibration images (AdaRound, Nagel et al. "
                          "2020) instead of rounding to nearest; minutes per model."),
        click.option("--bias-correction", is_flag=True,
                     help="Remove each layer's mean output shift against float, measured on the calibration "
                          "images, through its bias (empirical bias correction, Nagel et al. 2019)."),
    )(wrapper)


class _LazyChoice(click.Choice):
    """A Choice whose values come from the library (their one owner) when first needed, so building the CLI
    does not import TensorFlow."""

    def __init__(self, values):
        self._values, self._choices = values, None
        super().__init__((), case_sensitive=True)

    @property
    def choices(self):
        if self._choices is None:
            self._choices = tuple(self._values())
        return self._choices

    @choices.setter
    def choices(self, value):  # click's __init__ assigns; the values come from the library instead
        pass


def _detectors() -> tuple:
    from edgeface.detect import DETECTORS

    return DETECTORS


def _choices(name: str) -> click.Choice:
    """A config key's allowed values, from the typed config."""
    def values():
        from edgeface.run.train_config import TrainConfig

        return choices(TrainConfig.model_fields[name].annotation)

    return _LazyChoice(values)


def _age_heads(in_years: bool = False) -> click.Choice:
    """The registered age heads (`in_years`: those a student may switch between, models.age_heads)."""
    def values():
        from edgeface.models.age_heads import AGE_HEADS

        return [name for name, head in AGE_HEADS.items() if head.needs_years or not in_years]

    return _LazyChoice(values)


# The config file, built-in recipe and flag overrides that train and tune share.
_recipe_options = _option_group(
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML or JSON config file."),
    click.option("--recipe", type=_LazyChoice(recipe_names),
                 help="Built-in recipe (train without --data or --config runs the smoke recipe on synthetic "
                      "faces; tune needs --data)."),
    _data_options,
    click.option("--name", help="Run folder name under --runs-dir (default: BACKBONE-SIZE, numbered if taken)."),
    click.option("--runs-dir", help="Parent folder of run folders (default: runs)."),
    click.option("--backbone", help="Registered backbone (see `edgeface backbones`)."),
    click.option("--input-size", type=int, help="Square input size in pixels."),
    click.option("--alpha", type=float, help="Width multiplier (MobileNets)."),
    click.option("--tasks", help="Comma-separated heads: gender,age."),
    click.option("--age-head", type=_age_heads()),
    click.option("--weights", help="imagenet | none | PATH to a weights file."),
    click.option("--weights-dir", help="Folder searched first for ImageNet weight files."),
    click.option("--epochs", type=int),
    click.option("--batch-size", type=int),
    click.option("--lr", type=float),
    click.option("--optimizer", type=_choices("optimizer")),
    click.option("--schedule", type=_choices("schedule")),
    click.option("--freeze-epochs", type=int, help="Phase 1: epochs with the backbone frozen."),
    click.option("--unfreeze-from", type=int, help="Phase 2: backbone layers from this index on train."),
    click.option("--strategy", type=_choices("strategy")),
    click.option("--mixed-precision/--no-mixed-precision", default=None, help="float16 compute (GPUs)."),
    click.option("--dedup/--no-dedup", default=None, help="Drop byte-identical duplicate images."),
    click.option("--set", "assignments", multiple=True, help="Any config key, dotted for nested ones: --set "
                                                             "label_smoothing=0.1, --set augment.mixup=0.2, --set "
                                                             "model.dropout=0.3."),
)


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgefaceError(f"{option} {text}: expected comma-separated integers, e.g. 0,1,2") from None


@main.command()
@_recipe_options
@click.option("--resume", is_flag=True, help="Continue the run named by --name where it stopped (any run: "
                                              "trained, distilled, pruned or QAT; its folder has every setting).")
@click.option("--cross-validate", is_flag=True, help="Adience 5-fold protocol: a run per held-out fold, "
                                                      "then mean ± std (finished folds are kept on re-run).")
@click.option("--seeds", help="Comma-separated seeds, e.g. 0,1,2: a run per seed under runs/NAME/seedS, then "
                              "mean ± std of their validation metrics (finished seeds are kept on re-run).")
@user_errors
def train(config_file, recipe, resume, cross_validate, seeds, assignments, tasks, **flags):
    """Train a multi-task gender/age model; writes runs/NAME/."""
    from edgeface.recipes import command_config
    from edgeface.run.train_config import TrainConfig

    if recipe is None and not config_file and not flags["data"] and not resume:
        recipe = SMOKE
    if resume and not flags["name"]:
        raise EdgefaceError("--resume needs --name of the run to continue")
    cfg = TrainConfig(name=flags["name"], runs_dir=flags["runs_dir"] or "runs") if resume else \
        command_config(config_file, recipe, flags, assignments, tasks)
    if recipe == SMOKE:  # once the config is valid: a config error is the only line then
        click.echo("*** SMOKE RUN on generated synthetic faces: it checks the pipeline, not real accuracy. ***\n"
                   "*** For real models: edgeface train --data utkface:../shared/data/utkface              ***")
    from edgeface.jobs import train_job

    run = train_job(cfg, resume=resume, cross_validate=cross_validate, seeds=seeds and _int_list(seeds, "--seeds"))
    if isinstance(run, str):  # a family's summary
        click.echo(run)
        return
    if run is None:  # a multi-worker cluster's non-chief worker
        click.echo("done: this worker's share of the training; the chief wrote the run")
        return
    click.echo(f"done: {run.path} (best model {run.model_path()}, metrics {run.metrics_file})")
    if recipe == SMOKE:
        from edgeface.eval import evaluate, format_report

        click.echo(format_report(evaluate(run.path, split="test")))
        click.echo("*** smoke run finished: numbers above are on synthetic faces ***")


@main.command()
@_recipe_options
@click.option("--max-epochs", type=int, default=12, show_default=True, help="Hyperband: most epochs one trial gets.")
@click.option("--factor", type=int, default=3, show_default=True, help="Hyperband: reduction factor per round.")
@click.option("--iterations", type=int, default=1, show_default=True, help="Hyperband iterations (brackets sweeps).")
@click.option("--top", type=int, default=10, show_default=True, help="Ranked trials to print.")
@user_errors
def tune(config_file, recipe, assignments, tasks, max_epochs, factor, iterations, top, **flags):
    """Hyperband search over learning rate, batch size, dropout, head width, age-loss weight, label smoothing,
    geometric augmentation and age head, scored on the validation split."""
    from edgeface.recipes import command_config
    from edgeface.train.tune import tune as run_search

    if not flags["data"] and not config_file:
        raise EdgefaceError("tune needs --data (or --config): it scores trials on that dataset's validation split")
    cfg = command_config(config_file, recipe or "default", {**flags, "verbose": 0}, assignments, tasks)
    result = run_search(cfg, max_epochs=max_epochs, factor=factor, iterations=iterations, top=top)
    click.echo(result["table"])
    click.echo(f"ranked trials: {result['folder']}/tune.json; best recipe: edgeface train --config "
               f"{result['best_config']} --name NAME")


@main.command("eval")
@click.argument("model", type=click.Path(exists=False))
@_data_options
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--output", help="Where to write the JSON report (default: beside the model; for a bundled model, "
                                 "the working folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--trust-hdf5", is_flag=True, help="Open a .h5 model that is not from an edgeface run (it may run code).")
@click.option("--framing-stress", is_flag=True, help="Instead: accuracy when the chips are re-framed (the measured "
                                                     "detector spread, zoom-outs, shifts, rotations).")
@click.option("--detector", type=_LazyChoice(_detectors), default="blazeface", show_default=True,
              help="With --framing-stress: whose measured framing spread to reproduce.")
@user_errors
def eval_command(model, data, fold, limit, seed, allow_outside_root, split, output, as_json, trust_hdf5,
                 framing_stress, detector):
    """Evaluate a run folder, .keras model or exported artifact (or a peer's folder, or ensemble:A,B): accuracy,
    MAE, per age band and race. Without --data it scores the split the model's run recorded when training."""
    from edgeface.eval import evaluate, format_report, write_report

    if framing_stress:
        from edgeface.eval.framing import format_framing, framing_stress as run_stress
        from edgeface.utils import write_json

        report = run_stress(model, data, split, limit=limit, seed=seed or 0, detector=detector,
                            trust_hdf5=trust_hdf5)
        click.echo(json.dumps(report, indent=2) if as_json else format_framing(report))
        if output:
            write_json(output, report)
            click.echo(f"report: {output}", err=True)
        return
    report = evaluate(model, data, split, limit=limit, seed=seed or 0, fold=fold, trust_hdf5=trust_hdf5,
                      allow_outside_root=bool(allow_outside_root))
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))  # shown before it is saved
    click.echo(f"report: {write_report(report, output)}", err=True)


@main.command()
@click.argument("run")
@click.option("--calibration", required=True, help="Calibration manifest name (calibration/NAME.txt) or path.")
@click.option("--calibration-root", help="Folder the manifest's image paths are relative to (overrides its root).")
@click.option("--val-limit", default=500, show_default=True, type=click.IntRange(0),
              help="Validation images the task effect is measured on (0: all).")
@click.option("--top", default=12, show_default=True, type=click.IntRange(1),
              help="Layers (largest numeric int8 error first) whose task effect is measured.")
@click.option("--by", type=click.Choice(["layer", "block"]), default="layer", show_default=True,
              help="Keep float / quantize one layer at a time, or one block (MobileNet block, EfficientNet stage).")
@click.option("--output", help="Folder for analysis.json, layers.csv, sensitivity.png (default: RUN/int8-analysis).")
@_ptq_options
@user_errors
def analyze(run, calibration, calibration_root, val_limit, top, by, output, corrections):
    """Which layers break int8: per-layer numeric error (TensorFlow's QuantizationDebugger) and task effect on
    validation when only that layer stays float / only it is quantized; a ranked table and a verdict."""
    from edgeface.export.sensitivity import analyze as run_analysis, format_analysis, write_analysis
    from edgeface.run import Run

    report = run_analysis(run, calibration, root=calibration_root, val_limit=val_limit or None, top=top, by=by,
                          corrections=corrections)
    click.echo(format_analysis(report))
    click.echo(f"wrote {write_analysis(report, output or Run(run).int8_analysis_dir)}", err=True)


@main.command()
@click.argument("models", nargs=-1, required=True)
@_data_options
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--resamples", default=2000, show_default=True, type=click.IntRange(1000),
              help="Paired bootstrap resamples.")
@click.option("--by", type=click.Choice(["age_band", "race", "source"]),
              help="Also compare within each age band, race or source (a mixture's datasets), paired.")
@click.option("--output", help="Also write the JSON report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--trust-hdf5", is_flag=True, help="Open a .h5 model that is not from an edgeface run (it may run code).")
@user_errors
def compare(models, data, fold, limit, seed, allow_outside_root, split, resamples, by, output, as_json, trust_hdf5):
    """Score models (runs, .keras, artifacts) on the same images and compare each with the first: Δ gender
    accuracy and Δ age MAE with paired bootstrap 95% intervals, McNemar's exact test for gender. Without --data
    it uses the split the first model's run recorded. ensemble:A,B scores models as one (outputs averaged)."""
    from edgeface.eval.compare import compare as run_compare, format_comparison
    from edgeface.utils import write_json

    report = run_compare(list(models), data, split, limit=limit, seed=seed or 0, fold=fold, resamples=resamples,
                         trust_hdf5=trust_hdf5, allow_outside_root=bool(allow_outside_root), by=by)
    click.echo(json.dumps(report, indent=2) if as_json else format_comparison(report))
    if output:
        write_json(output, report)
        click.echo(f"report: {output}", err=True)


@main.command()
@click.argument("images", nargs=-1, required=True)  # files, folders or glob patterns
@click.option("--model", "model_path", default=None,
              help="Run folder, .keras model or exported artifact (default: the bundled int8 model).")
@click.option("--detect", is_flag=True, help="Images are full photos: find every face, crop it per the crop "
                                           "contract and predict each.")
@click.option("--detector", type=_LazyChoice(_detectors),
              help="Face detector for --detect: blazeface (MediaPipe short-range, default), blazeface-full "
                   "(small or distant faces) or haar (OpenCV).")
@click.option("--min-score", type=click.FloatRange(0, 1), help="With --detect: drop faces the detector scores "
                                                                 "lower (on top of its own threshold).")
@click.option("--save", type=click.Path(file_okay=False), help="With --detect: write each photo annotated with its "
                                                               "boxes and answers, and each face's crop, here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the rows as CSV to this file.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--trust-hdf5", is_flag=True, help="Open a .h5 model that is not from an edgeface run (it may run code).")
@user_errors
def predict(images, model_path, detect, detector, min_score, save, csv_path, as_json, trust_hdf5):
    """Gender (with probability) and age for face crops, or for every face in photos with --detect."""
    from edgeface.bundled import bundled_model
    from edgeface.eval.predict import describe_model, format_rows, predict as run_predict, write_csv

    result = run_predict(model_path or bundled_model(), images, detect=detect, trust_hdf5=trust_hdf5,
                         detector=detector, min_score=min_score, save=save)
    rows, model = result["predictions"], result["model"]
    if csv_path:
        click.echo(f"rows: {write_csv(rows, csv_path)}", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(describe_model(model), err=True)
        click.echo(format_rows(rows))
    if any(row["status"] == "error" for row in rows):
        sys.exit(1)  # some images could not be read; the others were predicted above


@main.command()
@click.option("--family", type=click.Choice(["lightweight", "full-size"]))
@user_errors
def backbones(family):
    """List registered backbones with their input size and normalization."""
    from edgeface.models import get_backbone_config, list_backbones

    for name in list_backbones(family):
        c = get_backbone_config(name)
        weights = "imagenet" if c.imagenet_files else "scratch only"
        click.echo(f"{name:20} {c.family:11} {c.default_input_size:4d}px  {c.channel_order} mean={c.mean} "
                   f"std={c.std}  {weights}  {c.description}")


@main.command()
@click.option("--data", required=True, help="Dataset spec, as for train.")
@click.option("--fold", type=int)
@click.option("--dedup", is_flag=True)
@click.option("--seed", type=int, default=0)
@click.option("--allow-outside-root", is_flag=True, help="Let a csv manifest name images outside its own folder.")
@user_errors
def data(data, fold, dedup, seed, allow_outside_root):
    """Read a dataset and report its splits, skipped files and label counts."""
    from edgeface.data import load_data

    bundle = load_data(data, seed=seed, fold=fold, dedup=dedup, allow_outside_root=allow_outside_root)
    click.echo(bundle.summary())
    click.echo(bundle.label_counts())
    for note in bundle.notes:
        click.echo(note)


def _pairs(values, what: str) -> dict:
    """KEY=VALUE flags as a dict; the library checks the keys and numbers (runtime.formats.check_tolerances)."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgefaceError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


@main.command()
@click.argument("run")
@click.option("--format", "formats", multiple=True, default=("tflite",), show_default=True,
              type=click.Choice([*FORMATS, "all"]), help="Export format (repeatable).")
@click.option("--precision", "precisions", multiple=True, default=("fp32",), show_default=True,
              type=click.Choice([*PRECISIONS, "all"]), help="Precision (repeatable).")
@click.option("--output", "output_dir", help="Output folder (default: export/RUN_NAME).")
@click.option("--calibration", help="Calibration manifest name (calibration/NAME.txt) or path; needed for int8.")
@click.option("--calibration-root", help="Folder the manifest's image paths are relative to (overrides its root).")
@click.option("--io", type=click.Choice(IO_CHOICES), default="int8", show_default=True,
              help="Input/output of int8 TFLite as the converter writes it (int8, uint8, float), or app: raw "
                   "uint8 RGB pixels in, float32 outputs named as the card, batch 1 (int8 TFLite, any ONNX).")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset.")
@click.option("--nchw", is_flag=True, help="ONNX/TensorRT input as NCHW instead of NHWC.")
@click.option("--fixed-batch", type=int, help="A fixed batch size in TFLite and ONNX files (an app runs 1); "
                                              "default: dynamic.")
@click.option("--per-channel/--per-tensor", default=True, show_default=True,
              help="ONNX int8 weight quantization granularity (per-tensor breaks depthwise convolutions).")
@click.option("--calibration-method", type=click.Choice(ONNX_CALIBRATION_METHODS), default="minmax",
              show_default=True, help="ONNX int8 calibration.")
@click.option("--tolerance", "tolerances", multiple=True,
              help="Parity tolerance override: atol= (probabilities), age_atol= (years) for float formats; "
                   "agreement=, mae_shift= (years) for int8/dynamic.")
@click.option("--parity-data", help="Dataset spec for parity images (default: the run's recorded validation split).")
@click.option("--timing-cache", help="TensorRT timing cache file (read and updated).")
@click.option("--keep-float", help="Int8 TFLite mixed precision: Keras layers to leave float (comma-separated, see "
                                   "`edgeface analyze`), or auto: the fewest that keep int8 within 0.3 points / "
                                   "0.1 years of float on validation.")
@_ptq_options
@user_errors
def export(run, formats, precisions, output_dir, calibration, calibration_root, io, opset, nchw, fixed_batch,
           per_channel, calibration_method, tolerances, parity_data, timing_cache, keep_float, corrections):
    """Export a run to TFLite / ONNX / SavedModel / TensorRT with a model card and a parity check; or, with
    `--io app`, rewrite an exported int8 .tflite / .onnx artifact to the app form (raw pixels in)."""
    from edgeface.export import ExportOptions, export as run_export

    options = ExportOptions(calibration=calibration, calibration_root=calibration_root, io=io, opset=opset,
                            nchw=nchw, fixed_batch=fixed_batch, per_channel=per_channel,
                            calibration_method=calibration_method,
                            tolerances=_pairs(tolerances, "--tolerance"), parity_data=parity_data,
                            timing_cache=timing_cache, keep_float=keep_float or (), corrections=corrections)
    results = run_export(run, "all" if "all" in formats else formats,
                         "all" if "all" in precisions else precisions, output_dir, options)
    for r in results:
        checks = ", ".join(f"{c['name']} {c['value']:.4g}" for c in r.parity["checks"]) if r.source else ""
        click.echo(f"{r.path}  {r.size_bytes / 1024:.0f} KiB  card {r.card_path}"
                   + (f"  parity vs source: {checks}" if checks else ""))


@main.command()
@click.option("--data", required=True, help="Dataset spec to draw from, e.g. utkface:../shared/data/utkface.")
@click.option("--name", required=True, help="Manifest name: writes calibration/NAME.txt.")
@click.option("--size", type=int, default=300, show_default=True)
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--folder", default="calibration", show_default=True)
@click.option("--allow-outside-root", is_flag=True, help="Let a csv manifest name images outside its own folder.")
@user_errors
def calibrate(data, name, size, split, seed, folder, allow_outside_root):
    """Write a calibration manifest stratified by gender x age group for int8 exports."""
    from edgeface.export.calibration import create_manifest

    click.echo(f"wrote {create_manifest(data, name, size, split, seed, Path(folder), allow_outside_root)}")


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--data", help="Dataset spec whose split every row is scored on (default: the split the first run "
                             "among the sources recorded).")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--formats", multiple=True, type=click.Choice(list(FORMATS)),
              help="Export formats for run folders (repeatable; default: every CPU format, plus trt on a GPU machine).")
@click.option("--precisions", multiple=True, type=click.Choice(list(PRECISIONS)),
              help="Precisions for run folders (repeatable; default: all).")
@click.option("--threads", default="1", show_default=True,
              help="Inference threads; several (1,2,4) time every row at each, a row per count.")
@click.option("--batch", type=int, default=1, show_default=True)
@click.option("--runs", type=int, default=100, show_default=True, help="Timed runs per row (after warm-up).")
@click.option("--rounds", type=int, default=3, show_default=True,
              help="Split the runs into rounds that visit every row in turn, so host drift moves all rows alike.")
@click.option("--warmup", type=int, default=10, show_default=True)
@click.option("--limit", type=int, help="Score on at most N images of the split (stratified).")
@click.option("--peers", is_flag=True, help="Add the peer models from --peers-dir as rows.")
@click.option("--peers-dir", default="../shared/peers", show_default=True)
@click.option("--calibration", help="Calibration manifest for int8 rows (e.g. utkface-train-300).")
@click.option("--device", help="adb:SERIAL: time TFLite rows on an Android device with benchmark_model.")
@click.option("--device-binary", help="benchmark_model path on the device (default /data/local/tmp/benchmark_model).")
@click.option("--photos", help="Dataset spec of full photos, one labelled face each: adds a row per face detector "
                               "with the reference model (faces found, accuracy over all photos, ms per photo).")
@click.option("--output", default=None, help="Output folder (default: runs/benchmark-DATE).")
@click.option("--budget-ms", type=float, help="Pick the best ok row at or under this latency.")
@click.option("--budget-kb", type=float, help="Pick the best ok row at or under this size.")
@user_errors
def benchmark(sources, data, split, formats, precisions, threads, batch, runs, rounds, warmup, limit, peers,
              peers_dir, calibration, device, device_binary, photos, output, budget_ms, budget_kb):
    """Accuracy vs latency vs size for every exported variant and peer, in one table, JSON, CSV and plot."""
    import datetime

    from edgeface.benchmark import Row, Settings, benchmark as run_benchmark, format_table, pick_best

    threads, *sweep = _int_list(threads, "--threads") or [1]
    settings = Settings(data=data, split=split, formats=formats or None, precisions=precisions or None,
                        threads=threads, thread_sweep=tuple(sweep), batch=batch, runs=runs, rounds=rounds,
                        warmup=warmup, limit=limit,
                        peers_dir=peers_dir if peers else None, calibration=calibration, device=device,
                        device_binary=device_binary, photos=photos)
    output = Path(output or f"runs/benchmark-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    payload = run_benchmark(list(sources), settings, output)
    rows = [Row(**r) for r in payload["rows"]]
    click.echo(f"final figures ({settings.rounds} round(s)):\n{format_table(rows)}")
    click.echo(f"wrote {output / 'benchmark.json'}, benchmark.csv, table.md, pareto.png")
    if budget_ms is not None or budget_kb is not None:
        best, left_out = pick_best(rows, budget_ms, budget_kb)
        limits = " and ".join(x for x in (budget_ms and f"{budget_ms:g} ms", budget_kb and f"{budget_kb:g} KB") if x)
        click.echo(f"best under {limits}: " + (f"{best.model} {best.format} {best.precision} "
                                              f"({100 * best.gender_acc:.2f}%, {best.latency_mean_ms:.2f} ms, "
                                              f"{best.size_kb:.0f} KB)" if best else "none fits") + f" ({left_out})")


_compression_options = _option_group(
    click.option("--epochs", type=int, help="Fine-tuning epochs (default: the method's)."),
    click.option("--lr", type=float, help="Fine-tuning learning rate (cosine decay, no warm-up; default: the "
                                          "method's)."),
    click.option("--name", help="New run name (default: PARENT-METHOD)."),
    click.option("--runs-dir", help="Where the new run goes (default: beside the parent)."),
    click.option("--limit", type=int, help="Cap every split at N images (quick checks)."),
)
_distillation_options = _option_group(
    click.option("--temperature", type=float, help="Softening of the teacher's outputs (default "
                                                   f"{default(Distillation, 'temperature'):g})."),
    click.option("--kd-weight", type=float, help="Weight of the teacher (soft) loss; 1 - this weights the labels "
                                                 f"(default {default(Distillation, 'kd_weight'):g})."),
)
_teacher_option = click.option(
    "--teacher", multiple=True,
    help="A trained run whose soft outputs the model also learns while it is fine-tuned (repeat for an ensemble).")


def _given(**kwargs) -> dict:
    return {k: v for k, v in kwargs.items() if v is not None and v is not False and v != ()}


@main.command()
@click.argument("run")
@click.option("--method", type=click.Choice(choices(PruneMethod)), default="magnitude", show_default=True)
@click.option("--sparsity", type=float, help="magnitude: target fraction of zero weights (default "
                                             f"{default(Magnitude, 'sparsity'):g}).")
@click.option("--schedule", type=click.Choice(choices(PruneSchedule)),
              help=f"magnitude: sparsity schedule (default {default(Magnitude, 'schedule')}).")
@click.option("--prune-first-conv", is_flag=True, help="magnitude: also prune the first convolution.")
@click.option("--prune-heads", is_flag=True, help="magnitude: also prune the task heads.")
@click.option("--skip-depthwise", is_flag=True, help="magnitude: leave depthwise convolutions dense.")
@click.option("--ratio", type=float, help="structured: fraction of filters to remove per group (default "
                                          f"{default(Structured, 'ratio'):g}).")
@click.option("--threshold", type=float, help="structured: keep filters whose norm is at least this fraction of "
                                              "the group's largest (instead of --ratio).")
@click.option("--norm", type=click.Choice(choices(ChannelNorm)),
              help=f"structured: norm of the weights that rank channels (default {default(Structured, 'norm')}).")
@click.option("--prune-residual", is_flag=True, help="structured: also shrink residual streams (channels joined "
                                                      "by Add), which every later block reads.")
@click.option("--min-filters", type=int, help="structured: never keep fewer filters than this (default "
                                              f"{default(Structured, 'min_filters')}).")
@click.option("--multiple", type=int, help="structured: round kept filter counts up to a multiple (default "
                                           f"{default(Structured, 'multiple')}).")
@click.option("--exclude", multiple=True, help="Layer name to leave untouched (repeatable).")
@_teacher_option
@_distillation_options
@_compression_options
@user_errors
def prune(run, method, sparsity, schedule, prune_first_conv, prune_heads, skip_depthwise, ratio, threshold, norm,
          prune_residual, min_filters, multiple, exclude, teacher, temperature, kd_weight, epochs, lr, name, runs_dir,
          limit):
    """Prune a trained run (magnitude or structured), fine-tune, and write a new run that names its parent."""
    from edgeface.compress import prune as prune_run

    _print_compression(prune_run(run, method, **_given(
        sparsity=sparsity, schedule=schedule, skip_first_conv=False if prune_first_conv else None,
        skip_heads=False if prune_heads else None, skip_depthwise=skip_depthwise, ratio=ratio, threshold=threshold,
        norm=norm, prune_residual=prune_residual, min_filters=min_filters, multiple=multiple, exclude=exclude,
        teacher=teacher, temperature=temperature, kd_weight=kd_weight, epochs=epochs, lr=lr, name=name,
        runs_dir=runs_dir, limit=limit)))


@main.command()
@click.argument("run")
@click.option("--preserve-sparsity/--no-preserve-sparsity", default=None,
              help="Keep pruned zeros through QAT (default: on for magnitude-pruned parents).")
@_teacher_option
@_distillation_options
@_compression_options
@user_errors
def qat(run, preserve_sparsity, teacher, temperature, kd_weight, epochs, lr, name, runs_dir, limit):
    """Quantization-aware training of a run; export the result as int8 directly."""
    from edgeface.compress import qat_run

    _print_compression(qat_run(run, preserve_sparsity=preserve_sparsity, teacher=teacher, temperature=temperature,
                               kd_weight=kd_weight, epochs=epochs, lr=lr, name=name, runs_dir=runs_dir, limit=limit))


def _print_compression(run) -> None:
    report = run.compression
    m, p = report["model"], report["parent_model"]
    click.echo(f"done: {run.path}")
    click.echo(f"  parameters {p['parameters']:,} -> {m['parameters']:,} (non-zero {m['nonzero_parameters']:,}), "
               f"MACs {p['macs'] / 1e6:.1f}M -> {m['macs'] / 1e6:.1f}M, gzip weights {p['gzip_weights_kb']:.0f} -> "
               f"{m['gzip_weights_kb']:.0f} KB, kernel sparsity {100 * m['sparsity']['overall_kernel_sparsity']:.1f}%")
    summary = report["val_summary"]
    click.echo(f"  val ({summary['images']} images, both models): parent {summary['parent']}; this {summary['this']}")
    for entry in report.get("layers_left_float", []):
        click.echo(f"  left float: {entry['layer']}: {entry['why']}")


@main.command()
@click.argument("teacher", nargs=-1, required=True)
@click.option("--backbone", default="mobilenet_v2", show_default=True, help="Student backbone.")
@click.option("--alpha", type=float, help="Student width multiplier.")
@click.option("--input-size", type=int, help="Student input size.")
@click.option("--weights", help="Student initial weights: imagenet | none | PATH (default: the teacher's setting).")
@click.option("--weights-dir", help="Folder searched first for ImageNet weight files.")
@click.option("--age-head", type=_age_heads(in_years=True),
              help="Student age head when it differs from the teacher's (both in years).")
@_distillation_options
@_compression_options
@user_errors
def distill(teacher, backbone, alpha, input_size, weights, weights_dir, temperature, kd_weight, age_head, epochs, lr,
            name, runs_dir, limit):
    """Train a lightweight student from a teacher run, or an ensemble of runs (knowledge distillation)."""
    from edgeface.compress import distill_run

    run = distill_run(teacher, backbone=backbone, alpha=alpha, input_size=input_size, weights=weights,
                      weights_dir=weights_dir, temperature=temperature, kd_weight=kd_weight, epochs=epochs, lr=lr,
                      name=name, runs_dir=runs_dir, limit=limit, age_head=age_head)
    summary = run.compression["val_summary"]
    click.echo(f"done: {run.path}\n  val: teacher {summary['teacher']}; student {summary['this']}")


@main.command()
@click.argument("artifact", required=False)
@click.option("--out", default="webapp-build", show_default=True, help="Folder to write the static web app to.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve it on localhost after building.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--detector", type=_LazyChoice(_detectors), default="blazeface", show_default=True)
@user_errors
def webapp(artifact, out, serve, port, detector):
    """Build (and serve) the reference web app for an app-form artifact (default: the bundled model): photo or
    camera -> MediaPipe face detector -> the card's crop -> the model, and bench.html for per-face latency."""
    from edgeface.bundled import bundled_model
    from edgeface.webapp import build, server

    folder = build(artifact or bundled_model(), out, detector=detector, link=serve)
    click.echo(f"web app for {artifact or bundled_model()} in {folder}")
    if serve:
        httpd = server(folder, port=port)
        click.echo(f"serving http://127.0.0.1:{port}/ (benchmark: /bench.html); Ctrl-C stops")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--detector", type=_LazyChoice(_detectors), default="blazeface", show_default=True,
              help="Face detector whose crop contract frames the chips.")
@click.option("--pick", type=click.Choice(["central", "confident", "largest"]), default="central", show_default=True,
              help="Which face of a photo with several: the one nearest the centre (LFW, IMDB-WIKI centre their "
                   "subject), the most confident or the largest.")
@user_errors
def chips(source, out, detector, pick):
    """Face chips from a folder of photos, framed by the crop contract (same relative paths under OUT)."""
    from edgeface.detect.chips import make_chips

    result = make_chips(source, out, detector=detector, pick=pick)
    click.echo(f"{result['written']} chips written, {result['kept']} already there, {len(result['missed'])} photos "
               f"without a face, of {result['photos']} ({detector}, {pick} face) -> {out}")


@main.command()
@click.argument("artifact")
@click.option("--json", "as_json", is_flag=True, help="Print the model card itself.")
@user_errors
def info(artifact, as_json):
    """What an exported artifact is, readably: input and its preprocessing, outputs and their decoding, crop
    contract, training data, metrics and parity, with every load check's result first."""
    from edgeface.card import read_card
    from edgeface.info import describe

    click.echo(json.dumps(read_card(artifact), indent=2) if as_json else describe(artifact))


@main.command()
@click.argument("artifact")
@click.option("--parity-images", type=int, default=32, show_default=True,
              help="Images of the parent run's recorded validation split for the parity check.")
@click.option("--skip-parent", is_flag=True,
              help="Do not fail when the parent run is not on this machine (the test vectors still check the file).")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def verify(artifact, parity_images, skip_parent, as_json):
    """Check an artifact against its model card (schema, embedded copy, sha256, normalization, outputs, I/O), its
    golden test vectors, and its parent run's Keras model; exit 1 on any mismatch."""
    from edgeface.predictor import verify as run_verify

    report = run_verify(artifact, parity_images, skip_parent=skip_parent)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            click.echo(f"{'ok  ' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
        click.echo(f"{artifact}: {'verified' if report['passed'] else 'NOT verified'}")
    if not report["passed"]:
        sys.exit(1)
