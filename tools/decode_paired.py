"""JPEG decoding, paired (BENCHMARKS.md, apps): one artifact on one split decoded with libjpeg-turbo's fast IDCT
(TensorFlow's default, what edgeface used before 2026-12-01) and with the accurate one (what browsers and phones
produce, edgeface's decoder since), everything else equal. Prints and writes accuracy, MAE, paired bootstrap
intervals and how many answers move.
Usage: python tools/decode_paired.py [--model ARTIFACT] [--split val] [--output FILE.json]"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
from pathlib import Path

import numpy as np
import simplejpeg

import edgeface
from edgeface.bundled import bundled_model
from edgeface.data import load_data
from edgeface.data.images import square_resize
from edgeface.data.records import label_arrays
from edgeface.stats import paired_deltas, per_image

parser = argparse.ArgumentParser()
parser.add_argument("--model", default=str(bundled_model()))
parser.add_argument("--data", default="utkface:../shared/data/utkface")
parser.add_argument("--split", default="val")
parser.add_argument("--output")
args = parser.parse_args()
predictor = edgeface.load(args.model)
records = load_data(args.data, check=False, verbose=False)[args.split]
gender, age = label_arrays(records)
out = {}
for name, fast in (("fast", True), ("accurate", False)):
    pixels = np.stack([square_resize(simplejpeg.decode_jpeg(Path(r.path).read_bytes(), colorspace="RGB",
                                                            fastdct=fast, fastupsample=False), predictor.input_size)
                       for r in records])
    out[name] = predictor.predict(pixels)
outcomes = {k: per_image(v, gender, age) for k, v in out.items()}
report = {"model": args.model, "data": args.data, "split": args.split, "n": len(records),
          "accurate_vs_fast": paired_deltas(outcomes["fast"], outcomes["accurate"]),
          "gender_flips": int(((out["fast"]["prob_male"] >= 0.5) != (out["accurate"]["prob_male"] >= 0.5)).sum()),
          "age_mean_abs_change": float(np.abs(out["fast"]["age_years"] - out["accurate"]["age_years"]).mean()),
          "age_max_abs_change": float(np.abs(out["fast"]["age_years"] - out["accurate"]["age_years"]).max())}
print(json.dumps(report, indent=2))
if args.output:
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
