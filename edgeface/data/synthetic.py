"""A small synthetic face-like dataset for smoke runs on a machine with no real data.

Cartoon faces whose labels leave visible cues (hair length and a beard shadow for gender; grey hair,
wrinkles and face size for age), so a working pipeline scores well above chance. It says nothing about
real-world accuracy.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from edgeface.utils import write_text

SIZE = 64


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEFACE_CACHE", Path.home() / ".cache" / "edgeface"))


def draw_face(rng: random.Random, male: bool, age: int) -> Image.Image:
    bg = tuple(rng.randint(40, 220) for _ in range(3))
    im = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(im)
    cx, cy = SIZE / 2 + rng.uniform(-3, 3), SIZE / 2 + rng.uniform(-2, 3)
    scale = 0.75 + 0.25 * min(age, 20) / 20  # children have smaller faces in the crop
    w, h = 17 * scale, 22 * scale
    skin = rng.choice([(255, 220, 190), (230, 180, 140), (190, 140, 100), (140, 95, 60), (95, 65, 40)])
    grey = min(age / 80, 1.0)
    base_hair = rng.choice([(30, 20, 10), (90, 60, 30), (200, 170, 90), (60, 30, 20)])
    hair = tuple(int(c * (1 - grey) + 215 * grey) for c in base_hair)
    if not male:  # long hair behind the face, down to the shoulders
        d.rectangle([cx - w - 5, cy - h * 0.6, cx + w + 5, cy + h + 6], fill=hair)
    d.ellipse([cx - w - 2, cy - h - 4, cx + w + 2, cy + h * 0.1], fill=hair)
    d.ellipse([cx - w, cy - h * 0.8, cx + w, cy + h], fill=skin)
    if male and age >= 16:  # beard shadow
        shade = tuple(int(c * 0.7) for c in skin)
        d.chord([cx - w, cy - h * 0.1, cx + w, cy + h], 0, 180, fill=shade)
    for ex in (-w * 0.4, w * 0.4):
        d.ellipse([cx + ex - 2.5, cy - h * 0.2 - 2, cx + ex + 2.5, cy - h * 0.2 + 2], fill=(30, 30, 30))
    d.line([cx - w * 0.35, cy + h * 0.5, cx + w * 0.35, cy + h * 0.5], fill=(150, 50, 50), width=2)
    for i in range(min(age // 18, 4)):  # wrinkles
        y = cy - h * 0.55 + i * 2.5
        d.line([cx - w * 0.5, y, cx + w * 0.5, y], fill=tuple(int(c * 0.75) for c in skin), width=1)
    return im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


def synthetic_manifest(n: int = 600, seed: int = 0) -> Path:
    """Writes (once) n labelled images and a CSV manifest under the cache folder; returns the manifest path."""
    folder = cache_dir() / f"synthetic-v1-n{n}-seed{seed}"
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = random.Random(seed)
    rows = ["path,gender,age"]
    for i in range(n):
        male = rng.random() < 0.5
        age = int(min(90, max(1, rng.gauss(35, 20))))
        name = f"{i:05d}.png"
        draw_face(rng, male, age).save(tmp / name)
        rows.append(f"{name},{'m' if male else 'f'},{age}")
    write_text(tmp / "manifest.csv", "\n".join(rows) + "\n")
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
