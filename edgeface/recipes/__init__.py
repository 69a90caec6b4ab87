"""Built-in recipes: named sets of config overrides shipped as YAML beside this file."""
from __future__ import annotations

from pathlib import Path

import yaml

from edgeface.errors import EdgefaceError

FOLDER = Path(__file__).parent
SMOKE = "smoke"  # what a bare `edgeface train` runs: synthetic faces, no dataset, about a minute


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def recipe_overrides(name: str | None) -> dict:
    if name is None:
        return {}
    file = FOLDER / f"{name}.yaml"
    if not file.is_file():
        raise EdgefaceError(f"unknown recipe {name!r}; have {', '.join(names())}")
    return yaml.safe_load(file.read_text()) or {}


def command_config(config_file=None, recipe: str | None = None, flags: dict | None = None, assignments=(),
                   tasks: str | None = None):
    """The TrainConfig a `train` / `tune` command line asks for, so Python can ask for the same: defaults, then
    the config file, the recipe, the flags given (None: not given; flat spec keys such as backbone allowed),
    --tasks and the --set KEY=VALUE assignments, each over the one before."""
    from edgeface.run.train_config import TrainConfig, merge, nest, parse_assignments

    overrides = nest({**recipe_overrides(recipe), **{k: v for k, v in (flags or {}).items() if v is not None}})
    if tasks:
        overrides = merge(overrides, {"model": {"tasks": [t.strip() for t in tasks.split(",") if t.strip()]}})
    return TrainConfig.load(config_file, merge(overrides, nest(parse_assignments(assignments))))
