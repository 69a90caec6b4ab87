"""Measures how the face detector's box sits in UTKFace's aligned chips (the constants in edgeface/detect.py).

Usage: python tools/measure_framing.py [UTKFACE_FOLDER] [N]   (default ../shared/data/utkface, 400 train chips)
Each chip is padded by half its side (edge-replicated) so the detector sees the whole face, then the largest box
is expressed in chip sides; the medians are printed.
"""
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from edgeface.detect import find_boxes


def main(folder="../shared/data/utkface", n="400"):
    folder = Path(folder)
    names = sorted((folder / "splits" / "train.txt").read_text().split())
    random.Random(0).shuffle(names)
    found = []
    for name in names[:int(n)]:
        chip = np.asarray(Image.open(folder / "UTKFace" / name).convert("RGB"))
        side, pad = chip.shape[1], chip.shape[1] // 2
        boxes = find_boxes(np.pad(chip, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
        if boxes:
            x, y, w, h = boxes[0]
            found.append(((0.5 * side - (x - pad + w / 2)) / side, (0.5 * side - (y - pad + h / 2)) / side,
                          w / side))
    right, down, width = np.median(np.array(found), axis=0)
    print(f"{len(found)} of {n} chips detected; box width {width:.3f} chip sides; chip centre {right:+.4f} right, "
          f"{down:+.4f} down of the box centre (chip sides)")


if __name__ == "__main__":
    main(*sys.argv[1:])
