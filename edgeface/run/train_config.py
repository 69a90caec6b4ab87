"""Training configuration: defaults are the documented recipe; a YAML/JSON file, then flags and `--set` override
them. One typed config (pydantic): the model spec is nested in it, so the two share one set of defaults, and
the allowed values below (Literal types) are also the CLI's choices."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pydantic
import yaml

from edgeface.config import Config
from edgeface.data.augment import AugmentConfig
from edgeface.errors import EdgefaceError
from edgeface.models.spec import ModelSpec
from edgeface.utils import load_yaml

Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["cosine", "plateau", "multistep", "constant"]
AgeLoss = Literal["mae", "huber", "mse"]
ClassWeight = Literal["none", "balanced"]
BandWeight = Literal["none", "sqrt", "balanced"]
Strategy = Literal["default", "mirrored", "multiworker"]
# keys a flat config (older run folders, recipe files, flags) may give for the nested model spec
SPEC_KEYS = tuple(ModelSpec.model_fields)


class TrainConfig(Config):
    """The default recipe (UTKFace, MobileNetV2 1.0 @128, ImageNet): AdamW (5e-4) + warm-up/cosine, 12 epochs,
    flip/rotate/zoom/shift/brightness/contrast, gender label smoothing, age as a distribution over 0..100 years
    (DLDL-v2: KL to a Gaussian around the label + L1 on its expectation) weighted 0.1, and batch-norm momentum
    0.99 so the moving statistics keep up with fine-tuned weights (Keras MobileNets ship 0.999).
    Each choice was made on the validation split (BENCHMARKS.md, section 1); it does not yet reach the
    94.5% / 4.6 test target (two seeds: 94.23% / 4.71 and 94.67% / 4.74)."""

    data: str = "synthetic"
    name: str | None = None
    runs_dir: str = "runs"
    seed: int = 0
    fold: int | None = None
    dedup: bool = False
    allow_outside_root: bool = False  # csv manifests may name images outside their folder
    limit: int | None = pydantic.Field(None, ge=1)
    model: ModelSpec = pydantic.Field(default_factory=ModelSpec)
    weights_dir: str | None = None
    bn_momentum: float | None = pydantic.Field(0.99, gt=0, lt=1)  # None keeps each backbone's own
    # optimization
    epochs: int = pydantic.Field(12, ge=1)
    batch_size: int = pydantic.Field(64, ge=1)
    optimizer: Optimizer = "adamw"
    lr: float = pydantic.Field(5e-4, gt=0)
    weight_decay: float = pydantic.Field(1e-4, ge=0)
    momentum: float = pydantic.Field(0.9, ge=0, lt=1)
    # > 0: keep an exponential moving average of the weights (decay per step); validate/save it
    ema: float = pydantic.Field(0.0, ge=0, lt=1)
    schedule: Schedule = "cosine"
    warmup_epochs: float = pydantic.Field(1.0, ge=0)
    milestones: list[float] = [0.6, 0.85]  # multistep, fractions of epochs
    gamma: float = pydantic.Field(0.1, gt=0)
    freeze_epochs: int = pydantic.Field(0, ge=0)  # phase 1: train heads on a frozen backbone
    unfreeze_from: int = pydantic.Field(0, ge=0)  # phase 2: backbone layers from this index on are trainable
    finetune_lr_scale: float = pydantic.Field(1.0, gt=0)  # phase 2 LR relative to lr
    # losses
    loss_weights: dict[str, float] = {"gender": 1.0, "age": 0.1}
    loss_weight_schedule: list[tuple[int, dict[str, float]]] = []  # [[epoch, {"gender": w, ...}], ...]
    age_loss: AgeLoss = "mae"  # regression head
    label_smoothing: float = pydantic.Field(0.05, ge=0, lt=1)
    class_weight: ClassWeight = "none"  # gender
    band_weight: BandWeight = "none"  # every task's loss per age band: inverse frequency (balanced) or its sqrt
    # control
    monitor: str = "val_score"  # val_score = gender error % + age MAE; or any Keras log key
    early_stopping: int = pydantic.Field(0, ge=0)  # patience in epochs; 0 = off
    augment: AugmentConfig = pydantic.Field(default_factory=AugmentConfig)
    strategy: Strategy = "default"
    mixed_precision: bool = False
    verbose: int | None = None  # Keras fit verbosity; None = bar on a terminal, a line per epoch otherwise
    # lineage: runs this one was derived from (nearest first), and what was done to get here
    parents: list[str] = []
    compression: dict = {}

    @pydantic.model_validator(mode="before")
    @classmethod
    def _nest_spec_keys(cls, values):
        return nest(values) if isinstance(values, dict) else values

    @pydantic.field_validator("name")
    @classmethod
    def _plain_name(cls, value):
        """A run name is one folder under runs_dir: `--name ../../x` must not write a run elsewhere."""
        if value is not None and (not value or value in (".", "..") or "/" in value or "\\" in value
                                  or value.startswith(".")):
            raise ValueError(f"{value!r} is not a run name (one folder name: no '/', no leading '.')")
        return value

    @pydantic.model_validator(mode="after")
    def _phases(self):
        if self.freeze_epochs and self.freeze_epochs >= self.epochs:
            raise ValueError(f"freeze_epochs ({self.freeze_epochs}) must be below epochs ({self.epochs})")
        return self

    def run_name(self) -> str:
        return self.name or f"{self.model.backbone}-{self.model.input_size}"

    @classmethod
    def load(cls, path: str | None = None, overrides: dict | None = None) -> "TrainConfig":
        """Defaults, then the file at `path` (YAML or JSON), then `overrides` (nested dicts merge key by key)."""
        values = {}
        if path:
            file = Path(path)
            values = load_yaml(file) or {}  # YAML is a superset of JSON
            if not isinstance(values, dict):
                raise EdgefaceError(f"{file}: expected a mapping of config keys")
        merged = merge(nest(values), nest({k: v for k, v in (overrides or {}).items() if v is not None}))
        try:
            return cls(**merged)
        except EdgefaceError as err:
            raise EdgefaceError(f"{path}: {err}" if path else str(err)) from None


def nest(values: dict) -> dict:
    """Moves flat model-spec keys (backbone, input_size, ...) under `model`, where the config keeps them."""
    values = dict(values)
    flat = {k: values.pop(k) for k in SPEC_KEYS if k in values}
    if flat:
        values["model"] = {**(values.get("model") or {}), **flat}
    return values


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_assignments(pairs) -> dict:
    """--set KEY=VALUE pairs, values parsed as YAML (numbers, lists, dicts); a dotted KEY sets a nested key
    (augment.mixup=0.2, model.alpha=0.5)."""
    out = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise EdgefaceError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise EdgefaceError(f"--set {pair!r}: not a plain YAML value ({str(err).splitlines()[0]})") from None
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EdgefaceError(f"--set {pair!r}: {part} is set to a value and a mapping at once")
        node[leaf] = value
    return out
