"""Each method's plan (what to build, which callbacks, what to write at the end), made from the config's
compression record alone, so a run started by any method resumes from its folder; `execute` runs a plan
through the shared training loop."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgeface.compress.lineage import fine_tune_steps, parent_of
from edgeface.compress.prune import make_schedule, prunable_layers, strip, update_step_callback, wrap_for_pruning
from edgeface.compress.qat import calibrate_ranges, quantize_for_training
from edgeface.compress.reports import compression_report, warn_if_collapsed
from edgeface.compress.structured import prune_channels
from edgeface.compress.teachers import check_teachers, recorded_teachers, with_teachers
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.train.trainer import train


@dataclass
class Plan:
    """How the shared training loop runs one compression method, and what is written when it ends."""
    build: Callable
    report: Callable[[Run], None]
    callbacks: list = field(default_factory=list)
    finalize: Callable | None = None


def execute(cfg: TrainConfig, resume: bool = False) -> Run:
    plan = PLANS[cfg.compression["method"]](cfg)
    build, teachers = plan.build, recorded_teachers(cfg.compression)
    if teachers:
        check_teachers(teachers, cfg.model.age_head)  # before the run folder is made

        def build(spec):
            return with_teachers(plan.build(spec), teachers, spec, cfg)
    out = train(cfg, resume=resume, build_model=build, extra_callbacks=plan.callbacks, finalize=plan.finalize)
    plan.report(out)
    return out


def _magnitude_plan(cfg: TrainConfig) -> Plan:
    parent, c = parent_of(cfg), cfg.compression
    total = fine_tune_steps(parent, cfg)
    end_step, frequency = int(0.7 * total), max(1, min(100, total // 20))
    chosen = []

    def build(spec):
        model = parent.load_model()
        chosen[:] = prunable_layers(model, c["skip_first_conv"], c["skip_heads"], c["skip_depthwise"], c["exclude"])
        schedule = make_schedule(c["schedule"], c["target_sparsity"], end_step, frequency)
        return wrap_for_pruning(model, schedule, chosen)

    def finalize(out: Run):
        for which in ("best", "last"):
            out.save_model(strip(out.load_model(which)), which)

    return Plan(build, lambda out: compression_report(out, parent, {"method": "magnitude", "pruned_layers": chosen}),
                [update_step_callback()], finalize)


def _training_images(parent: Run, spec, seed: int, n: int):
    """n of the parent's recorded training images (stratified by gender x age band, seeded), normalized for the
    model; None if n is 0. What structured pruning measures channels on and QAT starts its ranges from (one
    sampler: edgeface.data.stratified_subset, as calibration manifests use)."""
    if not n:
        return None
    from edgeface.data import stratified_subset
    from edgeface.data.images import load_images, normalize

    train = parent.split("train")
    chosen = stratified_subset(train, min(n, len(train)), seed=seed)
    return normalize(load_images([r.path for r in chosen], spec.input_size), spec.backbone_config).astype(np.float32)


def _structured_plan(cfg: TrainConfig) -> Plan:
    parent, c = parent_of(cfg), cfg.compression
    options = {key: c[key] for key in ("ratio", "threshold", "norm", "min_filters", "multiple", "prune_residual")}
    kept = {}

    def build(spec):
        slim, counts = prune_channels(parent.load_model(), **options, exclude=tuple(c["exclude"]),
                                      images=_training_images(parent, spec, cfg.seed, c["calibration_images"]))
        kept.update(counts)
        return slim

    return Plan(build, lambda out: compression_report(out, parent, {"method": "structured", "filters_kept": kept}))


QAT_RANGE_IMAGES = 256  # training images whose activations start QAT's quantization ranges


def _qat_plan(cfg: TrainConfig) -> Plan:
    parent, c = parent_of(cfg), cfg.compression
    left_float = []

    def build(spec):
        float_model = parent.load_model()
        model, floats = quantize_for_training(float_model, c["preserve_sparsity"])
        left_float[:] = floats
        calibrate_ranges(model, float_model, _training_images(parent, spec, cfg.seed, QAT_RANGE_IMAGES))
        return model

    def report(out: Run):
        compression_report(out, parent, {key: value for key, value in c.items() if key != "parent"}
                           | {"layers_left_float": [{"layer": n, "why": w} for n, w in left_float]})

    return Plan(build, report)


def _distill_plan(cfg: TrainConfig) -> Plan:
    from edgeface.models import create_model

    teachers = recorded_teachers(cfg.compression)

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
        warn_if_collapsed(record, best, this, "the student", "its best teacher",
                          "train longer, use a larger student, or lower --kd-weight")
        out.write_compression(record)

    return Plan(lambda spec: create_model(spec, weights_dir=cfg.weights_dir), report)


PLANS = {"magnitude": _magnitude_plan, "structured": _structured_plan, "qat": _qat_plan,
         "distillation": _distill_plan}
