"""edgeface's BlazeFace decoding against MediaPipe Tasks' own FaceDetector (Python), on composite photos made
from UTKFace test chips (BENCHMARKS.md §15): box width and eye keypoints of the best face, and whether the
bundled model's gender answer agrees on the crops cut (by the crop contract) from either detection.
Needs MediaPipe's Python Tasks, not a dependency of edgeface: pip install --no-deps mediapipe==1.2.2
Usage: python tools/mediapipe_detector_check.py [--n 100] [--folder ../shared/data/utkface]"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

import edgeface
from edgeface.bundled import bundled_model
from edgeface.data.images import read_image, square_resize
from edgeface.detect import contract, detect_faces, model_path
from edgeface.detect.composites import composite

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=100)
parser.add_argument("--folder", default="../shared/data/utkface")
args = parser.parse_args()
folder = Path(args.folder)
names = (folder / "splits" / "test.txt").read_text().split()
rng = np.random.default_rng(0)
chips = [folder / "UTKFace" / names[i] for i in sorted(rng.choice(len(names), 200, replace=False))]
options = contract("blazeface").card()["detector_model"]["options"]
detector = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
    base_options=BaseOptions(model_asset_path=str(model_path("blazeface"))),
    min_detection_confidence=options["min_detection_confidence"],
    min_suppression_threshold=options["min_suppression_threshold"]))
predictor, rule = edgeface.load(bundled_model()), contract("blazeface")
faces = agree = 0
width, keypoints = [], []
for chip in chips[:args.n]:
    photo, _ = composite(read_image(chip), rng)
    ours = detect_faces(photo)
    theirs = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(photo))).detections
    if not ours or not theirs:
        continue
    d, h, w = theirs[0], *photo.shape[:2]
    box = (d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width, d.bounding_box.height)
    points = np.array([[k.x * w, k.y * h] for k in d.keypoints])
    width.append(box[2] / ours[0].box[2] - 1)
    keypoints.append(np.abs(points[:2] - ours[0].keypoints[:2]).max())
    crops = np.stack([square_resize(ours[0].crop, 128), square_resize(rule.crop(photo, box, points), 128)])
    p = predictor.predict(crops)["prob_male"]
    faces += 1
    agree += (p[0] >= 0.5) == (p[1] >= 0.5)
detector.close()
print(f"faces {faces}, gender agrees {agree}; box width relative difference median {np.median(width):.4f}; "
      f"eye keypoints max |difference| median {np.median(keypoints):.2f} px")
