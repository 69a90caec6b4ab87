"""On-device timing: push a .tflite to an Android device and run TFLite's benchmark_model there over adb."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from edgeface.errors import EdgefaceError

REMOTE_DIR = "/data/local/tmp/edgeface"
DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
_SUMMARY = re.compile(r"Inference timings in us: Init: ([\d.e+]+), First inference: ([\d.e+]+), "
                      r"Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)")
_RUNS = re.compile(r"count=(\d+) first=[\d.e+]+ curr=[\d.e+]+ min=([\d.e+]+) max=([\d.e+]+) avg=([\d.e+]+) "
                   r"std=([\d.e+]+)(?: p5=[\d.e+]+ median=([\d.e+]+) p95=([\d.e+]+))?")
_MEMORY = re.compile(r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                     r"init=([\d.e+]+) overall=([\d.e+]+)")


def parse_benchmark_model(output: str) -> dict:
    """benchmark_model's log -> latency (ms) and memory (MB); p90 is not printed by the tool, p95 is."""
    summary = _SUMMARY.search(output)
    if not summary:
        tail = output.strip().splitlines()[-1:] or ["(no output)"]
        raise EdgefaceError(f"benchmark_model printed no timing summary (last line: {tail[0][:160]})")
    result = {"init_ms": float(summary.group(1)) / 1000, "latency_mean_ms": float(summary.group(4)) / 1000,
              "latency_p50_ms": None, "latency_p90_ms": None, "latency_p95_ms": None}
    runs = _RUNS.findall(output)
    if runs:
        count, _, _, _, _, median, p95 = runs[-1]  # the last count= line is the timed loop, not the warm-up
        result["runs"] = int(count)
        if median:
            result.update(latency_p50_ms=float(median) / 1000, latency_p95_ms=float(p95) / 1000)
    memory = _MEMORY.search(output)
    result["peak_memory_mb"] = float(memory.group(2)) if memory else None
    return result


class Device:
    def __init__(self, spec: str, binary: str = DEFAULT_BINARY):
        kind, _, self.serial = spec.partition(":")
        if kind != "adb" or not self.serial:
            raise EdgefaceError(f"--device {spec!r}: expected adb:SERIAL (see `adb devices`)")
        self.adb = shutil.which("adb")
        if not self.adb:
            raise EdgefaceError("--device adb:...: `adb` is not on PATH (install Android platform-tools)")
        self.binary = binary

    def _adb(self, *args: str) -> str:
        result = subprocess.run([self.adb, "-s", self.serial, *args], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise EdgefaceError(f"adb {' '.join(args[:2])} failed on {self.serial}: "
                                f"{(result.stderr or result.stdout).strip()[:200]}")
        return result.stdout

    def benchmark(self, tflite: Path, threads: int, runs: int, warmup: int) -> dict:
        remote = f"{REMOTE_DIR}/{tflite.name}"
        self._adb("shell", f"mkdir -p {REMOTE_DIR}")
        self._adb("push", str(tflite), remote)
        output = self._adb("shell", f"{self.binary} --graph={remote} --num_threads={threads} "
                                    f"--num_runs={runs} --warmup_runs={warmup}")
        return {**parse_benchmark_model(output), "threads": threads, "warmup": warmup, "device": self.serial}
