"""Opening an exported artifact in its runtime, by the formats table."""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.runtime.formats import FORMATS, format_of
from edgeface.runtime.runners import Runner


def open_runner(path, threads: int | None = None, pixels=None) -> Runner:
    """The runner for an exported artifact, picked by the formats table (suffix, or a SavedModel folder).
    Keras models are opened by `edgeface.load`, which checks them before any of their code could run. `pixels`
    (a normalization: mean, std, channel order) for app-form artifacts, which read raw pixel bytes."""
    path = Path(path)
    if not path.exists():
        raise EdgefaceError(f"{path}: artifact not found")
    try:
        return FORMATS[format_of(path)].open(path, threads, pixels)
    except EdgefaceError:
        raise
    except Exception as err:
        raise EdgefaceError(f"{path}: cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
