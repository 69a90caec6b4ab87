"""Measures how a face detector's box and eyes sit in UTKFace's aligned chips: the crop contract's numbers
(edgeface/data/framing.py) and the spread of detector framing that training augmentation should cover.

Usage: python tools/measure_framing.py [--detector blazeface|blazeface-full|haar] [--folder ../shared/data/utkface]
       [--n 400] [--output FILE.json]
Each train chip is padded by half its side (edge-replicated) so the detector sees the whole face; the chip is
expressed in the detector's terms: side / box width (scale); the chip centre from the box centre (offset_*) and
from the midpoint of the eyes (eye_*), in box widths in the frame of the eyes; the eye-line angle. Prints medians
and spreads; --output writes every measurement.
"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image

from edgeface.detect import find_faces


def measure(folder: Path, n: int, detector: str) -> dict:
    names = sorted((folder / "splits" / "train.txt").read_text().split())
    random.Random(0).shuffle(names)
    rows = []
    for name in names[:n]:
        chip = np.asarray(Image.open(folder / "UTKFace" / name).convert("RGB"))
        side, pad = chip.shape[1], chip.shape[1] // 2
        faces = find_faces(np.pad(chip, ((pad, pad), (pad, pad), (0, 0)), mode="edge"), detector)
        if not faces:
            continue
        face = faces[0]
        x, y, w, h = face.box
        theta, eyes = 0.0, None
        if face.keypoints is not None:
            (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
            theta, eyes = math.atan2(ly - ry, lx - rx), ((rx + lx) / 2, (ry + ly) / 2)
        cos, sin = math.cos(theta), math.sin(theta)

        def levelled(ax, ay):  # chip centre from (ax, ay), in box widths, in the frame of the eyes
            vx, vy = pad + side / 2 - ax, pad + side / 2 - ay
            return (cos * vx + sin * vy) / w, (-sin * vx + cos * vy) / w

        row = {"chip": name, "scale": side / w, "angle_deg": math.degrees(theta), "box_aspect": h / w}
        row["offset_right"], row["offset_down"] = levelled(x + w / 2, y + h / 2)
        if eyes:
            row["eye_right"], row["eye_down"] = levelled(*eyes)
        rows.append(row)
    stats = {}
    for key in ("scale", "offset_right", "offset_down", "eye_right", "eye_down", "angle_deg", "box_aspect"):
        if key not in rows[0]:
            continue
        values = np.array([r[key] for r in rows])
        stats[key] = {"median": float(np.median(values)), "p05": float(np.percentile(values, 5)),
                      "p95": float(np.percentile(values, 95)), "std": float(values.std())}
    return {"detector": detector, "chips": n, "detected": len(rows), "stats": stats, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--folder", default="../shared/data/utkface")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--output")
    args = parser.parse_args()
    result = measure(Path(args.folder), args.n, args.detector)
    print(f"{args.detector}: {result['detected']} of {args.n} train chips detected")
    for key, s in result["stats"].items():
        print(f"  {key:12} median {s['median']:+.4f}  5-95% [{s['p05']:+.4f}, {s['p95']:+.4f}]  std {s['std']:.4f}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
