"""Putting a finished artifact in place: its golden test vectors, then the file, its card and extras moved in
atomically, and SHA256SUMS updated."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgeface.card import card_path
from edgeface.errors import EdgefaceError
from edgeface.utils import scratch_dir, write_json


def write_vectors(staged: Path, runner, spec, normalization, decodings: dict) -> tuple[Path, dict]:
    """Writes NAME.vectors.json beside the staged artifact; returns it and the card's record of it."""
    import edgeface.golden as golden

    file = golden.vectors_path(staged)
    with tempfile.TemporaryDirectory(dir=staged.parent) as scratch:
        vectors = golden.compute(runner, normalization, decodings, spec.input_size, Path(scratch))
    sha = golden.write(file, golden.document(staged.name, vectors))
    return file, {"file": file.name, "sha256": sha, "images": len(vectors)}


def _write_sums(folder: Path, files: list[Path]) -> None:
    """SHA256SUMS in the output folder, `sha256sum -c` format: the plain hash of each shipped file (the card's
    artifact.sha256 is a content hash that leaves the embedded card out)."""
    from edgeface.utils import atomic_path, sha256_file

    sums = folder / "SHA256SUMS"
    entries = {}
    if sums.is_file():
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if name and (folder / name).exists():
                entries[name] = digest
    for file in files:
        if file.is_file():
            entries[file.name] = sha256_file(file)
    with atomic_path(sums) as tmp:
        tmp.write_text("".join(f"{d}  {n}\n" for n, d in sorted(entries.items())))


def install(staged: Path, path: Path, card: dict, extras: list = ()) -> None:
    """Installs the new artifact, its card and extras (test vectors) over any previous ones. Everything is first
    copied into a staging folder inside the destination folder (same filesystem), so a full disk or a kill while
    copying leaves the previous verified files untouched; then each file is renamed into place (atomic), and
    SHA256SUMS is updated. An interrupted swap can only leave a card whose hash does not match, which every load
    refuses. A failure names the output folder."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with scratch_dir(folder) as where:
            moves = []
            for source in (staged, *extras):
                target = where / source.name
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copyfile(source, target)
                moves.append((target, folder / source.name))
            new_card = where / card_path(path).name
            write_json(new_card, card)
            moves.append((new_card, card_path(path)))
            for source, target in moves:
                if target.is_dir() and not source.is_dir():
                    shutil.rmtree(target)
                if source.is_dir() and target.exists():
                    old = where / f"{target.name}.old"
                    os.replace(target, old)
                os.replace(source, target)
        _write_sums(folder, [target for _, target in moves])
    except OSError as err:
        raise EdgefaceError(f"{folder}: cannot write the export there ({err.strerror or err}); any previous "
                            f"{path.name} and its card are unchanged") from None
