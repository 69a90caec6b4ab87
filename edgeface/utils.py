"""Small shared helpers: atomic writes (no half-written outputs) and seeding."""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; it replaces `path` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


SCRATCH_PREFIX = ".edgeface-scratch-"


@contextmanager
def scratch_dir(folder=None):
    """A scratch folder inside `folder` (default: $TMPDIR), removed when the block ends. Its name carries this
    process's pid, so one left by a killed process (SIGKILL runs no cleanup) is removed by the next scratch_dir in
    the same folder once that pid is gone (issue 29 item 9: export kills left SavedModel folders behind)."""
    folder = Path(folder or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{SCRATCH_PREFIX}*"):
        pid = stale.name[len(SCRATCH_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    where = Path(tempfile.mkdtemp(dir=folder, prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def seed_everything(seed: int) -> None:
    import numpy as np
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def sha256_file(path) -> str:
    """The plain sha256 of a file's bytes, read in chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


CONFIG_MAX_BYTES = 1 << 20
CONFIG_MAX_DEPTH = 50


def load_yaml(path, what: str = "config file"):
    """A small YAML (or JSON) file as data, refusing what could blow up: anchors and aliases (a few lines of
    "billion laughs" expand to gigabytes), more than 1 MiB, nesting deeper than 50. One-line errors name the file."""
    import yaml

    from edgeface.errors import EdgefaceError

    path = Path(path)
    if not path.is_file():
        raise EdgefaceError(f"{path}: {what} not found")
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise EdgefaceError(f"{path}: {path.stat().st_size >> 10} KiB is too large for a {what}")
    text = path.read_text(errors="replace")
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        depth = 0
        for token in yaml.scan(text):
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                raise EdgefaceError(f"{path}: YAML anchors and aliases are not accepted in a {what}")
            if isinstance(token, (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
                                  yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)):
                depth += 1
                if depth > CONFIG_MAX_DEPTH:
                    raise EdgefaceError(f"{path}: nested deeper than {CONFIG_MAX_DEPTH} levels")
            elif isinstance(token, (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise EdgefaceError(f"{path}: not valid {kind} ({str(err).splitlines()[0]})") from None
