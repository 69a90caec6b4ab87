"""Small faces in large photos (issue 32 item 10): UTKFace chips pasted at 80 px into 1920x1080 photos of smooth
random colour blobs, found by each BlazeFace variant on the whole photo alone and with edgeface's tiling
(edgeface.detect.blazeface.detect_tiled). A hit: a detection centred within 40 px of the pasted face's centre;
extra: every other detection. Usage: python tools/small_faces.py [--n 100] [--side 80] [--output FILE]"""
from __future__ import annotations

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from edgeface.detect.blazeface import detect_tiled, detector

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=100)
parser.add_argument("--side", type=int, default=80)
parser.add_argument("--chips", default=str(Path(__file__).resolve().parents[2] / "shared/data/utkface/UTKFace"))
parser.add_argument("--output")
args = parser.parse_args()

chips = sorted(Path(args.chips).glob("*.jpg"))[: args.n * 12 : 12]
rng = np.random.default_rng(0)
result = {name: {"whole photo": {"hits": 0, "extra": 0, "ms": []}, "tiled": {"hits": 0, "extra": 0, "ms": []}}
          for name in ("blazeface", "blazeface-full")}
for path in chips:
    chip = np.asarray(Image.open(path).convert("RGB"))
    blobs = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    photo = Image.fromarray(blobs).resize((1920, 1080), Image.BICUBIC).filter(ImageFilter.GaussianBlur(60))
    left, top = int(rng.integers(0, 1920 - args.side)), int(rng.integers(0, 1080 - args.side))
    photo.paste(Image.fromarray(chip).resize((args.side, args.side), Image.BILINEAR), (left, top))
    rgb, centre = np.asarray(photo), (left + args.side / 2, top + args.side / 2)
    for name, modes in result.items():
        model = detector(name)
        for mode, run in (("whole photo", model), ("tiled", lambda x: detect_tiled(model, x))):
            start = time.perf_counter()
            found = run(rgb)
            modes[mode]["ms"].append(1000 * (time.perf_counter() - start))
            hit = any(abs(d.box[0] + d.box[2] / 2 - centre[0]) < 40 and abs(d.box[1] + d.box[3] / 2 - centre[1]) < 40
                      for d in found)
            modes[mode]["hits"] += int(hit)
            modes[mode]["extra"] += len(found) - int(hit)
for modes in result.values():
    for entry in modes.values():
        entry["ms_median"] = float(np.median(entry.pop("ms")))
report = {"photos": len(chips), "face_side_px": args.side, "photo": "1920x1080", "result": result}
print(json.dumps(report, indent=2))
if args.output:
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
