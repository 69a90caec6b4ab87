"""Which lever makes the int8 student fast on this CPU: fewer channels (structured pruning) or fewer pixels?

    python tools/latency_by_size.py runs/mnv1-050-128-kd160-e20 0@128 0.3@128 0@112 0@96 0.3@96 \
        --output benchmarks/latency-by-size/HOST-DATE.json

Each variant RATIO@SIZE is the run's model with RATIO of its filters removed (edgeface's structured pruning,
calibrated on 128 training images, not fine-tuned) and rebuilt at SIZE pixels (weights unchanged), converted to
int8 TFLite the way `edgeface export` does. Accuracy is not measured here (untrained variants): this is latency
only, every variant and InsightFace's genderage model interleaved in one process, 1 thread, batch 1, so the
ratios hold on a noisy shared host. The host (CPU, ISA, runtimes) is recorded as in `edgeface benchmark`.
"""
from __future__ import annotations

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import random
import time
from pathlib import Path

from edgeface.utils import write_json  # importing edgeface sets TF_USE_LEGACY_KERAS before TensorFlow loads


def variant(model, spec, ratio: float, size: int, images):
    from edgeface.compress.structured import prune_channels

    slim = prune_channels(model, ratio=ratio, images=images)[0] if ratio else model
    if size == spec.input_size:
        return slim
    config = slim.get_config()  # the same graph with another input size: every weight's shape is size-free
    config["layers"][0]["config"]["batch_input_shape"] = (None, size, size, 3)
    sized = type(slim).from_config(config)
    sized.set_weights(slim.get_weights())
    return sized


def main() -> None:
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from edgeface.benchmark import host
    from edgeface.peers import load_peer
    from edgeface.compress.stats import count_macs
    from edgeface.data.images import load_images, normalize
    from edgeface.export.tflite import convert
    from edgeface.run import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("variants", nargs="+", help="RATIO@SIZE, e.g. 0.3@112")
    parser.add_argument("--peer", default="../shared/peers/insightface_genderage_2018")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--output")
    args = parser.parse_args()

    run = Run.open(args.run, finished=True)
    model, spec = run.load_model(), run.spec
    paths = random.Random(0).sample(run.split_paths("train"), 128)
    images = normalize(load_images(paths, spec.input_size), spec.backbone_config).astype(np.float32)
    rows, timers = [], []
    for text in args.variants:
        ratio, size = float(text.split("@")[0]), int(text.split("@")[1])
        slim = variant(model, spec, ratio, size, images)
        calibration = [tf.image.resize(images[i:i + 1], (size, size)).numpy() for i in range(64)]
        blob = convert(slim, "int8", calibration)
        interpreter = Interpreter(model_content=blob, num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        rows.append({"variant": text, "ratio": ratio, "input_size": size, "macs": count_macs(slim),
                     "parameters": slim.count_params(), "tflite_bytes": len(blob)})
        timers.append(interpreter.invoke)
    peer = load_peer(Path(args.peer), threads=1)
    x = peer.preprocess(np.zeros((1, 128, 128, 3), np.uint8))
    timers.append(lambda: peer.infer(x))
    times = [[] for _ in timers]
    for round_ in range(20 + args.runs):
        for timer, kept in zip(timers, times):
            start = time.perf_counter()
            timer()
            if round_ >= 20:
                kept.append((time.perf_counter() - start) * 1000)
    peer_p50 = float(np.median(times[-1]))
    print(f"{peer.name}: p50 {peer_p50:.3f} ms")
    for row, kept in zip(rows, times):
        row.update(p50_ms=float(np.median(kept)), mean_ms=float(np.mean(kept)))
        row["vs_peer"] = row["p50_ms"] / peer_p50
        print(f"{row['variant']:>9}: {row['macs'] / 1e6:5.1f}M MACs {row['parameters']:>9,} params "
              f"{row['tflite_bytes']:>9,} B  p50 {row['p50_ms']:.3f} ms = {row['vs_peer']:.2f}x {peer.name}")
    if args.output:
        write_json(args.output, {"run": args.run, "host": host(), "peer": {"name": peer.name, "p50_ms": peer_p50},
                                 "runs": args.runs, "threads": 1, "rows": rows,
                                 "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
