"""Model registry facade: `create_model(spec)` builds backbone + heads from a ModelSpec that round-trips to JSON."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import edgeface  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.models import backbones  # noqa: F401  (registers the backbones)
from edgeface.models.heads import AGE_HEADS, NUMERIC_AGE_HEADS, build_heads
from edgeface.models.registry import BackboneConfig, get_backbone_config, get_builder, list_backbones

__all__ = ["ModelSpec", "create_model", "load_model", "list_backbones", "get_backbone_config", "BackboneConfig"]

SPEC_FILE = "model.json"


@dataclasses.dataclass
class ModelSpec:
    """Everything needed to rebuild a model and to feed and decode it; saved as model.json beside weights."""

    backbone: str = "mobilenet_v2"
    input_size: int | None = None
    alpha: float | None = None
    tasks: tuple = ("gender", "age")
    age_head: str = "regression"
    numeric_age: bool = True  # False when labels are age groups only (Adience)
    weights: str = "imagenet"  # imagenet | none | PATH to a .keras/.h5 weights file or a run folder
    dropout: float = 0.2
    head_units: int = 0
    age_init: float = 33.0

    def __post_init__(self):
        config = get_backbone_config(self.backbone)
        self.tasks = tuple(self.tasks)
        if self.input_size is None:
            self.input_size = config.default_input_size
        if not config.min_input_size <= self.input_size <= config.max_input_size:
            raise EdgefaceError(f"input size {self.input_size} is outside {config.name}'s range "
                                f"{config.min_input_size}-{config.max_input_size}")
        if config.default_alpha is None:
            if self.alpha is not None:
                raise EdgefaceError(f"backbone {config.name} has no width multiplier; drop --alpha")
        elif self.alpha is None:
            self.alpha = config.default_alpha
        unknown = set(self.tasks) - {"gender", "age"}
        if unknown or not self.tasks:
            raise EdgefaceError(f"tasks must be gender and/or age, got {', '.join(self.tasks) or 'none'}")
        if self.age_head not in AGE_HEADS:
            raise EdgefaceError(f"unknown age head {self.age_head!r}; choose one of {', '.join(AGE_HEADS)}")
        if self.age_head in NUMERIC_AGE_HEADS and not self.numeric_age and "age" in self.tasks:
            raise EdgefaceError(f"age {self.age_head} needs numeric ages; these labels are age groups: "
                                "use --age-head groups or ordinal")

    @property
    def config(self) -> BackboneConfig:
        return get_backbone_config(self.backbone)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    def save(self, folder: Path) -> None:
        from edgeface.utils import write_json
        write_json(Path(folder) / SPEC_FILE, self.to_dict())


def create_model(spec: ModelSpec | None = None, **kwargs) -> keras.Model:
    """Builds the multi-task model. Pass a ModelSpec or its fields (`create_model(backbone="vit")`)."""
    spec = spec or ModelSpec(**kwargs)
    size = spec.input_size
    inputs = keras.Input((size, size, 3), name="image")
    weights = spec.weights if spec.weights in ("imagenet", "none") else "none"
    features = get_builder(spec.backbone)(inputs, alpha=spec.alpha, weights=None if weights == "none" else weights)
    outputs = build_heads(features, spec.tasks, spec.age_head, spec.numeric_age, spec.dropout, spec.head_units,
                          spec.age_init)
    model = keras.Model(inputs, outputs, name=f"edgeface_{spec.backbone}")
    if spec.weights not in ("imagenet", "none"):
        path = Path(spec.weights)
        if path.is_dir():  # a previous run: start from its best model
            path = model_file(path)
        if not path.is_file():
            raise EdgefaceError(f"{path}: weights file not found")
        try:
            model.load_weights(str(path), skip_mismatch=path.suffix == ".h5", by_name=path.suffix == ".h5")
        except Exception as err:
            raise EdgefaceError(f"{path}: cannot load weights into {spec.backbone}: {str(err).splitlines()[0]}")
    return model


MODEL_SUFFIXES = (".keras", ".h5")
_WRAPPER_PREFIX = re.compile(r"^(val_)?(?:quant_|prune_low_magnitude_)")


def task_key(name: str) -> str:
    """tfmot wrappers rename outputs and their logs (quant_gender, val_quant_age_mae): the name by task."""
    return _WRAPPER_PREFIX.sub(r"\1", name)


def model_file(run, which: str = "best") -> Path:
    """A run's saved model: NAME.keras, or NAME.h5 for quantization-aware models (tfmot's quantize wrappers do
    not round-trip through the .keras format)."""
    for suffix in MODEL_SUFFIXES:
        if (Path(run) / f"{which}{suffix}").is_file():
            return Path(run) / f"{which}{suffix}"
    return Path(run) / f"{which}.keras"


def has_quantize_wrappers(model) -> bool:
    return any(type(layer).__name__ in ("QuantizeWrapperV2", "QuantizeWrapper", "QuantizeLayer")
               for layer in model.layers)


def load_keras(path) -> keras.Model:
    """Loads a .keras file, including models still wrapped for pruning or quantization-aware training."""
    import tensorflow_model_optimization as tfmot

    from edgeface.compress.qat import CUSTOM_OBJECTS

    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS), tfmot.sparsity.keras.prune_scope():
        return keras.models.load_model(str(path), compile=False)


def load_model(path) -> tuple[keras.Model, ModelSpec]:
    """Loads a saved .keras model (or a run folder's best model) with the spec saved beside it."""
    path = Path(path)
    if path.is_dir():
        path = model_file(path)
    if not path.is_file():
        raise EdgefaceError(f"{path}: no such model file (expected a run folder or a .keras file)")
    spec_path = path.parent / SPEC_FILE
    if not spec_path.is_file():
        raise EdgefaceError(f"{spec_path}: missing; edgeface models are saved with their model.json beside them")
    spec = ModelSpec.from_dict(json.loads(spec_path.read_text()))
    try:
        model = load_keras(path)
    except Exception as err:
        raise EdgefaceError(f"{path}: not a loadable Keras model ({str(err).splitlines()[0][:160]})")
    return model, spec
