"""Faces in photos (`edgeface predict --detect`, `edgeface.detect.detect_faces`): a detector finds each face,
the crop contract (edgeface.data.framing) cuts it the way the training chips are framed, the model sees what it was
trained on.

    blazeface       MediaPipe BlazeFace short-range (default; what MediaPipe Tasks' FaceDetector runs in apps)
    blazeface-full  MediaPipe BlazeFace full-range (small or distant faces)
    haar            OpenCV's Haar cascade (fallback; no keypoints)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from edgeface.data.framing import CONTRACTS, CropContract
from edgeface.errors import EdgefaceError

DETECTORS = tuple(CONTRACTS)
DEFAULT_DETECTOR = "blazeface"

__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "Face", "find_faces", "detect_faces", "read_photo", "upright_pixels",
           "contract"]


@dataclasses.dataclass
class Face:
    box: tuple  # x, y, w, h in photo pixels
    score: float | None  # detector confidence (None for Haar)
    keypoints: np.ndarray | None  # (6, 2) photo pixels in edgeface.detect.blazeface.KEYPOINTS order (None for Haar)
    crop: np.ndarray | None = None  # uint8 RGB square crop per the crop contract


def contract(detector: str = DEFAULT_DETECTOR) -> CropContract:
    if detector not in CONTRACTS:
        raise EdgefaceError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    return CONTRACTS[detector]


def model_path(detector: str):
    """The detector's model file (BlazeFace: checked against its sha256)."""
    contract(detector)  # a clear error for an unknown name
    if detector == "haar":
        from edgeface.detect.haar import cascade_path

        return cascade_path()
    from edgeface.detect.blazeface import VARIANTS, model_file

    return model_file(VARIANTS[detector])


def find_faces(rgb: np.ndarray, detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """Faces in a uint8 RGB photo, most confident (Haar: largest) first, without crops."""
    contract(detector)  # a clear error for an unknown name
    if detector == "haar":
        from edgeface.detect.haar import find_boxes

        return [Face(tuple(float(v) for v in box), None, None) for box in find_boxes(rgb)]
    from edgeface.detect.blazeface import detect_tiled, detector as blazeface

    return [Face(d.box, d.score, d.keypoints) for d in detect_tiled(blazeface(detector), rgb)]


def read_photo(path) -> np.ndarray:
    """uint8 RGB pixels of a photo, turned upright by its EXIF orientation (phones store it there), after the
    image check (a regular file, a format we decode, within the pixel budget)."""
    from edgeface.data import check_image

    problem = check_image(str(path))
    if problem:
        raise EdgefaceError(f"{path}: {problem}")
    return upright_pixels(path)


def upright_pixels(path) -> np.ndarray:
    """read_photo without the check, for a caller that has just checked the file (the check decodes it too)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise EdgefaceError(f"{path}: not a readable image ({err.__class__.__name__})") from None


def detect_faces(path_or_rgb, detector: str = DEFAULT_DETECTOR, rotate: bool | None = None) -> list[Face]:
    """Every face in a photo (a file or a uint8 RGB array), each with its crop per the detector's contract;
    `rotate` overrides the contract's eye levelling. An empty list when there is none."""
    rgb = path_or_rgb if isinstance(path_or_rgb, np.ndarray) else read_photo(path_or_rgb)
    rule = contract(detector)
    if rotate is not None:
        rule = dataclasses.replace(rule, rotate=rotate and rule.rotate)
    faces = find_faces(rgb, detector)
    for face in faces:
        face.crop = rule.crop(rgb, face.box, face.keypoints)
    return faces
