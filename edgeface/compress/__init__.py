"""Compression facade: each function turns a trained run into a new, fine-tuned run that records its parent.

    prune_run(RUN, sparsity=0.5)            magnitude pruning (tfmot), stripped after fine-tuning
    structured_prune_run(RUN, ratio=0.3)    removes whole filters/channels, rebuilds a slimmer dense model
    qat_run(RUN)                            quantization-aware training (prune-preserving for pruned parents)
    distill_run(TEACHER, backbone=...)      a new student trained on labels and the soft outputs of a teacher
                                            run (or the averaged outputs of several)
    resume_run(RUN)                         continues any interrupted run, compressed or not, where it stopped

Every method fine-tunes with the shared training loop, and every one can learn from teachers while it does
(`teacher=` a run or several, an ensemble): for the bundled model's QAT this beat labels alone on val
(BENCHMARKS.md section 5); for pruning it is offered the same way, not yet measured. Each method's plan (what to
build, which callbacks, how to finish) is made from the config's compression record alone, teachers included,
so a run started by any method resumes from its folder with nothing re-stated.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgeface.compress import prune as magnitude
from edgeface.compress import stats
from edgeface.compress.qat import calibrate_ranges, quantize_for_training
from edgeface.compress.structured import prune_channels
from edgeface.errors import EdgefaceError
from edgeface.models.age_heads import check_distillable
from edgeface.run import Run
from edgeface.run.config import TrainConfig
from edgeface.train.trainer import train

log = logging.getLogger(__name__)

__all__ = ["prune_run", "structured_prune_run", "qat_run", "distill_run", "resume_run", "derived_config"]


def derived_config(parent: Run, suffix: str, compression: dict, epochs: int, lr: float,
                   name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> TrainConfig:
    """The parent's recipe, fine-tuning for `epochs` at `lr` (cosine, no warm-up), with the lineage recorded."""
    cfg = parent.config
    changes = dict(name=name or f"{parent.name}-{suffix}", runs_dir=runs_dir or str(parent.path.parent),
                   epochs=epochs, lr=lr, warmup_epochs=0, freeze_epochs=0, schedule="cosine",
                   loss_weight_schedule=[], model={**cfg.model.to_dict(), "weights": "none"},
                   parents=[str(parent.path)] + list(cfg.parents),
                   compression={**compression, "parent": str(parent.path)})
    if limit is not None:
        changes["limit"] = limit
    return cfg.replace(**changes)


def _steps(parent: Run, cfg: TrainConfig) -> int:
    train_n = min(parent.data_info.get("counts", {}).get("train", 1000), cfg.limit or 10 ** 9)
    return max(1, math.ceil(train_n / cfg.batch_size)) * cfg.epochs


COLLAPSE_POINTS = 10.0  # a child this many gender-accuracy points below its parent is reported as collapsed


def _report(run: Run, parent: Run, extra: dict) -> dict:
    """compression.json: size and cost of child and parent, and both scored on the same images (the child's
    recorded validation split; with --limit it is smaller than the parent's own)."""
    from edgeface.eval import evaluate_records
    from edgeface.predictor import Predictor

    config = run.config
    parent_model = parent.load_model()
    parent_val = evaluate_records(Predictor.from_keras(parent_model, parent.spec), run.split("val"), "val")
    this_val = run.metrics or {}
    report = {**config.compression, **extra, "fine_tune": {"epochs": config.epochs, "lr": config.lr},
              "model": stats.describe(run.load_model()), "parent_model": stats.describe(parent_model),
              "val_summary": {"parent": parent_val.get("summary"), "this": this_val.get("summary"),
                              "images": parent_val["n"]}}
    _warn_if_collapsed(report, parent_val, this_val, "the compressed model", "its parent",
                       "fine-tune longer, at a lower rate, or compress less")
    run.write_compression(report)
    return report


def _warn_if_collapsed(report: dict, reference_val: dict, this_val: dict, what: str, against: str, advice: str):
    """Adds (and logs) report["warning"] when `this_val` is COLLAPSE_POINTS of gender accuracy below
    `reference_val`, both scored on the same images."""
    drop = 100 * (reference_val.get("gender", {}).get("accuracy", 0) - this_val.get("gender", {}).get("accuracy", 0))
    if "gender" in this_val and drop > COLLAPSE_POINTS:
        report["warning"] = (f"{what} lost {drop:.1f} points of gender accuracy against {against} on the same "
                             f"{reference_val['n']} validation images: it has collapsed ({advice})")
        log.warning(report["warning"])


@dataclass
class _Plan:
    """How the shared training loop runs one compression method, and what is written when it ends."""
    build: Callable
    report: Callable[[Run], None]
    callbacks: list = field(default_factory=list)
    finalize: Callable | None = None


def _parent(cfg: TrainConfig) -> Run:
    return Run.open(cfg.compression["parent"], finished=True)


