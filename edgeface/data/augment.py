"""Typed data settings, readable without TensorFlow (the training config validates before TensorFlow loads)."""
from __future__ import annotations

from typing import ClassVar

import pydantic

from edgeface.config import Config


class AugmentConfig(Config):
    """Training-time augmentation. Angles in degrees; zoom/shear/translate as fractions; 0 turns a step off."""

    config_key: ClassVar[str] = "augment"

    flip: bool = True
    rotation: float = pydantic.Field(10.0, ge=0)
    zoom: float = pydantic.Field(0.1, ge=0, lt=1)
    shear: float = pydantic.Field(0.0, ge=0)
    translate: float = pydantic.Field(0.05, ge=0, lt=1)
    brightness: float = pydantic.Field(0.15, ge=0)
    contrast: float = pydantic.Field(0.15, ge=0, lt=1)
    randaugment: int = pydantic.Field(0, ge=0)  # number of RandAugment ops per image (Cubuk et al. 2020); 0 = off
    randaugment_magnitude: int = pydantic.Field(9, ge=0, le=10)
    mixup: float = pydantic.Field(0.0, ge=0)  # Beta(alpha, alpha) for MixUp (Zhang et al. 2018); 0 = off
    # a face detector's measured framing spread (edgeface.data.framing), drawn per image on top of the steps
    # above; off by default: the default geometry already spans BlazeFace's spread (BENCHMARKS §8)
    framing: str = "none"

    @pydantic.field_validator("framing")
    @classmethod
    def _known_detector(cls, value):
        from edgeface.data.framing import CONTRACTS

        if value != "none" and value not in CONTRACTS:
            raise ValueError(f"none or a detector's measured framing: {', '.join(CONTRACTS)}")
        return value
