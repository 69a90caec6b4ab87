"""The benchmark's row schema (one Row per measured variant; benchmark.csv's columns are its fields) and its
settings."""
from __future__ import annotations

import dataclasses
from typing import Literal

import pydantic

from edgeface.config import Config
from edgeface.data.records import SPLITS


@dataclasses.dataclass
class Row:
    model: str
    format: str
    precision: str
    status: str = "ok"
    error: str = ""
    path: str = ""
    size_kb: float | None = None
    gzip_kb: float | None = None
    gender_acc: float | None = None
    balanced_acc: float | None = None
    age_mae: float | None = None
    # paired against the reference row on the same images (edgeface.stats): Δ and its 95% bootstrap interval
    gender_acc_delta: float | None = None
    gender_acc_delta_low: float | None = None
    gender_acc_delta_high: float | None = None
    gender_mcnemar_p: float | None = None
    age_mae_delta: float | None = None
    age_mae_delta_low: float | None = None
    age_mae_delta_high: float | None = None
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    # (slowest - fastest round median) / median over every round: how much the host drifted while this row ran
    latency_drift: float | None = None
    throughput_ips: float | None = None
    peak_memory_mb: float | None = None  # the probe process's peak (Python and TensorFlow included)
    load_ms: float | None = None  # cold start: open + verify + allocate + first inference, in a fresh process
    model_memory_mb: float | None = None  # resident memory the model added (weights, tensor arena, checks)
    latency_ratio: float | None = None
    size_ratio: float | None = None
    accelerators: str = ""  # from the card: TFLite GPU delegate coverage, ONNX Runtime NNAPI / CoreML verdicts
    detection_rate: float | None = None  # pipeline rows (--photos): photos in which the detector found a face
    runs: int | None = None
    threads: int | None = None
    batch: int | None = None
    where: str = "host"


COLUMNS = tuple(field.name for field in dataclasses.fields(Row))  # benchmark.csv: every Row field, in order


class Settings(Config):
    """What a benchmark measures and how; typed like TrainConfig, so the Python API refuses what the CLI does."""

    data: str | None = None  # None: the split the first run among the sources recorded
    split: Literal[SPLITS] = "test"
    formats: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    threads: int = pydantic.Field(1, ge=1)
    # more thread counts: every timed row is timed again at each (a row per count)
    thread_sweep: tuple[pydantic.PositiveInt, ...] = ()
    batch: int = pydantic.Field(1, ge=1)
    runs: int = pydantic.Field(100, ge=1)
    warmup: int = pydantic.Field(10, ge=0)
    # host timing: the runs are split into rounds, every row timed once per round, rows interleaved
    rounds: int = pydantic.Field(3, ge=1)
    limit: int | None = pydantic.Field(None, ge=1)
    peers_dir: str | None = None
    calibration: str | None = None
    device: str | None = None
    device_binary: str | None = None
    photos: str | None = None  # dataset spec of full photos, one labelled face each: adds detector + model rows


def one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:240]}" if text else type(err).__name__
