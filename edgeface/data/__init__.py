"""Datasets facade: `load_data("utkface:PATH")` -> DataBundle with train/val/test Records."""
from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from edgeface.data.images import MAX_FILE_BYTES, regular_file_problem  # noqa: F401  (re-exported)
from edgeface.data.readers import READERS
from edgeface.data.records import SPLITS, DataBundle, Record
from edgeface.errors import EdgefaceError
from edgeface.labels import FEMALE, GENDER_LABELS, MALE

__all__ = ["load_data", "parse_spec", "DataBundle", "Record", "MALE", "FEMALE", "GENDER_LABELS",
           "stratified_split", "stratified_subset", "deduplicate", "DATASETS"]

DATASETS = tuple(sorted(READERS)) + ("mix", "synthetic")


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, path = spec.partition(":")
    if kind == "synthetic":
        return kind, path
    if (kind not in READERS and kind != "mix") or not sep or not path:
        raise EdgefaceError(f"bad --data {spec!r}: use KIND:PATH with KIND one of {', '.join(DATASETS)} "
                            "(e.g. utkface:../shared/data/utkface), or 'synthetic'")
    return kind, path


# What TensorFlow's decode_image (the one decoder of the shared preprocessing) reads; PIL reads more (TIFF...).
DECODABLE = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "BMP": "BMP", "WEBP": "WebP"}
MAX_PIXELS = 40_000_000  # nor is an image above this pixel budget decoded (a 169-megapixel photo needs 4.3 GB)


def check_image(path: str) -> str | None:
    """None if the image can go through the shared preprocessing; else why not. JPEGs are decoded by the decoder
    the pipeline uses (libjpeg-turbo via simplejpeg, strict: corrupt entropy data or a stray end marker is an
    error, which PIL lets pass) at 1/8 scale: fast, and it still reads every coefficient."""
    problem = regular_file_problem(path)
    if problem:
        return problem
    try:
        with Image.open(path) as im:
            if im.format not in DECODABLE:
                return (f"a {im.format or 'unknown'} image, which TensorFlow's decoder cannot read (use "
                        f"{', '.join(DECODABLE.values())})")
            if im.width * im.height > MAX_PIXELS:
                return f"{im.width}x{im.height} pixels, above the {MAX_PIXELS // 10 ** 6} MP budget"
            if im.format == "JPEG":
                import simplejpeg

                with open(path, "rb") as f:
                    simplejpeg.decode_jpeg(f.read(), min_factor=8, strict=True)
                return None
            im.draft("RGB", (32, 32))
            im.load()
        return None
    except Exception as err:  # PIL raises many types for corrupt files
        return f"unreadable image ({type(err).__name__}: {str(err)[:80]})"


def check_images(records: list) -> tuple[list, list]:
    with ThreadPoolExecutor(8) as pool:
        problems = list(pool.map(check_image, [r.path for r in records]))
    good = [r for r, p in zip(records, problems) if p is None]
    bad = [(r.path, p) for r, p in zip(records, problems) if p is not None]
    return good, bad


def _file_hash(path: str) -> str:
    """Content hash for de-duplication; a file that may not be read is its own group (the image check skips it)."""
    if regular_file_problem(path):
        return f"unread:{path}"
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def deduplicate(records: list) -> tuple[list, list, int]:
    """Drops byte-identical copies: keeps one when labels agree, drops the whole group when they conflict."""
    with ThreadPoolExecutor(8) as pool:
        hashes = list(pool.map(_file_hash, [r.path for r in records]))
    groups = defaultdict(list)
    for h, r in zip(hashes, records):
        groups[h].append(r)
    keep, dropped, copies = set(), [], 0
    for group in groups.values():
        labels = {(r.gender, r.age, r.age_group) for r in group}
        if len(labels) == 1:
            keep.add(group[0].path)
            copies += len(group) - 1
        else:
            dropped += [(r.path, "duplicate image with conflicting labels") for r in group]
    return [r for r in records if r.path in keep], dropped, copies


