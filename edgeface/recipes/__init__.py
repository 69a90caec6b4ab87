"""Built-in recipes: named sets of config overrides shipped as YAML beside this file."""
from __future__ import annotations

from pathlib import Path

import yaml

from edgeface.errors import EdgefaceError

FOLDER = Path(__file__).parent


def recipe_overrides(name: str | None) -> dict:
    if name is None:
        return {}
    file = FOLDER / f"{name}.yaml"
    if not file.is_file():
        raise EdgefaceError(f"unknown recipe {name!r}; have {', '.join(p.stem for p in FOLDER.glob('*.yaml'))}")
    return yaml.safe_load(file.read_text()) or {}
