"""Shared test helpers: tiny generated dataset folders in each supported layout, and the shared/ location."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
UTKFACE = SHARED / "data" / "utkface"
IMAGENET = SHARED / "weights" / "imagenet"


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is only on project machines and CI)")
    return path


def face_image(path: Path, seed: int, size: int = 40) -> Path:
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randint(0, 255) for _ in range(3)))
    img.putpixel((size // 2, size // 2), (255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGEFACE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _library_logs_reach_caplog(monkeypatch):
    """The CLI keeps edgeface's messages to its own handler; tests that ran it before must not hide them from
    caplog."""
    import logging

    monkeypatch.setattr(logging.getLogger("edgeface"), "propagate", True)


@pytest.fixture
def utk_folder(tmp_path) -> Path:
    """UTKFace-style names, irregular ones included, with a canonical split folder."""
    folder = tmp_path / "utk" / "UTKFace"
    names = []
    for i in range(40):
        age, gender, race = 1 + (i * 7) % 80, i % 2, i % 5
        names.append(f"{age}_{gender}_{race}_2017011{i:04d}.jpg.chip.jpg")
    names += ["39_1_20170116174525125.jpg.chip.jpg", "26_0_1_20170116 .jpg.chip.jpg", "45_1_0_20170109jpg.chip.jpg"]
    for i, name in enumerate(names):
        face_image(folder / name, i)
    splits = tmp_path / "utk" / "splits"
    splits.mkdir()
    (splits / "train.txt").write_text("\n".join(names[:30]) + "\n")
    (splits / "val.txt").write_text("\n".join(names[30:37]) + "\n")
    (splits / "test.txt").write_text("\n".join(names[37:]) + "\n")
    return tmp_path / "utk"


@pytest.fixture
def csv_manifest(tmp_path) -> Path:
    rows = ["path,gender,age"]
    for i in range(30):
        face_image(tmp_path / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,{'m' if i % 2 else 'female'},{10 + i}")
    file = tmp_path / "faces.csv"
    file.write_text("\n".join(rows) + "\n")
    return file


ADIENCE_HEADER = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\tfiducial_yaw_angle\t"
                  "fiducial_score\n")


@pytest.fixture
def adience_folder(tmp_path) -> Path:
    """Five folds; per fold one unknown gender and one missing age, both to be dropped, and stray age labels."""
    ages = ["(25, 32)", "(8, 23)", "35", "None", "(60, 100)", "2", "(38, 43)", "(15, 20)"]
    for k in range(5):
        lines = [ADIENCE_HEADER]
        for i, age in enumerate(ages):
            gender = "u" if i == 4 else ("m" if i % 2 else "f")
            lines.append(f"u{k}\timg{i}.jpg\t{i}\t{age}\t{gender}\t0\t0\t1\t1\t0\t0\t0\n")
            face_image(tmp_path / "aligned" / f"u{k}" / f"landmark_aligned_face.{i}.img{i}.jpg", 10 * k + i)
        (tmp_path / f"fold_{k}_data.txt").write_text("".join(lines))
    return tmp_path


# A public-domain photo with one face (tests/data/README.md): detection tests run on a clone without ../shared.
ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"


def photo_with_chip(tmp_path: Path, index=1, left=230, top=90, side=160):
    """A 'photo': the index-th UTKFace test chip scaled to `side` px inside a larger frame (edges replicated)."""
    folder = require_shared(UTKFACE)
    name = (folder / "splits" / "test.txt").read_text().split()[index]
    chip = np.asarray(Image.open(folder / "UTKFace" / name).convert("RGB").resize((side, side)))
    photo = np.pad(chip, ((top, 400 - top - side), (left, 640 - left - side), (0, 0)), mode="edge")
    path = tmp_path / f"photo{index}.jpg"
    Image.fromarray(photo).save(path, quality=95)
    return path, (left, top, side)


from compress_runs import cnn_parent, parent  # noqa: E402,F401  trained runs the compression tests share
