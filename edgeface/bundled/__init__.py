"""The model that ships inside the package, so `edgeface predict` works on a fresh install with no download:
an int8 TFLite model with its model card (the single source of truth for apps) and its fp32 ONNX twin.
tools/bundle_model.sh rebuilds this folder from a run."""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError

FOLDER = Path(__file__).parent
TFLITE = "edgeface-utkface-int8.tflite"  # its card: edgeface-utkface-int8.json
ONNX = "edgeface-utkface-fp32.onnx"


def bundled_model() -> Path:
    path = FOLDER / TFLITE
    if not path.is_file():
        raise EdgefaceError(f"{path}: this install has no bundled model; pass --model RUN_OR_ARTIFACT")
    return path
