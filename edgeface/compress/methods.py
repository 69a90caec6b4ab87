"""The public compression functions: each records what it will do and runs its plan (edgeface.compress.plans)."""
from __future__ import annotations

import inspect

from edgeface.compress.lineage import derived_config
from edgeface.compress.plans import execute
from edgeface.compress.qat import quantize_for_training
from edgeface.compress.teachers import distillation_record, open_teachers
from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.run.compression import QAT, Magnitude, Structured, settings


def prune_run(run, sparsity: float | None = None, schedule: str | None = None, epochs: int | None = None,
              lr: float | None = None, skip_first_conv: bool = True, skip_heads: bool = True,
              skip_depthwise: bool = False, exclude=(), teacher=None, temperature: float | None = None,
              kd_weight: float | None = None, name: str | None = None, runs_dir: str | None = None,
              limit: int | None = None) -> Run:
    """Magnitude pruning; None takes the default of edgeface.run.compression.Magnitude."""
    parent = Run.open(run, finished=True)
    o = settings(Magnitude, sparsity=sparsity, schedule=schedule, epochs=epochs, lr=lr)
    compression = {"method": "magnitude", "target_sparsity": o.sparsity, "schedule": o.schedule,
                   "skip_first_conv": skip_first_conv, "skip_heads": skip_heads, "skip_depthwise": skip_depthwise,
                   "exclude": list(exclude), **distillation_record(teacher, temperature, kd_weight)}
    return execute(derived_config(parent, f"prune{int(round(o.sparsity * 100))}", compression, o.epochs, o.lr, name,
                                  runs_dir, limit))


def structured_prune_run(run, ratio: float | None = None, threshold: float | None = None, norm: str | None = None,
                         min_filters: int | None = None, multiple: int | None = None, exclude=(),
                         prune_residual: bool = False, calibration_images: int | None = None,
                         epochs: int | None = None, lr: float | None = None, teacher=None,
                         temperature: float | None = None, kd_weight: float | None = None, name: str | None = None,
                         runs_dir: str | None = None, limit: int | None = None) -> Run:
    """Structured pruning by `ratio`, or by `threshold` instead (not both); None takes the default of
    edgeface.run.compression.Structured."""
    if threshold is not None and ratio is not None:
        raise EdgefaceError("give a ratio or a threshold, not both")
    parent = Run.open(run, finished=True)
    o = settings(Structured, ratio=ratio, norm=norm, min_filters=min_filters, multiple=multiple,
                 calibration_images=calibration_images, epochs=epochs, lr=lr)
    ratio = None if threshold is not None else o.ratio
    label = f"struct{int(round(ratio * 100))}" if ratio is not None else f"struct-t{threshold:g}"
    compression = {"method": "structured", "ratio": ratio, "threshold": threshold, "norm": o.norm,
                   "min_filters": o.min_filters, "multiple": o.multiple, "exclude": list(exclude),
                   "prune_residual": prune_residual, "calibration_images": o.calibration_images,
                   **distillation_record(teacher, temperature, kd_weight)}
    return execute(derived_config(parent, label, compression, o.epochs, o.lr, name, runs_dir, limit))


def prune(run, method: str = "magnitude", **options) -> Run:
    """`prune_run` (magnitude) or `structured_prune_run` by `method`; an option the method does not take is
    refused (a structured ratio given to magnitude pruning would otherwise be ignored)."""
    methods = {"magnitude": prune_run, "structured": structured_prune_run}
    if method not in methods:
        raise EdgefaceError(f"pruning method {method!r}: choose one of {', '.join(methods)}")
    foreign = sorted(set(options) - set(inspect.signature(methods[method]).parameters))
    if foreign:
        raise EdgefaceError(f"{', '.join(foreign)}: not an option of {method} pruning")
    return methods[method](run, **options)


def qat_run(run, epochs: int | None = None, lr: float | None = None, preserve_sparsity: bool | None = None,
            teacher=None, temperature: float | None = None, kd_weight: float | None = None,
            name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Run:
    """With a teacher run (or several, an ensemble) the quantized model also learns the teacher's soft outputs,
    as a student distilled from it did in float (for the bundled model this beat labels-only QAT on val,
    BENCHMARKS.md section 5). None takes the default of edgeface.run.compression.QAT."""
    parent = Run.open(run, finished=True)
    o = settings(QAT, epochs=epochs, lr=lr)
    if preserve_sparsity is None:  # a magnitude-pruned parent keeps its zeros through QAT
        preserve_sparsity = parent.config.compression.get("method") == "magnitude"
    compression = {"method": "qat", "preserve_sparsity": preserve_sparsity,
                   **distillation_record(teacher, temperature, kd_weight)}
    cfg = derived_config(parent, "qat", compression, o.epochs, o.lr, name, runs_dir, limit)
    cfg = cfg.replace(bn_momentum=None)  # BN is folded into the quantized convolutions
    try:  # before the run folder is made
        quantize_for_training(parent.load_model(), preserve_sparsity)
    except EdgefaceError as err:
        raise EdgefaceError(f"{parent.model_path()}: {err}") from None
    return execute(cfg)


def distill_run(teacher, backbone: str = "mobilenet_v2", alpha: float | None = None, input_size: int | None = None,
                weights: str | None = None, weights_dir: str | None = None, temperature: float | None = None,
                kd_weight: float | None = None, epochs: int | None = None, lr: float | None = None,
                name: str | None = None, runs_dir: str | None = None, limit: int | None = None,
                age_head: str | None = None) -> Run:
    """Trains a student with the (first) teacher run's recipe (same data, split, schedule) plus distillation;
    `teacher` is one run or several, an ensemble whose outputs are averaged."""
    teachers = open_teachers(teacher)
    record = {"method": "distillation", **distillation_record(teacher, temperature, kd_weight)}
    base = teachers[0].config
    model = {**base.model.to_dict(), "backbone": backbone, "alpha": alpha, "input_size": input_size}
    for key, value in (("weights", weights), ("age_head", age_head)):
        if value is not None:
            model[key] = value
    changes = dict(model=model, name=name or f"{teachers[0].name}-distill-{backbone}",
                   runs_dir=runs_dir or str(teachers[0].path.parent),
                   parents=[str(t.path) for t in teachers] + list(base.parents), compression=record)
    for key, value in (("weights_dir", weights_dir), ("epochs", epochs), ("lr", lr), ("limit", limit)):
        if value is not None:
            changes[key] = value
    return execute(base.replace(**changes))
