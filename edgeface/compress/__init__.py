"""Compression facade: each function turns a trained run into a new, fine-tuned run that records its parent.

    prune_run(RUN, sparsity=0.5)            magnitude pruning (tfmot), stripped after fine-tuning
    structured_prune_run(RUN, ratio=0.3)    removes whole filters/channels, rebuilds a slimmer dense model
    qat_run(RUN, teacher=None)              quantization-aware training (prune-preserving for pruned parents),
                                            optionally distilled from a teacher run or an ensemble of runs
    distill_run(TEACHER, backbone=...)      a new student trained on labels and the soft outputs of a teacher
                                            run (or the averaged outputs of several)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from edgeface.compress import prune as magnitude
from edgeface.compress import stats
from edgeface.compress.qat import calibrate_ranges, quantize_for_training
from edgeface.compress.structured import prune_channels
from edgeface.errors import EdgefaceError
from edgeface.models import load_keras, model_file
from edgeface.train.config import TrainConfig
from edgeface.train.trainer import save_model, train
from edgeface.utils import write_json

__all__ = ["prune_run", "structured_prune_run", "qat_run", "distill_run", "derived_config"]


def _parent(run) -> tuple[Path, dict]:
    run = Path(run)
    if not (run / "config.json").is_file() or not model_file(run).is_file():
        raise EdgefaceError(f"{run}: not a finished edgeface run (needs config.json and a best model)")
    return run, json.loads((run / "config.json").read_text())


def derived_config(parent: Path, parent_cfg: dict, suffix: str, compression: dict, epochs: int, lr: float,
                   name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> TrainConfig:
    """The parent's recipe, fine-tuning for `epochs` at `lr` (cosine, no warm-up), with the lineage recorded."""
    cfg = dict(parent_cfg)
    cfg.update(name=name or f"{parent.name}-{suffix}", runs_dir=runs_dir or str(parent.parent), epochs=epochs,
               lr=lr, warmup_epochs=0, freeze_epochs=0, schedule="cosine", loss_weight_schedule=[],
               weights="none", parents=[str(parent)] + list(parent_cfg.get("parents", [])),
               compression={**compression, "parent": str(parent)})
    if limit is not None:
        cfg["limit"] = limit
    return TrainConfig(**cfg)


def _steps(parent: Path, cfg: TrainConfig) -> int:
    counts = json.loads((parent / "data.json").read_text())["counts"] if (parent / "data.json").is_file() else {}
    train_n = min(counts.get("train", 1000), cfg.limit or 10 ** 9)
    return max(1, math.ceil(train_n / cfg.batch_size)) * cfg.epochs


def _report(run: Path, parent: Path, extra: dict) -> dict:
    model = load_keras(model_file(run))
    parent_model = load_keras(model_file(parent))
    metrics = {p: json.loads((p / "metrics.json").read_text()).get("summary") for p in (parent, run)}
    config = json.loads((run / "config.json").read_text())
    report = {**config["compression"], **extra, "fine_tune": {"epochs": config["epochs"], "lr": config["lr"]},
              "model": stats.describe(model), "parent_model": stats.describe(parent_model),
              "val_summary": {"parent": metrics[parent], "this": metrics[run]}}
    write_json(run / "compression.json", report)
    return report


