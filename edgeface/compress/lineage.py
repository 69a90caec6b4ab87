"""A compressed run's config: its parent's recipe, re-aimed at fine-tuning, with the lineage recorded."""
from __future__ import annotations

import math

from edgeface.run import Run
from edgeface.run.train_config import TrainConfig

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


def fine_tune_steps(parent: Run, cfg: TrainConfig) -> int:
    train_n = min(parent.data_info.get("counts", {}).get("train", 1000), cfg.limit or 10 ** 9)
    return max(1, math.ceil(train_n / cfg.batch_size)) * cfg.epochs


def parent_of(cfg: TrainConfig) -> Run:
    return Run.open(cfg.compression["parent"], finished=True)
