"""Calibration manifests: a versioned, stratified list of real images that every int8 export names."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from edgeface.data import load_data, parse_spec, stratified_subset
from edgeface.data.images import load_images, normalize
from edgeface.errors import EdgefaceError
from edgeface.utils import write_text

HEADER = "# edgeface calibration manifest v1"
DEFAULT_FOLDER = Path("calibration")
# the manifests shipped with the repository, found from any working folder
SHIPPED_FOLDER = Path(__file__).resolve().parents[2] / "calibration"


@dataclasses.dataclass
class Manifest:
    path: Path
    meta: dict
    images: list  # paths relative to root

    def roots(self, root: str | None = None) -> list[Path]:
        """Where the image paths may be relative to: --calibration-root; else the manifest's root, read from the
        working folder and then from the folder above the manifest's (the repository, for shipped manifests)."""
        if root:
            return [Path(root)]
        base = Path(self.meta["root"])
        return [base] if base.is_absolute() else [base, self.path.resolve().parent.parent / base]

    def resolve(self, root: str | None = None) -> list[Path]:
        from edgeface.data import check_image

        for base in self.roots(root):
            paths = [base / p for p in self.images]
            missing = [p for p in paths if not p.is_file()]
            if not missing:
                break
        if missing:
            raise EdgefaceError(f"{self.path}: {len(missing)} calibration images not found (first: {missing[0]}); "
                                "pass --calibration-root to point at the dataset folder")
        for path in paths:
            problem = check_image(str(path))
            if problem:
                raise EdgefaceError(f"{path}: {problem} (listed in the calibration manifest {self.path})")
        return paths

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def describe(self) -> dict:
        return {**self.meta, "manifest": str(self.path), "sha256": self.sha256, "size": len(self.images)}


def create_manifest(data: str, name: str, size: int = 300, split: str = "train", seed: int = 0,
                    folder: Path = DEFAULT_FOLDER, allow_outside_root: bool = False) -> Path:
    """Picks `size` images stratified by gender x age group from a split and writes calibration/NAME.txt."""
    if size < 1:
        raise EdgefaceError("--size must be at least 1")
    bundle = load_data(data, seed=seed, allow_outside_root=allow_outside_root)
    if split not in bundle.splits or not bundle[split]:
        raise EdgefaceError(f"{data}: no {split} split to calibrate from")
    chosen = stratified_subset(bundle[split], size, seed)
    if len(chosen) < size:
        logging.getLogger(__name__).warning(f"{data}: the {split} split has {len(chosen)} usable images, fewer than "
                                            f"--size {size}; the manifest lists all {len(chosen)}")
    kind, location = parse_spec(data)
    if kind == "synthetic":
        root = Path(chosen[0].path).parent
    elif kind == "csv":  # a csv manifest's image paths are relative to its folder, not to the file
        root = Path(location).parent
    else:
        root = Path(location)
    strata = Counter((r.gender, r.age_group) for r in chosen)
    lines = [HEADER, f"# data: {data}", f"# split: {split} ({bundle.split_source})", f"# size: {len(chosen)}",
             f"# seed: {seed}",
             f"# selection: stratified by gender x age group ({len(strata)} strata), proportional to the split",
             f"# root: {root}"]
    lines += [os.path.relpath(r.path, root) for r in chosen]
    out = Path(folder) / f"{name}.txt"
    write_text(out, "\n".join(lines) + "\n")
    return out


def read_manifest(path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        known = ", ".join(sorted({p.stem for folder in (DEFAULT_FOLDER, SHIPPED_FOLDER)
                                  for p in folder.glob("*.txt")})) or "none"
        raise EdgefaceError(f"{path}: calibration manifest not found (shipped manifests: {known}); "
                            "make one with `edgeface calibrate`")
    lines = path.read_text().splitlines()
    if not lines or lines[0] != HEADER:
        raise EdgefaceError(f"{path}: not an edgeface calibration manifest (first line must be '{HEADER}')")
    meta, images = {}, []
    for line in lines[1:]:
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = value
        elif line.strip():
            images.append(line.strip())
    if "root" not in meta or not images:
        raise EdgefaceError(f"{path}: manifest has no '# root:' line or no images")
    return Manifest(path, meta, images)


def find_manifest(name_or_path: str) -> Manifest:
    """A manifest by path, or by name under ./calibration/, then under the repository's calibration/."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = next((folder / f"{name_or_path}.txt" for folder in (DEFAULT_FOLDER, SHIPPED_FOLDER)
                     if (folder / f"{name_or_path}.txt").is_file()), DEFAULT_FOLDER / f"{name_or_path}.txt")
    return read_manifest(path)


def calibration_batches(manifest: Manifest, spec, root: str | None = None, limit: int | None = None):
    """Normalized float32 images, one at a time, through the shared preprocessing."""
    paths = manifest.resolve(root)[:limit]
    images = normalize(load_images(paths, spec.input_size), spec.backbone_config)
    return [images[i:i + 1].astype(np.float32) for i in range(len(images))]
