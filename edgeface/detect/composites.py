"""Composite photos for detector tests and benchmarks (BENCHMARKS §8): a face chip pasted at a random size and place
into a 640x480 photo of smooth random colour blobs (no faces), the chip's outer 6% feathered into it."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def composite(chip: np.ndarray, rng) -> tuple[np.ndarray, tuple]:
    side = int(rng.integers(90, 320))
    left, top = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
    blobs = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    photo = Image.fromarray(blobs).resize((640, 480), Image.BICUBIC).filter(ImageFilter.GaussianBlur(20))
    face = Image.fromarray(chip).resize((side, side), Image.BILINEAR)
    y, x = np.mgrid[0:side, 0:side] / side
    edge = np.minimum(np.minimum(x, 1 - x), np.minimum(y, 1 - y))
    mask = np.clip(edge / 0.06, 0, 1)  # the chip's outer 6% blends into the background
    photo.paste(face, (left, top), Image.fromarray((mask * 255).astype(np.uint8)))
    noise = rng.normal(0, 4, (480, 640, 3))
    return np.clip(np.asarray(photo) + noise, 0, 255).astype(np.uint8), (left, top, side)
