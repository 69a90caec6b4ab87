"""Times AdaRound (edgeface.export.adaround.correct) against another version of that module, in one process, on a
run's calibration images, and checks both give the same weights (BENCHMARKS.md sections 18 and 19):

    git show a464f31:edgeface/export/adaround.py > /tmp/adaround_before.py
    python tools/adaround_passes.py runs/mnv2-128 /tmp/adaround_before.py --iterations 100
"""
import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()


def main():
    import numpy as np

    from edgeface.data.images import load_images, normalize
    from edgeface.export import adaround
    from edgeface.export.calibration import read_manifest
    from edgeface.run import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("other", help="another version of edgeface/export/adaround.py")
    parser.add_argument("--iterations", type=int, default=adaround.ITERATIONS)
    parser.add_argument("--calibration", default="calibration/utkface-train-300.txt")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("adaround_other", args.other)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    run = Run(args.run)
    model = run.load_model()
    paths = read_manifest(args.calibration).resolve()[:adaround.MAX_IMAGES]
    images = normalize(load_images([str(p) for p in paths], run.spec.input_size),
                       run.spec.backbone_config).astype(np.float32)
    weights = {}
    for name, module in (("this", adaround), ("other", other)):
        start = time.perf_counter()
        corrected, _ = module.correct(model, images, iterations=args.iterations)
        print(f"{name}: {time.perf_counter() - start:.1f} s ({args.iterations} iterations a layer)", flush=True)
        weights[name] = corrected.get_weights()
    same = all(np.array_equal(a, b) for a, b in zip(weights["this"], weights["other"]))
    print("same weights" if same else "DIFFERENT weights")


if __name__ == "__main__":
    main()
