"""The public compression functions: each records what it will do and runs its plan (edgeface.compress.plans)."""
from __future__ import annotations

from edgeface.compress.lineage import derived_config
from edgeface.compress.plans import execute
from edgeface.compress.qat import quantize_for_training
from edgeface.compress.teachers import distillation_record, open_teachers
from edgeface.errors import EdgefaceError
from edgeface.run import Run

def prune_run(run, sparsity: float = 0.5, schedule: str = "polynomial", epochs: int = 2, lr: float = 1e-4,
              skip_first_conv: bool = True, skip_heads: bool = True, skip_depthwise: bool = False, exclude=(),
              teacher=None, temperature: float = 2.0, kd_weight: float = 0.5,
              name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Run:
    parent = Run.open(run, finished=True)
    compression = {"method": "magnitude", "target_sparsity": sparsity, "schedule": schedule,
                   "skip_first_conv": skip_first_conv, "skip_heads": skip_heads, "skip_depthwise": skip_depthwise,
                   "exclude": list(exclude), **distillation_record(teacher, temperature, kd_weight)}
    return execute(derived_config(parent, f"prune{int(round(sparsity * 100))}", compression, epochs, lr, name,
                                   runs_dir, limit))


def structured_prune_run(run, ratio: float | None = 0.3, threshold: float | None = None, norm: str = "l2",
                         min_filters: int = 8, multiple: int = 8, exclude=(), prune_residual: bool = False,
                         calibration_images: int = 256, epochs: int = 2, lr: float = 2e-4, teacher=None,
                         temperature: float = 2.0, kd_weight: float = 0.5, name: str | None = None,
                         runs_dir: str | None = None, limit: int | None = None) -> Run:
    parent = Run.open(run, finished=True)
    label = f"struct{int(round(ratio * 100))}" if ratio is not None else f"struct-t{threshold:g}"
    compression = {"method": "structured", "ratio": ratio, "threshold": threshold, "norm": norm,
                   "min_filters": min_filters, "multiple": multiple, "exclude": list(exclude),
                   "prune_residual": prune_residual, "calibration_images": calibration_images,
                   **distillation_record(teacher, temperature, kd_weight)}
    return execute(derived_config(parent, label, compression, epochs, lr, name, runs_dir, limit))


def qat_run(run, epochs: int = 1, lr: float = 2e-5, preserve_sparsity: bool | None = None,
            teacher=None, temperature: float = 2.0, kd_weight: float = 0.5,
            name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Run:
    """With a teacher run (or several, an ensemble) the quantized model also learns the teacher's soft outputs,
    as a student distilled from it did in float (for the bundled model this beat labels-only QAT on val,
    BENCHMARKS.md section 5)."""
    parent = Run.open(run, finished=True)
    if preserve_sparsity is None:  # a magnitude-pruned parent keeps its zeros through QAT
        preserve_sparsity = parent.config.compression.get("method") == "magnitude"
    compression = {"method": "qat", "preserve_sparsity": preserve_sparsity,
                   **distillation_record(teacher, temperature, kd_weight)}
    cfg = derived_config(parent, "qat", compression, epochs, lr, name, runs_dir, limit)
    cfg = cfg.replace(bn_momentum=None)  # BN is folded into the quantized convolutions
    try:  # before the run folder is made
        quantize_for_training(parent.load_model(), preserve_sparsity)
    except EdgefaceError as err:
        raise EdgefaceError(f"{parent.model_path()}: {err}") from None
    return execute(cfg)


def distill_run(teacher, backbone: str = "mobilenet_v2", alpha: float | None = None, input_size: int | None = None,
                weights: str | None = None, weights_dir: str | None = None, temperature: float = 2.0,
                kd_weight: float = 0.5, epochs: int | None = None, lr: float | None = None,
                name: str | None = None, runs_dir: str | None = None, limit: int | None = None,
                age_head: str | None = None) -> Run:
    """Trains a student with the (first) teacher run's recipe (same data, split, schedule) plus distillation;
    `teacher` is one run or several, an ensemble whose outputs are averaged."""
    teachers = open_teachers(teacher, temperature, kd_weight)
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
