"""Latency probe, run in its own process per row so thread settings and peak memory belong to that row alone.

python -m edgeface.benchmark.probe SOURCE INPUT_NPY --threads N --warmup W --runs R   (SOURCE: what open_model takes)
prints one JSON line: latency mean/p50/p90 and every timed run in ms; cold start (open + verify + allocate + first
inference, ms) and the resident memory that added (the model's weights, the runtime's tensor arena and the card
checks; the runtimes' libraries are imported before); the probe's peak resident memory (Python and TensorFlow
included: not a phone's figure). The benchmark derives throughput from the mean over all its rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time


def measure(model, images, warmup: int, runs: int) -> dict:
    """Times `infer` on already preprocessed input held in memory (preprocessing and decoding are not timed)."""
    x = model.preprocess(images)
    for _ in range(warmup):
        model.infer(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.infer(x)
        times.append((time.perf_counter() - start) * 1000)
    return {**summarize_times(times), "warmup": warmup, "times_ms": [round(t, 4) for t in times]}


def summarize_times(times) -> dict:
    """Mean, median and 90th percentile of timed runs in ms (one round, or every round of a row together)."""
    import numpy as np

    times = np.asarray(times, float)
    return {"latency_mean_ms": float(times.mean()), "latency_p50_ms": float(np.percentile(times, 50)),
            "latency_p90_ms": float(np.percentile(times, 90)), "runs": len(times)}


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the current address space; ru_maxrss would also
    count the parent's memory at fork time, which Linux carries across fork and exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mb() -> float:
    """This process's resident memory now (VmRSS)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import numpy as np

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import ai_edge_litert.interpreter  # noqa: F401  the runtimes' own code is not the model's memory
    import onnxruntime  # noqa: F401

    images = np.load(args.images)
    before, start = resident_mb(), time.perf_counter()
    from edgeface.any_model import open_model

    model = open_model(args.source, args.threads)
    model.infer(model.preprocess(images))  # cold start: open, verify, allocate, first inference
    load_ms, model_mb = (time.perf_counter() - start) * 1000, resident_mb() - before
    result = measure(model, images, args.warmup, args.runs)
    result.update(peak_memory_mb=peak_memory_mb(), load_ms=load_ms, model_memory_mb=model_mb)
    print("PROBE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
