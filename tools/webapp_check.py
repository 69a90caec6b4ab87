"""The reference web app against `edgeface predict` in headless Chromium (BENCHMARKS.md, apps): N UTKFace test chips
decoded and resized by the page in every runtime of the artifact (and with the canvas scaler the card warns
against), and composite photos through MediaPipe Tasks' FaceDetector.
Usage: python tools/webapp_check.py [--model ARTIFACT] [--n 200] [--photos 100] [--output FILE.json]"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edgeface.bundled import bundled_model
from edgeface.data.images import read_image
from edgeface.detect.composites import composite
from edgeface.webapp.check import browser_check

parser = argparse.ArgumentParser()
parser.add_argument("--model", default=str(bundled_model()))
parser.add_argument("--folder", default="../shared/data/utkface")
parser.add_argument("--n", type=int, default=200)
parser.add_argument("--photos", type=int, default=100)
parser.add_argument("--output")
args = parser.parse_args()
folder = Path(args.folder)
names = (folder / "splits" / "test.txt").read_text().split()
rng = np.random.default_rng(0)
chips = [folder / "UTKFace" / names[i] for i in sorted(rng.choice(len(names), args.n, replace=False))]
with tempfile.TemporaryDirectory() as where:
    photos = []
    for i, chip in enumerate(chips[:args.photos]):
        photo, _ = composite(read_image(chip), rng)
        photos.append(Path(where) / f"{i:04d}.jpg")
        Image.fromarray(photo).save(photos[-1], quality=92)
    report = browser_check(args.model, chips, photos)
text = json.dumps(report, indent=2)
print(text)
if args.output:
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text + "\n")
