"""ImageNet weights: a local folder first (--weights-dir, EDGEFACE_WEIGHTS_DIR, the Keras cache), then the network."""
from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import logging
import os
from pathlib import Path

from edgeface.errors import EdgefaceError

log = logging.getLogger(__name__)

ENV_VAR = "EDGEFACE_WEIGHTS_DIR"


def check_weights_dir(path: str | None) -> None:
    """--weights-dir must be a folder (checked before a run folder exists)."""
    if path is not None and not Path(path).is_dir():
        raise EdgefaceError(f"{path}: --weights-dir is not a folder")


def search_dirs(weights_dir: str | None = None) -> list[Path]:
    """Where ImageNet weight files are looked for, in order: `weights_dir` (a config's --weights-dir, passed down
    from the run, never a process-wide setting), EDGEFACE_WEIGHTS_DIR, Keras' own cache."""
    dirs = [weights_dir, os.environ.get(ENV_VAR), str(Path.home() / ".keras" / "models")]
    return [Path(d) for d in dirs if d]


def _alpha_key(config, alpha) -> str | None:
    return None if config.default_alpha is None else str(float(alpha))


def find_local(config, alpha, weights_dir: str | None = None) -> Path | None:
    """The file whose standard Keras name matches this backbone and width, from the first folder that has one (the
    last in name order when a pattern matches several, e.g. input sizes); None if none."""
    pattern = config.imagenet_files.get(_alpha_key(config, alpha))
    if pattern is None:
        return None
    for folder in search_dirs(weights_dir):
        hits = sorted(glob.glob(str(folder / pattern)))
        if hits:
            return Path(hits[-1])
    return None


def imagenet_problem(config, alpha) -> str | None:
    """Why ImageNet weights cannot exist for this backbone and width (checked before a run starts), or None."""
    if not config.imagenet_files:
        return f"{config.name} has no ImageNet weights (it trains from scratch): use --weights none"
    if _alpha_key(config, alpha) not in config.imagenet_files:
        widths = ", ".join(sorted(k for k in config.imagenet_files if k))
        return (f"ImageNet weights for {config.name} exist at alpha {widths}, not {alpha}; pick one of those "
                "or use --weights none")
    return None


def _check_sum(path: Path) -> None:
    """A SHA256SUMS file beside the weights (as ../shared/weights/imagenet ships) must list the file's hash."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return
    listed = {name.strip(): digest for digest, _, name in (line.partition("  ") for line in sums.read_text().splitlines())}
    if path.name in listed:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != listed[path.name]:
            raise EdgefaceError(f"{path}: sha256 does not match {sums} (truncated or corrupted download?)")


@contextlib.contextmanager
def _keras_quiet():
    """keras.applications prints "Downloading data from ..." on stdout and warns through TensorFlow's logger that
    a non-standard input size gets the 224 px weights (expected: edgeface trains at its own sizes); our own line
    says what happens instead (issue 32 item 12)."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def build_with_imagenet(app_fn, config, weights_dir: str | None = None, **kwargs):
    """Builds a keras.applications model with ImageNet weights: a local file if any, else Keras' download."""
    alpha = kwargs.get("alpha")
    problem = imagenet_problem(config, alpha)
    if problem:
        raise EdgefaceError(problem)
    local = find_local(config, alpha, weights_dir)
    if local is not None:
        _check_sum(local)
        with _keras_quiet():
            app = app_fn(weights=None, **kwargs)
        try:
            app.load_weights(str(local))
        except Exception as err:  # h5py raises OSError/KeyError for truncated or foreign files
            raise EdgefaceError(f"{local}: cannot load these ImageNet weights ({type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
        return app
    width = f" alpha {alpha}" if config.default_alpha is not None else ""
    log.info(f"ImageNet weights for {config.name}{width}: none in "
             f"{', '.join(str(d) for d in search_dirs(weights_dir))}; "
             "downloading them (Keras)")
    try:
        with _keras_quiet():
            return app_fn(weights="imagenet", **kwargs)
    except Exception as err:  # offline: Keras raises a bare Exception("URL fetch failure ...")
        where = ", ".join(str(d) for d in search_dirs(weights_dir))
        raise EdgefaceError(
            f"ImageNet weights for {config.name}{width} are not in {where} and could not be downloaded "
            f"({str(err).splitlines()[0]}); put {config.imagenet_files[_alpha_key(config, alpha)]!r} "
            f"in one of them or pass --weights-dir") from None
