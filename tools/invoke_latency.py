"""The interpreter's invoke() alone for several TFLite files, interleaved in rounds in one process (single thread):
what the model costs an app, without edgeface's Python-side input conversion. Inputs are zeros of each file's
input type. Usage: python tools/invoke_latency.py A.tflite B.tflite [--rounds 10] [--runs 200] [--output FILE]"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

parser = argparse.ArgumentParser()
parser.add_argument("models", nargs="+")
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--runs", type=int, default=200)
parser.add_argument("--output")
args = parser.parse_args()
interpreters = {}
for path in args.models:
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    interpreters[path] = (it, detail["index"], np.zeros(detail["shape"], detail["dtype"]))
times = {path: [] for path in args.models}
for _ in range(args.rounds):
    for path, (it, index, x) in interpreters.items():
        for _ in range(args.runs):
            it.set_tensor(index, x)
            start = time.perf_counter()
            it.invoke()
            times[path].append(time.perf_counter() - start)
first = float(np.median(times[args.models[0]]))
report = {path: {"p50_ms": float(np.median(t)) * 1e3, "mean_ms": float(np.mean(t)) * 1e3,
                 "p50_vs_first": float(np.median(t)) / first, "runs": len(t)} for path, t in times.items()}
print(json.dumps(report, indent=2))
if args.output:
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
