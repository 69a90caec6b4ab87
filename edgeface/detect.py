"""Face crops from full photos (`edgeface predict --detect`): OpenCV's frontal-face Haar cascade, whose weights
ship inside the opencv-python-headless wheel (nothing is downloaded), then a square crop framed the way
UTKFace's aligned chips are, so the model sees what it was trained on."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError

CASCADE = "haarcascade_frontalface_default.xml"
# UTKFace framing, measured by `python tools/measure_framing.py` on 400 train chips (383 detected, each padded
# by half a chip): the cascade's box is 1.035 chip sides wide and the chip's centre sits 0.0025 chip sides right
# of and 0.09 below the box's centre (medians).
BOX_PER_CHIP = 1.035
CHIP_CENTER_FROM_BOX = (0.0025, 0.09)  # (right, down) in chip sides
MIN_FACE_PX = 40


@dataclasses.dataclass
class Face:
    box: tuple  # x, y, w, h of the detector's box in the photo (pixels)
    crop: np.ndarray  # uint8 RGB square crop framed like a UTKFace chip


@functools.lru_cache(maxsize=1)
def _cascade():
    """The detector, loaded once per process (its XML is ~1 MB)."""
    import cv2

    path = Path(cv2.data.haarcascades) / CASCADE
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise EdgefaceError(f"{path}: OpenCV's face cascade is missing from the installed opencv-python-headless")
    return detector


def find_boxes(rgb: np.ndarray, min_size: int = MIN_FACE_PX) -> list[tuple]:
    """Detector boxes (x, y, w, h), largest first."""
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    return sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3])


def chip_crop(rgb: np.ndarray, box: tuple) -> np.ndarray:
    """The square UTKFace-style crop around a detector box; borders past the photo are edge-replicated."""
    import cv2

    x, y, w, h = box
    side = w / BOX_PER_CHIP
    cx = x + w / 2 + CHIP_CENTER_FROM_BOX[0] * side
    cy = y + h / 2 + CHIP_CENTER_FROM_BOX[1] * side
    left, top, n = int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side))
    pad = max(0, -left, -top, left + n - rgb.shape[1], top + n - rgb.shape[0])
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else rgb
    return np.ascontiguousarray(padded[top + pad:top + pad + n, left + pad:left + pad + n])


def detect_faces(path) -> list[Face]:
    """Every face the detector finds in a photo, largest first; an empty list when there is none."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from edgeface.data import check_image

    problem = check_image(str(path))  # a regular file, a format we decode, within the pixel budget
    if problem:
        raise EdgefaceError(f"{path}: {problem}")
    try:
        with Image.open(path) as image:
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise EdgefaceError(f"{path}: not a readable image ({err.__class__.__name__})")
    return [Face(box, chip_crop(rgb, box)) for box in find_boxes(rgb)]
