"""Each compression method's settings, their defaults and allowed values, typed: the one owner that the library's
keywords, the CLI's choices and help texts and the validation of a value all read (issue 31). A run records the
settings it used in its config's `compression`."""
from __future__ import annotations

from typing import Literal

import pydantic

from edgeface.config import Config

PruneMethod = Literal["magnitude", "structured"]
PruneSchedule = Literal["polynomial", "constant"]
ChannelNorm = Literal["l1", "l2"]


class Distillation(Config):
    """With a teacher: the soft loss on temperature-softened outputs, weighted `kd_weight` (1 - it: the labels)."""

    temperature: float = pydantic.Field(2.0, gt=0)
    kd_weight: float = pydantic.Field(0.5, ge=0, le=1)


class Magnitude(Config):
    sparsity: float = pydantic.Field(0.5, gt=0, lt=1)
    schedule: PruneSchedule = "polynomial"
    epochs: int = pydantic.Field(2, ge=1)
    lr: float = pydantic.Field(1e-4, gt=0)


class Structured(Config):
    ratio: float = pydantic.Field(0.3, gt=0, lt=1)
    norm: ChannelNorm = "l2"
    min_filters: int = pydantic.Field(8, ge=1)
    multiple: int = pydantic.Field(8, ge=1)
    calibration_images: int = pydantic.Field(256, ge=1)
    epochs: int = pydantic.Field(2, ge=1)
    lr: float = pydantic.Field(2e-4, gt=0)


class QAT(Config):
    epochs: int = pydantic.Field(1, ge=1)
    lr: float = pydantic.Field(2e-5, gt=0)


def settings(options: type[Config], **given) -> Config:
    """The method's settings: its defaults with the values given (None: not given) checked and applied."""
    return options(**{k: v for k, v in given.items() if v is not None})


def default(options: type[Config], key: str):
    return options.model_fields[key].default