def stratified_split(records: list, fractions: dict, seed: int) -> dict:
    """Deterministic split stratified by gender x age group, in the given fractions."""
    strata = defaultdict(list)
    for r in sorted(records, key=lambda r: r.path):
        strata[r.stratum()].append(r)
    rng = random.Random(seed)
    out = {name: [] for name in fractions}
    for key in sorted(strata, key=repr):
        items = strata[key]
        rng.shuffle(items)
        start = 0
        names = list(fractions)
        for i, name in enumerate(names):
            end = len(items) if i == len(names) - 1 else start + round(fractions[name] * len(items))
            out[name] += items[start:end]
            start = end
    return out


def load_data(spec: str, *, seed: int = 0, fold: int | None = None, dedup: bool = False, limit: int | None = None,
              check: bool = True, verbose: bool = True, allow_outside_root: bool = False) -> DataBundle:
    """Reads a dataset spec into train/val/test. `limit` caps each split (stratified, seeded) for quick runs.
    Manifests may name images outside their own folder only with `allow_outside_root`."""
    kind, path = parse_spec(spec)
    if kind == "synthetic":
        from edgeface.data.synthetic import synthetic_manifest

        if path and not (path.isdigit() and 0 < int(path) <= 100_000):
            raise EdgefaceError(f"bad --data {spec!r}: synthetic:N takes a number of images (1-100000)")
        kind, path = "csv", str(synthetic_manifest(int(path) if path else 600, seed=seed))
    if not Path(path).exists():
        raise EdgefaceError(f"{path}: no such file or folder (from --data {spec})")
    if kind == "mix":
        from edgeface.data.mixture import load_mixture

        return load_mixture(Path(path), load_data, seed=seed, dedup=dedup, limit=limit, check=check, verbose=verbose,
                            allow_outside_root=allow_outside_root)
    splits, records, skipped, split_source = READERS[kind](Path(path), fold=fold, seed=seed,
                                                           allow_outside_root=allow_outside_root)
    notes = []
    if dedup:
        unique, conflicts, copies = deduplicate(records)
        keep = {r.path for r in unique}
        skipped += conflicts
        notes.append(f"de-duplication: {copies} identical copies removed, {len(conflicts)} files with "
                     "conflicting labels dropped")
        records = unique
        if splits:
            splits = {k: [r for r in v if r.path in keep] for k, v in splits.items()}
    if splits is None:
        splits = stratified_split(records, {"train": 0.8, "val": 0.1, "test": 0.1}, seed)
        split_source = f"generated: stratified 80/10/10 by gender x age group, seed {seed}"
    elif "val" not in splits or not splits["val"]:
        parts = stratified_split(splits["train"], {"train": 0.9, "val": 0.1}, seed)
        splits = {"train": parts["train"], "val": parts["val"], "test": splits["test"]}
        split_source += f"; val: stratified 10% of train, seed {seed}"
    if limit:
        splits = {k: stratified_subset(v, limit, seed) for k, v in splits.items()}
    if check:
        checked = {}
        for name in SPLITS:
            checked[name], bad = check_images(splits.get(name, []))
            skipped += bad
        splits = checked
    bundle = DataBundle(kind if not spec.startswith("synthetic") else "synthetic", splits, split_source,
                        skipped, notes, spec)
    if not bundle.splits["train"] and not bundle.splits["test"]:
        raise EdgefaceError(f"{path}: no usable images after skipping {len(skipped)} unreadable or unlabelled ones")
    if skipped and verbose:
        shown = "; ".join(f"{p} ({why})" for p, why in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        logging.getLogger(__name__).warning(f"skipped {len(skipped)} images: {shown}{more}")
    return bundle


def stratified_subset(records: list, n: int, seed: int) -> list:
    """Exactly n records (or all), drawn proportionally from each gender x age group stratum."""
    if len(records) <= n:
        return records
    parts = stratified_split(records, {"keep": n / len(records), "rest": 1 - n / len(records)}, seed)
    return (parts["keep"] + parts["rest"])[:n]  # per-stratum rounding can leave a few short