def prune_run(run, sparsity: float = 0.5, schedule: str = "polynomial", epochs: int = 2, lr: float = 1e-4,
              skip_first_conv: bool = True, skip_heads: bool = True, skip_depthwise: bool = False, exclude=(),
              name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Path:
    parent, parent_cfg = _parent(run)
    compression = {"method": "magnitude", "target_sparsity": sparsity, "schedule": schedule,
                   "skip_first_conv": skip_first_conv, "skip_heads": skip_heads, "skip_depthwise": skip_depthwise,
                   "exclude": list(exclude)}
    cfg = derived_config(parent, parent_cfg, f"prune{int(round(sparsity * 100))}", compression, epochs, lr, name,
                         runs_dir, limit)
    total = _steps(parent, cfg)
    end_step, frequency = int(0.7 * total), max(1, min(100, total // 20))
    chosen = []

    def build(spec):
        model = load_keras(model_file(parent))
        chosen[:] = magnitude.prunable_layers(model, skip_first_conv, skip_heads, skip_depthwise, exclude)
        return magnitude.wrap_for_pruning(model, magnitude.make_schedule(schedule, sparsity, end_step, frequency),
                                          chosen)

    def finalize(out: Path):
        for which in ("best", "last"):
            save_model(magnitude.strip(load_keras(model_file(out, which))), out, which)

    out = train(cfg, build_model=build, extra_callbacks=[magnitude.update_step_callback()], finalize=finalize)
    _report(out, parent, {"method": "magnitude", "pruned_layers": chosen})
    return out


def _calibration_images(cfg, spec, n: int):
    """n training images (stratified by gender x age band, seeded), normalized for the model; None if n is 0."""
    if not n:
        return None
    from edgeface.data import load_data, stratified_subset
    from edgeface.data.pipeline import load_images, normalize

    train = load_data(cfg.data, seed=cfg.seed, fold=cfg.fold, dedup=cfg.dedup, limit=cfg.limit, verbose=False)["train"]
    chosen = stratified_subset(train, min(n, len(train)), seed=cfg.seed)
    return normalize(load_images([r.path for r in chosen], spec.input_size), spec.config).astype(np.float32)


def structured_prune_run(run, ratio: float | None = 0.3, threshold: float | None = None, norm: str = "l2",
                         min_filters: int = 8, multiple: int = 8, exclude=(), prune_residual: bool = False,
                         calibration_images: int = 256, epochs: int = 2, lr: float = 2e-4, name: str | None = None,
                         runs_dir: str | None = None, limit: int | None = None) -> Path:
    parent, parent_cfg = _parent(run)
    options = dict(ratio=ratio, threshold=threshold, norm=norm, min_filters=min_filters, multiple=multiple,
                   exclude=tuple(exclude), prune_residual=prune_residual)
    label = f"struct{int(round(ratio * 100))}" if ratio is not None else f"struct-t{threshold:g}"
    cfg = derived_config(parent, parent_cfg, label, {"method": "structured", **options, "exclude": list(exclude),
                                                     "calibration_images": calibration_images},
                         epochs, lr, name, runs_dir, limit)
    kept = {}

    def build(spec):
        slim, counts = prune_channels(load_keras(model_file(parent)), **options,
                                      images=_calibration_images(cfg, spec, calibration_images))
        kept.update(counts)
        return slim

    out = train(cfg, build_model=build)
    _report(out, parent, {"method": "structured", "filters_kept": kept})
    return out


def _train_images(parent: Path, spec, seed: int, n: int = 256):
    """Normalized images from the parent's own training split, to start QAT's activation ranges."""
    import random

    from edgeface.data.pipeline import load_images, normalize

    paths = (parent / "splits" / "train.txt").read_text().splitlines()
    paths = random.Random(seed).sample(paths, min(n, len(paths)))
    return normalize(load_images(paths, spec.input_size), spec.config).astype("float32")


def qat_run(run, epochs: int = 1, lr: float = 2e-5, preserve_sparsity: bool | None = None,
            teacher=None, temperature: float = 2.0, kd_weight: float = 0.5,
            name: str | None = None, runs_dir: str | None = None, limit: int | None = None) -> Path:
    """With a teacher run (or several, an ensemble) the quantized model also learns the teacher's soft outputs,
    as a student distilled from it did in float (for the bundled model this beat labels-only QAT on val,
    BENCHMARKS.md section 5)."""
    parent, parent_cfg = _parent(run)
    if preserve_sparsity is None:  # a magnitude-pruned parent keeps its zeros through QAT
        preserve_sparsity = parent_cfg.get("compression", {}).get("method") == "magnitude"
    compression = {"method": "qat", "preserve_sparsity": preserve_sparsity}
    if teacher:
        teachers, _, teacher_specs = _teachers(teacher, temperature, kd_weight)
        compression.update(teacher=_teacher_record(teachers), temperature=temperature, kd_weight=kd_weight)
    cfg = derived_config(parent, parent_cfg, "qat", compression, epochs, lr, name, runs_dir, limit)
    if teacher:
        _check_teachers(teacher_specs, cfg.age_head)
    try:  # before the run folder is made
        quantize_for_training(load_keras(model_file(parent)), preserve_sparsity)
    except EdgefaceError as err:
        raise EdgefaceError(f"{model_file(parent)}: {err}") from None
    left_float = []

    def build(spec):
        float_model = load_keras(model_file(parent))
        model, floats = quantize_for_training(float_model, preserve_sparsity)
        left_float[:] = floats
        calibrate_ranges(model, float_model, _train_images(parent, spec, cfg.seed))
        if not teacher:
            return model
        from edgeface.compress.distill import Distiller

        return Distiller(model, [load_keras(model_file(t)) for t in teachers], spec, teacher_specs, kd_weight,
                         temperature, cfg.loss_weights)

    cfg.bn_momentum = None  # BN is folded into the quantized convolutions
    out = train(cfg, build_model=build)
    _report(out, parent, {**compression, "layers_left_float": [{"layer": n, "why": w} for n, w in left_float]})
    return out


def _teachers(runs, temperature: float, kd_weight: float):
    """(teacher run folders, the first one's config, their ModelSpecs), after checking the distillation settings.
    `runs` is one run or several (an ensemble)."""
    from edgeface.models import ModelSpec

    if not 0 <= kd_weight <= 1 or temperature <= 0:
        raise EdgefaceError("--kd-weight must be in [0, 1] and --temperature positive")
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not runs:
        raise EdgefaceError("distillation needs at least one teacher run")
    parents = [_parent(run) for run in runs]
    specs = [ModelSpec.from_dict(json.loads((folder / "model.json").read_text())) for folder, _ in parents]
    return [folder for folder, _ in parents], parents[0][1], specs


def _teacher_record(folders) -> str | list:
    return str(folders[0]) if len(folders) == 1 else [str(f) for f in folders]


def _check_teachers(specs, student_age_head: str):
    from edgeface.compress.distill import check_age_heads

    for spec in specs:
        check_age_heads(spec.age_head, student_age_head)


def distill_run(teacher, backbone: str = "mobilenet_v2", alpha: float | None = None, input_size: int | None = None,
                weights: str | None = None, weights_dir: str | None = None, temperature: float = 2.0,
                kd_weight: float = 0.5, epochs: int | None = None, lr: float | None = None,
                name: str | None = None, runs_dir: str | None = None, limit: int | None = None,
                age_head: str | None = None) -> Path:
    """Trains a student with the (first) teacher run's recipe (same data, split, schedule) plus distillation;
    `teacher` is one run or several, an ensemble whose outputs are averaged."""
    from edgeface.compress.distill import Distiller
    from edgeface.models import create_model

    teachers, teacher_cfg, teacher_specs = _teachers(teacher, temperature, kd_weight)
    record = {"method": "distillation", "teacher": _teacher_record(teachers), "temperature": temperature,
              "kd_weight": kd_weight}
    cfg = dict(teacher_cfg)
    cfg.update(backbone=backbone, alpha=alpha, input_size=input_size,
               name=name or f"{teachers[0].name}-distill-{backbone}", runs_dir=runs_dir or str(teachers[0].parent),
               parents=[str(t) for t in teachers] + list(teacher_cfg.get("parents", [])), compression=record)
    for key, value in (("weights", weights), ("weights_dir", weights_dir), ("epochs", epochs), ("lr", lr),
                       ("limit", limit), ("age_head", age_head)):
        if value is not None:
            cfg[key] = value
    cfg = TrainConfig(**cfg)
    _check_teachers(teacher_specs, cfg.age_head)  # before the run folder is made

    def build(spec):
        return Distiller(create_model(spec), [load_keras(model_file(t)) for t in teachers], spec, teacher_specs,
                         kd_weight, temperature, cfg.loss_weights)

    out = train(cfg, build_model=build)
    summaries = [json.loads((t / "metrics.json").read_text()).get("summary") for t in teachers]
    write_json(out / "compression.json", {**record, "val_summary": {
        "teacher": summaries[0] if len(teachers) == 1 else
        "; ".join(f"{t}: {s}" for t, s in zip(teachers, summaries)),
        "this": json.loads((out / "metrics.json").read_text()).get("summary")}})
    return out
