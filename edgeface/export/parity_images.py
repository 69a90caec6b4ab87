"""The labelled images an export's parity check compares on, when they come from a dataset spec (--parity-data, or
the card's training data for the app form of an exported file) rather than from the run's recorded split."""
from __future__ import annotations

from edgeface.errors import EdgefaceError


def parity_records(data: str, count: int) -> list:
    """`count` records of `data`'s validation split (its test split when it has none), stratified by gender x age
    group with seed 0, so the same spec always gives the same images."""
    from edgeface.data import load_data, stratified_subset

    try:
        bundle = load_data(data, check=False, verbose=False)
    except EdgefaceError as err:
        raise EdgefaceError(f"{err}; pass --parity-data SPEC (labelled images for the parity check)") from None
    records = stratified_subset(bundle.splits.get("val") or bundle.splits.get("test") or [], count, seed=0)
    if not records:
        raise EdgefaceError(f"{data}: no validation images for the parity check; pass --parity-data SPEC")
    return records
