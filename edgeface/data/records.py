"""One record type for every dataset, and the bundle of splits a reader returns."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from edgeface.labels import AGE_GROUP_LABELS, FEMALE, GENDER_LABELS, MALE

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Record:
    path: str
    gender: int | None = None  # 1 = male, 0 = female, None = unlabelled
    age: float | None = None  # years, when the dataset gives them
    age_group: int | None = None  # index into edgeface.labels.AGE_GROUPS
    race: str | None = None
    source: str = ""

    def stratum(self) -> tuple:
        return (self.gender, self.age_group)


def label_arrays(records) -> tuple[np.ndarray, np.ndarray]:
    """The records' gender (1 male, 0 female, -1 unlabelled) and age in years (float32, NaN unlabelled), as the
    arrays metrics, parity checks and training targets read."""
    gender = np.array([-1 if r.gender is None else r.gender for r in records])
    age = np.array([np.nan if r.age is None else r.age for r in records], np.float32)
    return gender, age


@dataclasses.dataclass
class DataBundle:
    """A dataset's records per split, how the split was made, and what was skipped on the way."""

    name: str
    splits: dict  # split name -> list[Record]
    split_source: str  # "canonical", "partition file", "fold k", "generated (seed s)"
    skipped: list = dataclasses.field(default_factory=list)  # (path, reason)
    notes: list = dataclasses.field(default_factory=list)
    spec: str = ""  # the --data spec it was read from
    validate_on: str | None = None  # a mixture's source whose val records pick the best epoch (None: all of val)

    def __getitem__(self, split: str) -> list:
        return self.splits[split]

    def choice_val(self) -> list:
        """The val records that pick the best epoch. A mixture's val split holds every source's val records, so
        that its run reports each source at the chosen epoch; the choice is made on the declared source alone."""
        return [r for r in self.splits["val"] if self.validate_on is None or r.source == self.validate_on]

    @property
    def numeric_age(self) -> bool:
        records = [r for s in self.splits.values() for r in s if r.age_group is not None]
        return bool(records) and all(r.age is not None for r in records)

    def label_classes(self, task: str) -> int:
        """How many distinct labels of a task the training split has (gender values, or age groups)."""
        field = "gender" if task == "gender" else "age_group"
        return len({getattr(r, field) for r in self.splits.get("train", [])} - {None})

    def has_labels(self, task: str) -> bool:
        field = "gender" if task == "gender" else "age_group"
        return any(getattr(r, field) is not None for r in self.splits.get("train", []))

    def label_counts(self) -> str:
        """Per split: images by gender and by age group (unlabelled ones counted as such)."""
        lines = []
        for name, records in self.splits.items():
            genders = Counter(r.gender for r in records)
            groups = Counter(r.age_group for r in records)
            gender = ", ".join(f"{label} {genders[i]}" for i, label in enumerate(GENDER_LABELS))
            ages = ", ".join(f"{label} {groups[i]}" for i, label in enumerate(AGE_GROUP_LABELS))
            lines.append(f"  {name}: {gender}, no gender {genders[None]}; age {ages}, no age {groups[None]}")
        return "\n".join(lines)

    def summary(self) -> str:
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        male = Counter(r.gender for r in self.splits.get("train", []))
        return (f"{self.name}: {counts} (split: {self.split_source}); train male share "
                f"{male[MALE] / max(1, male[MALE] + male[FEMALE]):.0%}; skipped {len(self.skipped)}")
