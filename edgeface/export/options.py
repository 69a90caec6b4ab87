"""What `export` is asked (ExportOptions, typed like TrainConfig) and what it answers (ExportResult)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pydantic

from edgeface.config import Config
from edgeface.errors import EdgefaceError
from edgeface.export.ptq import PtqCorrections
from edgeface.runtime.formats import FORMATS, check_tolerances

DEFAULT_OUTPUT = Path("export")


class ExportOptions(Config):
    """How `export` writes and checks artifacts; typed like TrainConfig (a wrong key or type is one line)."""

    calibration: str | None = None  # manifest name under calibration/ or a path
    calibration_root: str | None = None
    calibration_limit: int | None = None
    io: str = "int8"  # full-integer TFLite I/O: int8 | uint8 | float, or "app" (edgeface.export.app)
    opset: int = 17
    nchw: bool = False
    per_channel: bool = True  # per-tensor weights ruin depthwise convolutions (MobileNets) in int8
    calibration_method: str = "minmax"
    tolerances: dict = {}
    parity_images: int = 256
    parity_data: str | None = None  # dataset spec for parity images; default: the run's own validation split
    trt_batch: tuple[int, int, int] = (1, 16, 64)
    fixed_batch: int | None = None  # a fixed batch size in TFLite and ONNX files (an app runs batch 1); None: dynamic
    timing_cache: str | None = None
    # Keras layers left float in int8 TFLite (mixed precision), and why; export() also takes "a,b" or "auto" (the
    # fewest layers that bring int8 within tolerance of float, edgeface.export.sensitivity.auto_keep_float)
    keep_float: tuple[str, ...] | str = ()
    keep_float_reason: str = ""
    corrections: PtqCorrections = PtqCorrections()  # before post-training int8 TFLite

    @pydantic.field_validator("tolerances", mode="before")
    @classmethod
    def _tolerances(cls, value):
        return check_tolerances(value)

    @pydantic.field_validator("fixed_batch")
    @classmethod
    def _fixed_batch(cls, value):
        if value is not None and value < 1:
            raise EdgefaceError(f"--fixed-batch {value}: a batch size is at least 1")
        return value


@dataclasses.dataclass
class ExportResult:
    format: str
    precision: str
    path: Path
    card_path: Path | None = None
    parity: dict | None = None
    size_bytes: int | None = None
    error: str = ""  # the export itself failed (nothing installed)
    source: Path | None = None  # the artifact this one was rewritten from (the app form of an exported file)

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.parity and self.parity["passed"])


def artifact_path(folder: Path, name: str, fmt: str, precision: str) -> Path:
    return Path(folder) / f"{name}-{fmt}-{precision}{FORMATS[fmt].suffix}"
