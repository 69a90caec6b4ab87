"""OpenCV's frontal-face Haar cascade (`--detector haar`), whose weights ship inside the opencv-python-headless
wheel (nothing is downloaded). Kept as a fallback: it misses many faces that BlazeFace finds (issue 19) and gives
no keypoints, so its crops cannot be turned to level the eyes."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from edgeface.data.framing import DETECTOR_MODELS
from edgeface.errors import EdgefaceError

MIN_FACE_PX = 40


def cascade_path() -> Path:
    import cv2

    return Path(cv2.data.haarcascades) / DETECTOR_MODELS["haar"].file


@functools.lru_cache(maxsize=1)
def _cascade():
    """The detector, loaded once per process (its XML is ~1 MB)."""
    import cv2

    path = cascade_path()
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
