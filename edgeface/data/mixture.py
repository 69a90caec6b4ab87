"""Several datasets as one (`--data mix:FILE.yaml`): each source keeps its own split protocol and labels only the
tasks it has (a missing label trains with weight 0, ModelSpec.encode_targets), its training images are sampled by
the source's weight, and the best epoch is chosen on the declared source's val split.

    validate_on: utkface                 # the source whose val split picks the best epoch (default: the first)
    sources:
      utkface: {data: "utkface:../shared/data/utkface"}
      lfw: {data: "lfw:/data/lfw", weight: 0.5}       # weight: share of its train split drawn per run (default 1)
      imdbwiki: {data: "imdbwiki:/data/imdbwiki-subset"}

The val and test splits hold every source's val and test images, each record naming its source, so a run's
metrics.json and `edgeface eval` report each source apart.
"""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from edgeface.data.records import DataBundle
from edgeface.errors import EdgefaceError
from edgeface.utils import load_yaml

@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    data: str
    weight: float = 1.0


def read_mixture(path: Path) -> tuple[list[Source], str]:
    """(sources, validate_on) from a mixture file, each value checked."""
    doc = load_yaml(path, "mixture file") or {}
    entries = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise EdgefaceError(f"{path}: expected `sources:` mapping names to {{data: KIND:PATH, weight: W}}")
    unknown = set(doc) - {"sources", "validate_on"}
    if unknown:
        raise EdgefaceError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (use sources, validate_on)")
    sources = []
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
            raise EdgefaceError(f"{path}: source {name!r} needs `data: KIND:PATH`")
        if entry["data"].startswith("mix:"):
            raise EdgefaceError(f"{path}: source {name!r} is itself a mixture; list its sources here instead")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            raise EdgefaceError(f"{path}: source {name!r}: weight must be a number in (0, 100], got {weight!r}")
        extra = set(entry) - {"data", "weight"}
        if extra:
            raise EdgefaceError(f"{path}: source {name!r}: unknown key(s) {', '.join(sorted(extra))}")
        sources.append(Source(str(name), entry["data"], float(weight)))
    validate_on = doc.get("validate_on", sources[0].name)
    if validate_on not in {s.name for s in sources}:
        raise EdgefaceError(f"{path}: validate_on {validate_on!r} is not one of the sources "
                            f"({', '.join(s.name for s in sources)})")
    return sources, validate_on


def sample(records: list, weight: float, seed: int) -> list:
    """weight x the records, drawn without replacement within each whole repeat (seeded)."""
    rng = random.Random(seed)
    whole, part = int(weight), weight - int(weight)
    out = list(records) * whole
    out += rng.sample(records, round(part * len(records)))
    return out


def load_mixture(path: Path, load_data, *, seed: int, dedup: bool, limit, check: bool, verbose: bool,
                 allow_outside_root: bool) -> DataBundle:
    """`load_data` reads each source (passed in: this module sits below the data facade)."""
    sources, validate_on = read_mixture(path)
    splits = {"train": [], "val": [], "test": []}
    skipped, notes, how = [], [], []
    for i, source in enumerate(sources):
        bundle = load_data(source.data, seed=seed, dedup=dedup, limit=limit, check=check, verbose=verbose,
                           allow_outside_root=allow_outside_root)
        named = {k: [dataclasses.replace(r, source=source.name) for r in v] for k, v in bundle.splits.items()}
        train = sample(named.get("train", []), source.weight, seed + i)
        splits["train"] += train
        splits["val"] += named.get("val", [])
        splits["test"] += named.get("test", [])
        skipped += bundle.skipped
        notes += [f"{source.name}: {n}" for n in bundle.notes]
        how.append(f"{source.name} ({bundle.split_source}; train {len(train)} of {len(named.get('train', []))})")
    bundle = DataBundle("mix", splits, f"mixture, best epoch on {validate_on} val: " + "; ".join(how), skipped,
                        notes, f"mix:{path}", validate_on)
    if not bundle.choice_val():
        raise EdgefaceError(f"{path}: source {validate_on!r} has no validation images to choose the best epoch on")
    return bundle