def _execute(cfg: TrainConfig, resume: bool = False) -> Run:
    plan = PLANS[cfg.compression["method"]](cfg)
    build, teachers = plan.build, _recorded_teachers(cfg.compression)
    if teachers:
        _check_teachers(teachers, cfg.model.age_head)  # before the run folder is made

        def build(spec):
            return _with_teachers(plan.build(spec), teachers, spec, cfg)
    out = train(cfg, resume=resume, build_model=build, extra_callbacks=plan.callbacks, finalize=plan.finalize)
    plan.report(out)
    return out


def resume_run(path) -> Run:
    """Continues an interrupted run where its last checkpoint left it: a plain training, or a compressed one
    rebuilt from the method, parent and teachers its config recorded."""
    run = Run.to_resume(path)
    cfg = run.config.replace(name=run.path.name, runs_dir=str(run.path.parent))
    if not cfg.compression:
        return train(cfg, resume=True)
    if cfg.compression.get("method") not in PLANS:
        raise EdgefaceError(f"{run.path}: compression method {cfg.compression.get('method')!r} cannot be resumed")
    return _execute(cfg, resume=True)


def prune_run(run, sparsity: float = 0.5, schedule: str = "polynomial", epochs: int = 2, lr: float = 1e-4,
              skip_first_conv: bool = True, skip_heads: bool = True, skip_depthwise: bool = False, exclude=(),
              teacher=None, temperature: float = 2.0, kd_weight: float = 0.5,
              name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Run:
    parent = Run.open(run, finished=True)
    compression = {"method": "magnitude", "target_sparsity": sparsity, "schedule": schedule,
                   "skip_first_conv": skip_first_conv, "skip_heads": skip_heads, "skip_depthwise": skip_depthwise,
                   "exclude": list(exclude), **_distillation_record(teacher, temperature, kd_weight)}
    return _execute(derived_config(parent, f"prune{int(round(sparsity * 100))}", compression, epochs, lr, name,
                                   runs_dir, limit))


def _magnitude_plan(cfg: TrainConfig) -> _Plan:
    parent, c = _parent(cfg), cfg.compression
    total = _steps(parent, cfg)
    end_step, frequency = int(0.7 * total), max(1, min(100, total // 20))
    chosen = []

    def build(spec):
        model = parent.load_model()
        chosen[:] = magnitude.prunable_layers(model, c["skip_first_conv"], c["skip_heads"], c["skip_depthwise"],
                                              c["exclude"])
        schedule = magnitude.make_schedule(c["schedule"], c["target_sparsity"], end_step, frequency)
        return magnitude.wrap_for_pruning(model, schedule, chosen)

    def finalize(out: Run):
        for which in ("best", "last"):
            out.save_model(magnitude.strip(out.load_model(which)), which)

    return _Plan(build, lambda out: _report(out, parent, {"method": "magnitude", "pruned_layers": chosen}),
                 [magnitude.update_step_callback()], finalize)


def _calibration_images(parent: Run, cfg, spec, n: int):
    """n of the parent's recorded training images (stratified by gender x age band, seeded), normalized for the
    model; None if n is 0."""
    if not n:
        return None
    from edgeface.data import stratified_subset
    from edgeface.data.images import load_images, normalize

    train = parent.split("train")
    chosen = stratified_subset(train, min(n, len(train)), seed=cfg.seed)
    return normalize(load_images([r.path for r in chosen], spec.input_size), spec.config).astype(np.float32)


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
                   **_distillation_record(teacher, temperature, kd_weight)}
    return _execute(derived_config(parent, label, compression, epochs, lr, name, runs_dir, limit))


def _structured_plan(cfg: TrainConfig) -> _Plan:
    parent, c = _parent(cfg), cfg.compression
    options = {key: c[key] for key in ("ratio", "threshold", "norm", "min_filters", "multiple", "prune_residual")}
    kept = {}

    def build(spec):
        slim, counts = prune_channels(parent.load_model(), **options, exclude=tuple(c["exclude"]),
                                      images=_calibration_images(parent, cfg, spec, c["calibration_images"]))
        kept.update(counts)
        return slim

    return _Plan(build, lambda out: _report(out, parent, {"method": "structured", "filters_kept": kept}))


def _train_images(parent: Run, spec, seed: int, n: int = 256):
    """Normalized images from the parent's own training split, to start QAT's activation ranges."""
    import random

    from edgeface.data.images import load_images, normalize

    paths = parent.split_paths("train")
    paths = random.Random(seed).sample(paths, min(n, len(paths)))
    return normalize(load_images(paths, spec.input_size), spec.config).astype("float32")


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
                   **_distillation_record(teacher, temperature, kd_weight)}
    cfg = derived_config(parent, "qat", compression, epochs, lr, name, runs_dir, limit)
    cfg = cfg.replace(bn_momentum=None)  # BN is folded into the quantized convolutions
    try:  # before the run folder is made
        quantize_for_training(parent.load_model(), preserve_sparsity)
    except EdgefaceError as err:
        raise EdgefaceError(f"{parent.model_path()}: {err}") from None
    return _execute(cfg)


def _qat_plan(cfg: TrainConfig) -> _Plan:
    parent, c = _parent(cfg), cfg.compression
    left_float = []

    def build(spec):
        float_model = parent.load_model()
        model, floats = quantize_for_training(float_model, c["preserve_sparsity"])
        left_float[:] = floats
        calibrate_ranges(model, float_model, _train_images(parent, spec, cfg.seed))
        return model

    def report(out: Run):
        _report(out, parent, {key: value for key, value in c.items() if key != "parent"}
                | {"layers_left_float": [{"layer": n, "why": w} for n, w in left_float]})

    return _Plan(build, report)


def _teachers(runs, temperature: float, kd_weight: float) -> list[Run]:
    """The teacher runs, after checking the distillation settings. `runs` is one run or several (an ensemble)."""
    if not 0 <= kd_weight <= 1 or temperature <= 0:
        raise EdgefaceError("--kd-weight must be in [0, 1] and --temperature positive")
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not runs:
        raise EdgefaceError("distillation needs at least one teacher run")
    return [Run.open(run, finished=True) for run in runs]


def _teacher_record(teachers: list[Run]) -> str | list:
    return str(teachers[0].path) if len(teachers) == 1 else [str(t.path) for t in teachers]


def _distillation_record(teacher, temperature: float, kd_weight: float) -> dict:
    """The compression record's teacher fields: empty without a teacher, so the method trains on labels alone."""
    if not teacher:
        return {}
    teachers = _teachers(teacher, temperature, kd_weight)
    return {"teacher": _teacher_record(teachers), "temperature": temperature, "kd_weight": kd_weight}


def _recorded_teachers(compression: dict) -> list[Run]:
    """The teacher runs a compression record names (none, one path, or a list: an ensemble)."""
    record = compression.get("teacher")
    if not record:
        return []
    return [Run.open(t, finished=True) for t in ([record] if isinstance(record, str) else record)]


def _with_teachers(student, teachers: list[Run], spec, cfg: TrainConfig):
    from edgeface.compress.distill import Distiller

    c = cfg.compression
    return Distiller(student, [t.load_model() for t in teachers], spec, [t.spec for t in teachers], c["kd_weight"],
                     c["temperature"], cfg.loss_weights)


def _check_teachers(teachers: list[Run], student_age_head: str):
    for teacher in teachers:
        check_distillable(teacher.spec.age_head, student_age_head)


def distill_run(teacher, backbone: str = "mobilenet_v2", alpha: float | None = None, input_size: int | None = None,
                weights: str | None = None, weights_dir: str | None = None, temperature: float = 2.0,
                kd_weight: float = 0.5, epochs: int | None = None, lr: float | None = None,
                name: str | None = None, runs_dir: str | None = None, limit: int | None = None,
                age_head: str | None = None) -> Run:
    """Trains a student with the (first) teacher run's recipe (same data, split, schedule) plus distillation;
    `teacher` is one run or several, an ensemble whose outputs are averaged."""
    teachers = _teachers(teacher, temperature, kd_weight)
    record = {"method": "distillation", **_distillation_record(teacher, temperature, kd_weight)}
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
    return _execute(base.replace(**changes))


def _distill_plan(cfg: TrainConfig) -> _Plan:
    from edgeface.models import create_model

    teachers = _recorded_teachers(cfg.compression)

    def report(out: Run):
        """Teachers scored on the student's own validation images (with --limit, fewer than the teachers'
        metrics.json saw); a student far below the best teacher is called collapsed, as prune calls a child."""
        from edgeface.eval import evaluate_records
        from edgeface.predictor import Predictor

        val, this = out.split("val"), out.metrics or {}
        scored = [evaluate_records(Predictor.from_keras(t.load_model(), t.spec), val, "val") for t in teachers]
        record = {**cfg.compression, "val_summary": {
            "teacher": scored[0]["summary"] if len(teachers) == 1 else
            "; ".join(f"{t.path}: {r['summary']}" for t, r in zip(teachers, scored)),
            "this": this.get("summary"), "images": len(val)}}
        best = max(scored, key=lambda r: r.get("gender", {}).get("accuracy", 0))
        _warn_if_collapsed(record, best, this, "the student", "its best teacher",
                           "train longer, use a larger student, or lower --kd-weight")
        out.write_compression(record)

    return _Plan(lambda spec: create_model(spec, weights_dir=cfg.weights_dir), report)


PLANS = {"magnitude": _magnitude_plan, "structured": _structured_plan, "qat": _qat_plan,
         "distillation": _distill_plan}
