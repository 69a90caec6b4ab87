"""The model that ships inside the package, so `edgeface predict` works on a fresh install with no download:
one int8 TFLite model and its fp32 ONNX twin in the app form (raw uint8 pixels in, float outputs named as the
card, batch 1: `edgeface export ARTIFACT --io app`), each with its model card (the single source of truth for
apps), golden test vectors (NAME.vectors.json) and SHA256SUMS. File names keep the run they came from;
tools/bundle_model.sh rebuilds it."""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError

FOLDER = Path(__file__).parent


def bundled_model() -> Path:
    models = sorted(FOLDER.glob("*.tflite"))
    if len(models) != 1:
        raise EdgefaceError(f"{FOLDER}: this install has {'no' if not models else 'more than one'} bundled "
                            "model; pass --model RUN_OR_ARTIFACT")
    return models[0]
