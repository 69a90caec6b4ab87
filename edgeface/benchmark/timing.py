"""Latency on this host: each round in a fresh probe process, rounds interleaved over the rows, thread sweeps,
and the host's description (CPU, ISA, runtime versions) the figures belong to."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeface.benchmark.probe import summarize_times
from edgeface.benchmark.report import format_row
from edgeface.benchmark.rows import Row, Settings, one_line
from edgeface.benchmark.sources import Images

log = logging.getLogger(__name__)

def round_sizes(s: Settings) -> list[int]:
    """Timed runs per round: --runs split over at most --rounds rounds, summing to --runs."""
    count = max(1, min(s.rounds, s.runs))
    return [s.runs // count + (i < s.runs % count) for i in range(count)]


def time_on_host(model, images: Images, s: Settings, runs: int) -> dict:
    """One round of timing in a fresh process (its own thread settings and peak memory)."""
    batch = images.at(model.input_size)
    batch = np.resize(batch, (s.batch,) + batch.shape[1:]) if len(batch) < s.batch else batch[:s.batch]
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", batch)
        cmd = [sys.executable, "-m", "edgeface.benchmark.probe", model.source,
               str(Path(tmp) / "x.npy"), "--threads", str(s.threads), "--warmup", str(s.warmup),
               "--runs", str(runs)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    line = next((l for l in result.stdout.splitlines() if l.startswith("PROBE ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"latency probe failed: {(result.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return json.loads(line[len("PROBE "):])


def set_timing(row: Row, rounds: list[dict], s: Settings) -> None:
    """Latency columns from every round of a row (host) or from the device's single report."""
    times = [t for r in rounds for t in r.get("times_ms", [])]
    timing = {**rounds[0], **summarize_times(times)} if times else rounds[0]  # no times: the device's report
    for key in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "runs"):
        setattr(row, key, timing.get(key))
    for key in ("peak_memory_mb", "model_memory_mb"):
        setattr(row, key, max((r[key] for r in rounds if r.get(key) is not None), default=None))
    loads = [r["load_ms"] for r in rounds if r.get("load_ms") is not None]
    row.load_ms = float(np.median(loads)) if loads else None
    medians = [r["latency_p50_ms"] for r in rounds if r.get("latency_p50_ms")]
    row.latency_drift = (max(medians) - min(medians)) / row.latency_p50_ms if len(medians) > 1 else None
    row.throughput_ips = s.batch * 1000 / row.latency_mean_ms
    row.threads, row.batch = s.threads, s.batch


def later_rounds(timed: list, images: Images, s: Settings) -> None:
    """Rounds 2..N, every host-timed row once per round in table order, so a host that speeds up or slows down
    during the benchmark moves every row alike and the ratios within the run hold (BENCHMARKS.md section 14)."""
    runs = round_sizes(s)
    for number in range(2, len(runs) + 1):
        log.info(f"timing round {number}/{len(runs)}")
        for row, (model, rounds) in timed:
            try:
                rounds.append(time_on_host(model, images, s, runs[number - 1]))
            except Exception as err:
                row.status, row.error = "validation failed", f"timing round {number}: {one_line(err)}"
                continue
            set_timing(row, rounds, s)


def thread_rows(timed: list, images: Images, s: Settings) -> list[Row]:
    """Each timed row again at every thread count of the sweep, all its rounds in fresh probes; accuracy and size
    are the row's own (threads change the speed, not the answers)."""
    out = []
    for threads in s.thread_sweep:
        swept = s.replace(threads=threads)
        log.info(f"thread sweep: {threads} thread(s)")
        for row, (model, _) in timed:
            clone = dataclasses.replace(row, threads=threads, latency_ratio=None)
            try:
                rounds = [time_on_host(model, images, swept, runs) for runs in round_sizes(swept)]
            except Exception as err:
                clone.status, clone.error = "validation failed", f"{threads} threads: {one_line(err)}"
                out.append(clone)
                continue
            set_timing(clone, rounds, swept)
            out.append(clone)
            log.info(format_row(clone))
    return out


def host() -> dict:
    """The machine the latencies belong to: CPU model, the vector instructions int8 kernels use, runtime
    versions (int8 speed depends on them: figures from different hosts are not comparable)."""
    import platform
    from importlib import metadata

    cpu, flags = platform.processor(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    versions = {}
    for package in ("tensorflow", "ai-edge-litert", "onnxruntime", "tensorrt"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    isa = [f for f in ("sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
           if f in flags]
    return {"cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(), "isa": isa, "python":
            platform.python_version(), "runtimes": versions}
