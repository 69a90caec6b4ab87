"""Backbone registry: each backbone registers a builder and the config that exporters and benchmarks read."""
from __future__ import annotations

import dataclasses
from typing import Callable

from edgeface.errors import EdgefaceError


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """What the rest of edgeface needs to know about a backbone without building it.

    mean/std are per channel on the 0-255 scale, in `channel_order`; the network sees (pixel - mean) / std.
    """

    name: str
    family: str  # "lightweight" or "full-size"
    default_input_size: int
    min_input_size: int
    max_input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    # Standard Keras file names of no-top ImageNet weights, by width multiplier; empty: no ImageNet weights.
    imagenet_files: dict = dataclasses.field(default_factory=dict)
    default_alpha: float | None = None
    description: str = ""
    input_multiple: int = 1  # the input size must be a multiple of this (ViT: its 8x8 patch grid)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_BUILDERS: dict[str, Callable] = {}
_CONFIGS: dict[str, BackboneConfig] = {}


def register_backbone(config: BackboneConfig):
    """Decorator: `builder(input_shape, alpha) -> keras.Model` mapping an image to a feature vector."""

    def wrap(builder):
        if config.name in _BUILDERS:
            raise ValueError(f"backbone {config.name!r} registered twice")
        _BUILDERS[config.name] = builder
        _CONFIGS[config.name] = config
        return builder

    return wrap


def list_backbones(family: str | None = None) -> list[str]:
    return sorted(n for n, c in _CONFIGS.items() if family is None or c.family == family)


def get_backbone_config(name: str) -> BackboneConfig:
    if name not in _CONFIGS:
        raise EdgefaceError(f"unknown backbone {name!r}; choose one of: {', '.join(list_backbones())}")
    return _CONFIGS[name]


def get_builder(name: str) -> Callable:
    get_backbone_config(name)
    return _BUILDERS[name]
