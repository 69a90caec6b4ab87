"""Teachers for any method: opened and checked, recorded in the compression record, wrapped around a student."""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.models.age_heads import check_distillable
from edgeface.run import Run
from edgeface.run.compression import Distillation, settings
from edgeface.run.train_config import TrainConfig


def open_teachers(runs) -> list[Run]:
    """The teacher runs: `runs` is one run or several (an ensemble)."""
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not runs:
        raise EdgefaceError("distillation needs at least one teacher run")
    return [Run.open(run, finished=True) for run in runs]


def _teacher_record(teachers: list[Run]) -> str | list:
    return str(teachers[0].path) if len(teachers) == 1 else [str(t.path) for t in teachers]


def distillation_record(teacher, temperature: float | None = None, kd_weight: float | None = None) -> dict:
    """The compression record's teacher fields: empty without a teacher, so the method trains on labels alone (the
    softening settings mean nothing then); None takes the default of edgeface.run.compression.Distillation."""
    if not teacher:
        if temperature is not None or kd_weight is not None:
            raise EdgefaceError("temperature and kd_weight apply with --teacher (they soften a teacher's outputs)")
        return {}
    o = settings(Distillation, temperature=temperature, kd_weight=kd_weight)
    return {"teacher": _teacher_record(open_teachers(teacher)), "temperature": o.temperature,
            "kd_weight": o.kd_weight}


def recorded_teachers(compression: dict) -> list[Run]:
    """The teacher runs a compression record names (none, one path, or a list: an ensemble)."""
    record = compression.get("teacher")
    if not record:
        return []
    return [Run.open(t, finished=True) for t in ([record] if isinstance(record, str) else record)]


def with_teachers(student, teachers: list[Run], spec, cfg: TrainConfig):
    from edgeface.compress.distill import Distiller

    c = cfg.compression
    return Distiller(student, [t.load_model() for t in teachers], spec, [t.spec for t in teachers], c["kd_weight"],
                     c["temperature"], cfg.loss_weights)


def check_teachers(teachers: list[Run], student_age_head: str):
    for teacher in teachers:
        check_distillable(teacher.spec.age_head, student_age_head)
