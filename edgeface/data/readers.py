"""Readers: each turns one dataset's native layout into Records, split by the dataset's own protocol if any.

A reader returns (splits or None, records, skipped, split_source); `edgeface.data.load_data` does the rest
(image checks, de-duplication, generated splits, limits).
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from edgeface.data.records import Record
from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUPS, FEMALE, MALE, RACE_LABELS, age_to_group

READERS = {}


def reader(name):
    def wrap(fn):
        READERS[name] = fn
        return fn
    return wrap


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise EdgefaceError(f"{path}: not found; {what}")
    return path


# --- UTKFace ---------------------------------------------------------------------------------------------
_UTK_NAME = re.compile(r"^(\d+)_([01])_")


def parse_utkface_name(name: str):
    """AGE_GENDER_RACE_DATETIME.jpg.chip.jpg -> (age, gender, race); tolerates a missing race field."""
    m = _UTK_NAME.match(name)
    if not m:
        return None
    fields = name.split("_")
    race = RACE_LABELS[int(fields[2])] if len(fields) >= 4 and len(fields[2]) == 1 and fields[2] in "01234" else None
    return int(m.group(1)), MALE if m.group(2) == "0" else FEMALE, race


@reader("utkface")
def read_utkface(path: Path, fold=None, **_):
    """A folder of UTKFace crops, or its parent holding UTKFace/ and splits/{train,val,test}.txt."""
    folder = path / "UTKFace" if (path / "UTKFace").is_dir() else path
    if not folder.is_dir():
        raise EdgefaceError(f"{path}: not a folder; expected UTKFace images named AGE_GENDER_RACE_DATE.jpg.chip.jpg")
    records, skipped = {}, []
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        parsed = parse_utkface_name(file.name)
        if parsed is None:
            skipped.append((str(file), "name does not start with AGE_GENDER_"))
            continue
        age, gender, race = parsed
        records[file.name] = Record(str(file), gender, float(age), int(age_to_group(age)), race, "utkface")
    if not records:
        raise EdgefaceError(f"{folder}: no UTKFace images (AGE_GENDER_RACE_DATE.jpg.chip.jpg) found")
    split_dir = next((d for d in (path / "splits", folder / "splits", folder.parent / "splits") if d.is_dir()), None)
    if split_dir is None:
        return None, list(records.values()), skipped, None
    splits = {}
    for split in ("train", "val", "test"):
        names = _require(split_dir / f"{split}.txt", "the canonical split needs train.txt, val.txt, test.txt")
        listed = [n.strip() for n in names.read_text().splitlines() if n.strip()]
        missing = [n for n in listed if n not in records]
        if missing:
            raise EdgefaceError(f"{split_dir / (split + '.txt')}: {len(missing)} listed images are not in "
                                f"{folder} (first: {missing[0]})")
        splits[split] = [records[n] for n in listed]
    return splits, list(records.values()), skipped, f"canonical ({split_dir})"


# --- Adience ---------------------------------------------------------------------------------------------
_ADIENCE_CANONICAL = {f"({lo}, {hi})": i for i, (lo, hi) in enumerate(AGE_GROUPS)}
# Stray labels in the fold files, mapped to the 8 canonical groups (as in Levi & Hassner's protocol).
_ADIENCE_STRAY = {
    "2": 0, "3": 0, "(8, 23)": 2, "13": 2, "22": 3,
    "23": 4, "(27, 32)": 4, "29": 4, "32": 4, "34": 4,
    "(38, 42)": 5, "(38, 48)": 5, "35": 5, "36": 5, "42": 5, "45": 5,
    "46": 6, "56": 6, "55": 7, "57": 7, "58": 7,
}


def adience_age_group(label: str) -> int | None:
    label = label.strip()
    return _ADIENCE_CANONICAL.get(label, _ADIENCE_STRAY.get(label))


@reader("adience")
def read_adience(path: Path, fold=None, **_):
    """fold_0_data.txt ... fold_4_data.txt plus aligned/USER/landmark_aligned_face.FACE.IMAGE; 5-fold protocol."""
    fold_files = [path / f"fold_{k}_data.txt" for k in range(5)]
    absent = [f.name for f in fold_files if not f.is_file()]
    if absent:
        raise EdgefaceError(f"{path}: not an Adience folder; missing {', '.join(absent)} "
                            "(expected fold_0_data.txt ... fold_4_data.txt and aligned/)")
    image_root = path / "aligned" if (path / "aligned").is_dir() else path
    folds, skipped = [], []
    for k, fold_file in enumerate(fold_files):
        rows = list(csv.DictReader(fold_file.open(newline=""), delimiter="\t"))
        needed = {"user_id", "original_image", "face_id", "age", "gender"}
        if not rows or not needed <= set(rows[0]):
            raise EdgefaceError(f"{fold_file}: wrong layout; expected a tab-separated header with "
                                f"{', '.join(sorted(needed))}")
        fold_records = []
        for row in rows:
            image = image_root / row["user_id"] / f"landmark_aligned_face.{row['face_id']}.{row['original_image']}"
            gender = {"m": MALE, "f": FEMALE}.get((row["gender"] or "").strip())
            group = adience_age_group(row["age"] or "")
            if gender is None or group is None:
                skipped.append((str(image), f"label gender={row['gender']!r} age={row['age']!r} dropped"))
                continue
            fold_records.append(Record(str(image), gender, None, group, None, f"adience/fold{k}"))
        folds.append(fold_records)
    records = [r for f in folds for r in f]
    if fold is None:
        return None, records, skipped, None
    if not 0 <= fold < 5:
        raise EdgefaceError(f"--fold must be 0-4 for Adience, got {fold}")
    train = [r for k, f in enumerate(folds) if k != fold for r in f]
    return {"train": train, "test": folds[fold]}, records, skipped, f"fold {fold} held out"


# --- CelebA ----------------------------------------------------------------------------------------------
@reader("celeba")
def read_celeba(path: Path, fold=None, **_):
    """list_attr_celeba.txt (Male attribute) with img_align_celeba/; list_eval_partition.txt when present."""
    attr_file = _require(path / "list_attr_celeba.txt", "expected list_attr_celeba.txt and img_align_celeba/")
    lines = attr_file.read_text().splitlines()
    header = lines[1].split() if len(lines) > 1 else []
    if "Male" not in header:
        raise EdgefaceError(f"{attr_file}: wrong layout; line 2 must list attribute names including Male")
    male_col = header.index("Male") + 1
    image_root = path / "img_align_celeba" if (path / "img_align_celeba").is_dir() else path
    records = {}
    for n, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) != len(header) + 1 or fields[male_col] not in ("1", "-1"):
            raise EdgefaceError(f"{attr_file}:{n}: wrong label format (expected a file name and "
                                f"{len(header)} values of 1/-1)")
        records[fields[0]] = Record(str(image_root / fields[0]), MALE if fields[male_col] == "1" else FEMALE,
                                    None, None, None, "celeba")
    partition = path / "list_eval_partition.txt"
    if not partition.is_file():
        return None, list(records.values()), [], None
    splits = {"train": [], "val": [], "test": []}
    for n, line in enumerate(partition.read_text().splitlines(), start=1):
        name, _, part = line.partition(" ")
        if part.strip() not in ("0", "1", "2") or name not in records:
            raise EdgefaceError(f"{partition}:{n}: wrong format (expected 'FILE 0|1|2' for a file in the attribute list)")
        splits[("train", "val", "test")[int(part)]].append(records[name])
    return splits, list(records.values()), [], "partition file"


# --- FairFace --------------------------------------------------------------------------------------------
FAIRFACE_AGE_BUCKETS = {"0-2": 1, "3-9": 6, "10-19": 15, "20-29": 25, "30-39": 35, "40-49": 45,
                        "50-59": 55, "60-69": 65, "more than 70": 75}


@reader("fairface")
def read_fairface(path: Path, fold=None, **_):
    """fairface_label_train.csv / fairface_label_val.csv (file, age bucket, gender, race) beside the images.

    FairFace's age buckets do not line up with Adience groups: each maps to the group holding its midpoint.
    Its val file is its only held-out set, so it becomes our test split.
    """
    files = {"train": path / "fairface_label_train.csv", "test": path / "fairface_label_val.csv"}
    _require(files["train"], "expected fairface_label_train.csv and fairface_label_val.csv")
    splits = {}
    for split, file in files.items():
        if not file.is_file():
            continue
        rows = list(csv.DictReader(file.open(newline="")))
        if not rows or not {"file", "age", "gender"} <= set(rows[0]):
            raise EdgefaceError(f"{file}: wrong layout; expected a CSV header with file, age, gender")
        out = []
        for n, row in enumerate(rows, start=2):
            bucket, gender = row["age"].strip(), row["gender"].strip().lower()
            if bucket not in FAIRFACE_AGE_BUCKETS or gender not in ("male", "female"):
                raise EdgefaceError(f"{file}:{n}: wrong label format (age {bucket!r}, gender {row['gender']!r})")
            out.append(Record(str(path / row["file"]), MALE if gender == "male" else FEMALE, None,
                              int(age_to_group(FAIRFACE_AGE_BUCKETS[bucket])), row.get("race"), "fairface"))
        splits[split] = out
    records = [r for s in splits.values() for r in s]
    return (splits if "test" in splits else None), records, [], "FairFace train/val files"


# --- generic CSV manifest ---------------------------------------------------------------------------------
_GROUP_LABEL = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


@reader("csv")
def read_manifest(path: Path, fold=None, allow_outside_root: bool = False, **_):
    """A CSV with header path,gender,age (+ optional race, split). gender: m/male/f/female; age: years,
    '(lo, hi)' for an Adience group, or empty. Paths are relative to the CSV's folder and must stay inside it
    unless `allow_outside_root` (a manifest from elsewhere must not make edgeface read any file it names)."""
    if not path.is_file():
        raise EdgefaceError(f"{path}: manifest not found (expected a CSV with header path,gender,age)")
    if path.stat().st_size > 256 << 20:
        raise EdgefaceError(f"{path}: {path.stat().st_size >> 20} MiB is too large for a label manifest")
    rows = list(csv.DictReader(path.open(newline="")))
    if not rows or not {"path", "gender", "age"} <= set(rows[0] or {}):
        raise EdgefaceError(f"{path}: wrong layout; expected a CSV header with path,gender,age")
    with_split = "split" in rows[0]
    splits = {"train": [], "val": [], "test": []}
    records = []
    for n, row in enumerate(rows, start=2):
        gender = {"m": MALE, "male": MALE, "f": FEMALE, "female": FEMALE, "": None}.get(row["gender"].strip().lower(), -1)
        age_text = (row["age"] or "").strip()
        age, group = None, None
        try:
            if _GROUP_LABEL.match(age_text):
                group = adience_age_group(age_text)
                if group is None:
                    raise ValueError
            elif age_text:
                age = float(age_text)
                if not 0 <= age <= 120:
                    raise ValueError
                group = int(age_to_group(age))
        except ValueError:
            raise EdgefaceError(f"{path}:{n}: wrong label format: age {age_text!r} is neither years (0-120) "
                                "nor an Adience group like '(25, 32)'") from None
        if gender == -1:
            raise EdgefaceError(f"{path}:{n}: wrong label format: gender {row['gender']!r} (use m/male/f/female)")
        image = Path(row["path"])
        # lexical: no absolute path or ".." may leave the folder; a symlink inside it is the folder owner's own
        # arrangement (a dataset linked from elsewhere), so it is not resolved (issue 32 item 11)
        if not allow_outside_root and (image.is_absolute() or os.path.normpath(image).split(os.sep)[0] == ".."):
            raise EdgefaceError(f"{path}:{n}: image path {row['path']!r} points outside {path.parent}; pass "
                                "--allow-outside-root if that is intended")
        record = Record(str(image if image.is_absolute() else path.parent / image), gender, age, group,
                        (row.get("race") or None), f"csv:{path.name}")
        records.append(record)
        if with_split:
            split = row["split"].strip()
            if split not in splits:
                raise EdgefaceError(f"{path}:{n}: split {split!r} is not train, val or test")
            splits[split].append(record)
    return (splits if with_split else None), records, [], "split column" if with_split else None


# --- identity-disjoint splits -----------------------------------------------------------------------------
def identity_split(items: list, fractions: dict, seed: int) -> dict:
    """(identity, Record) pairs -> splits in which no identity (person) appears in two splits: identities are
    shuffled (seeded, from a sorted start) and dealt out until each split holds its fraction of the images."""
    import random

    people = {}
    for identity, record in items:
        people.setdefault(identity, []).append(record)
    order = sorted(people)
    random.Random(seed).shuffle(order)
    total, out, names = len(items), {name: [] for name in fractions}, list(fractions)
    bounds, acc = [], 0.0
    for name in names:
        acc += fractions[name]
        bounds.append(acc * total)
    done, split = 0, 0
    for identity in order:
        while split < len(names) - 1 and done >= bounds[split]:
            split += 1
        out[names[split]] += sorted(people[identity], key=lambda r: r.path)
        done += len(people[identity])
    return out


IDENTITY_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


# --- LFW with gender lists --------------------------------------------------------------------------------
def _name_list(path: Path) -> set:
    if path.stat().st_size > 16 << 20:
        raise EdgefaceError(f"{path}: too large for a list of file names")
    return {line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()}


@reader("lfw")
def read_lfw(path: Path, fold=None, seed: int = 0, **_):
    """Labeled Faces in the Wild (one folder per person, `lfw/NAME/NAME_0001.jpg`) with gender lists
    `male_names.txt` / `female_names.txt` (file names, one per line) in DIR or DIR/etc. Gender only. Split by
    person (80/10/10, seeded) so nobody is in two splits; files on both lists or on neither are skipped."""
    folder = path / "lfw" if (path / "lfw").is_dir() else path
    lists = [path / "etc" if (path / "etc").is_dir() else path] * 2
    male_file, female_file = lists[0] / "male_names.txt", lists[1] / "female_names.txt"
    for file in (male_file, female_file):
        _require(file, "LFW needs the gender lists male_names.txt and female_names.txt (see README, Datasets)")
    male, female = _name_list(male_file), _name_list(female_file)
    items, skipped = [], []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(person.iterdir()):
            if file.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            is_male, is_female = file.name in male, file.name in female
            if is_male == is_female:
                skipped.append((str(file), "on both gender lists" if is_male else "on neither gender list"))
                continue
            items.append((person.name, Record(str(file), MALE if is_male else FEMALE, None, None, None, "lfw")))
    if not items:
        raise EdgefaceError(f"{folder}: no LFW images found on the gender lists (expected lfw/NAME/NAME_0001.jpg)")
    splits = identity_split(items, IDENTITY_FRACTIONS, seed)
    return splits, [r for _, r in items], skipped, f"by person 80/10/10, seed {seed}"


# --- ages encoded in file names (IMDB-WIKI) ---------------------------------------------------------------
_IMDB_NAME = re.compile(r"^(nm\d+)_rm\d+_(\d{4})-\d{1,2}-\d{1,2}_(\d{4})\.jpe?g$", re.IGNORECASE)


@reader("imdbwiki")
def read_imdbwiki(path: Path, fold=None, seed: int = 0, **_):
    """IMDB-WIKI crops named `nmPERSON_rmPHOTO_BIRTH-M-D_PHOTOYEAR.jpg` anywhere under DIR: age = photo year -
    birth year (whole years, as IMDB-WIKI defines it), no gender. Split by person (80/10/10, seeded); names that
    do not parse or give an age outside 0-100 are skipped."""
    if not path.is_dir():
        raise EdgefaceError(f"{path}: not a folder of IMDB-WIKI crops")
    items, skipped = [], []
    for file in sorted(path.rglob("*")):
        if file.suffix.lower() not in (".jpg", ".jpeg") or not file.is_file():
            continue
        m = _IMDB_NAME.match(file.name)
        if not m:
            skipped.append((str(file), "name is not nmID_rmID_BIRTH-M-D_YEAR.jpg"))
            continue
        age = int(m.group(3)) - int(m.group(2))
        if not 0 <= age <= 100:
            skipped.append((str(file), f"age {age} from its name is outside 0-100"))
            continue
        items.append((m.group(1), Record(str(file), None, float(age), int(age_to_group(age)), None, "imdbwiki")))
    if not items:
        raise EdgefaceError(f"{path}: no IMDB-WIKI crops named nmID_rmID_BIRTH-M-D_YEAR.jpg found")
    splits = identity_split(items, IDENTITY_FRACTIONS, seed)
    return splits, [r for _, r in items], skipped, f"by person 80/10/10, seed {seed}"
