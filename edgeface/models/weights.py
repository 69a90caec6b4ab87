"""ImageNet weights: a local folder first (--weights-dir, EDGEFACE_WEIGHTS_DIR, the Keras cache), then the network."""
from __future__ import annotations

import glob
import os
from pathlib import Path

from edgeface.errors import EdgefaceError

ENV_VAR = "EDGEFACE_WEIGHTS_DIR"
_weights_dir: str | None = None


def set_weights_dir(path: str | None) -> None:
    """Sets the folder searched first (the CLI's --weights-dir)."""
    global _weights_dir
    if path is not None and not Path(path).is_dir():
        raise EdgefaceError(f"{path}: --weights-dir is not a folder")
    _weights_dir = path


def search_dirs() -> list[Path]:
    dirs = [_weights_dir, os.environ.get(ENV_VAR), str(Path.home() / ".keras" / "models")]
    return [Path(d) for d in dirs if d]


def _alpha_key(config, alpha) -> str | None:
    return None if config.default_alpha is None else str(float(alpha))


def find_local(config, alpha) -> Path | None:
    """The newest local file whose standard Keras name matches this backbone and width; None if none."""
    pattern = config.imagenet_files.get(_alpha_key(config, alpha))
    if pattern is None:
        return None
    for folder in search_dirs():
        hits = sorted(glob.glob(str(folder / pattern)))
        if hits:
            return Path(hits[-1])
    return None


def build_with_imagenet(app_fn, config, **kwargs):
    """Builds a keras.applications model with ImageNet weights: a local file if any, else Keras' download."""
    alpha = kwargs.get("alpha")
    local = find_local(config, alpha)
    if local is not None:
        app = app_fn(weights=None, **kwargs)
        app.load_weights(str(local))
        return app
    width = f" alpha {alpha}" if config.default_alpha is not None else ""
    if _alpha_key(config, alpha) not in config.imagenet_files:
        raise EdgefaceError(f"no ImageNet weights exist for {config.name}{width}; use --weights none")
    try:
        return app_fn(weights="imagenet", **kwargs)
    except Exception as err:  # offline: Keras raises a bare Exception("URL fetch failure ...")
        where = ", ".join(str(d) for d in search_dirs())
        raise EdgefaceError(
            f"ImageNet weights for {config.name}{width} are not in {where} and could not be downloaded "
            f"({str(err).splitlines()[0][:120]}); put {config.imagenet_files[_alpha_key(config, alpha)]!r} "
            f"in one of them or pass --weights-dir") from None
