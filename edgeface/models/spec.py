"""ModelSpec: everything needed to rebuild a model and to feed and decode it; saved in the run folder and in
every model card. Its defaults are the training config's defaults (TrainConfig nests it)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pydantic

from edgeface.config import Config
from edgeface.data.records import label_arrays
from edgeface.models.age_heads import AGE_HEADS, AgeHead, age_head
from edgeface.models.heads import GENDER_DECODING, TASKS, gender_card_output
from edgeface.models.registry import BackboneConfig, get_backbone_config

Task = str


class ModelSpec(Config):
    config_key: ClassVar[str] = "model"
    backbone: str = "mobilenet_v2"
    input_size: int | None = None  # None: the backbone's default
    alpha: float | None = None  # None: the backbone's default width (if it has one)
    tasks: tuple[Task, ...] = TASKS
    age_head: str = "distribution"  # needs ages in years; group labels: groups | ordinal
    numeric_age: bool = True  # False when labels are age groups only (Adience); set from the data
    weights: str = "imagenet"  # imagenet | none | PATH to a .keras/.h5 weights file or a run folder
    dropout: float = pydantic.Field(0.2, ge=0, lt=1)
    head_units: int = pydantic.Field(0, ge=0)
    age_init: float = 33.0

    @pydantic.field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value):
        get_backbone_config(value)  # raises with the list of backbones
        return value

    @pydantic.field_validator("age_head")
    @classmethod
    def _known_head(cls, value):
        if value not in AGE_HEADS:
            raise ValueError(f"unknown age head {value!r}; choose one of {', '.join(AGE_HEADS)}")
        return value

    @pydantic.field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, value):
        value = tuple(value.split(",") if isinstance(value, str) else value)
        unknown = set(value) - set(TASKS)
        if unknown or not value:
            raise ValueError(f"tasks must be gender and/or age, got {', '.join(value) or 'none'}")
        return value

    @pydantic.model_validator(mode="after")
    def _fits_backbone(self):
        config = self.backbone_config
        if self.input_size is None:
            self.__dict__["input_size"] = config.default_input_size
        if not config.min_input_size <= self.input_size <= config.max_input_size:
            raise ValueError(f"input size {self.input_size} is outside {config.name}'s range "
                             f"{config.min_input_size}-{config.max_input_size}")
        if self.input_size % config.input_multiple:
            raise ValueError(f"{config.name} needs an input size that is a multiple of {config.input_multiple}, "
                             f"got {self.input_size}")
        if config.default_alpha is None:
            if self.alpha is not None:
                raise ValueError(f"backbone {config.name} has no width multiplier; drop --alpha")
        elif self.alpha is None:
            self.__dict__["alpha"] = config.default_alpha
        if AGE_HEADS[self.age_head].needs_years and not self.numeric_age and "age" in self.tasks:
            raise ValueError(f"age {self.age_head} needs numeric ages; these labels are age groups: "
                             "use --age-head groups or ordinal")
        return self

    @property
    def backbone_config(self) -> BackboneConfig:
        """The registered backbone's input config (size range, mean/std, channel order, weight files)."""
        return get_backbone_config(self.backbone)

    def head(self) -> AgeHead:
        return age_head(self.age_head, self.numeric_age)

    def decodings(self) -> dict:
        """Each output's decoding rule, as its model card states it."""
        out = {}
        if "gender" in self.tasks:
            out["gender"] = dict(GENDER_DECODING)
        if "age" in self.tasks:
            out["age"] = self.head().decoding()
        return out

    def card_outputs(self, dtype: str = "float32", quantization: dict | None = None) -> list:
        quantization = quantization or {}
        outputs = []
        if "gender" in self.tasks:
            outputs.append(gender_card_output(dtype, quantization.get("gender")))
        if "age" in self.tasks:
            outputs.append(self.head().card_output(dtype, quantization.get("age")))
        return outputs

    def encode_targets(self, records, class_weight: dict | None = None, band_weight: dict | None = None):
        """Per-output targets and sample weights; a missing label gets weight 0 so mixed datasets still train.
        class_weight: gender class -> weight (gender loss only); band_weight: age band -> weight (every task's loss;
        an image without an age band weighs 1)."""
        n = len(records)
        targets, weights = {}, {}
        gender, years = label_arrays(records)
        if "gender" in self.tasks:
            g = gender.astype(np.float32)
            w = (g >= 0).astype(np.float32)
            if class_weight:
                w *= np.array([class_weight.get(int(v), 1.0) if v >= 0 else 0.0 for v in g], np.float32)
            targets["gender"], weights["gender"] = np.maximum(g, 0).reshape(n, 1), w
        if "age" in self.tasks:
            groups = np.array([-1 if r.age_group is None else r.age_group for r in records], np.int64)
            known = (groups >= 0) if not self.numeric_age else ~np.isnan(years)
            targets["age"] = self.head().targets(years, groups).astype(np.float32).reshape(n, -1)
            weights["age"] = known.astype(np.float32)
        if band_weight:
            per_image = np.array([1.0 if r.age_group is None else band_weight.get(r.age_group, 1.0) for r in records],
                                 np.float32)
            weights = {task: w * per_image for task, w in weights.items()}
        return targets, weights

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(**d)
