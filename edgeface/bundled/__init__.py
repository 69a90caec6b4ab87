"""The model that ships inside the package, so `edgeface predict` works on a fresh install with no download:
one int8 TFLite model with its model card (the single source of truth for apps) and its fp32 ONNX twin, as
`edgeface export` wrote them (file names keep the run they came from). tools/bundle_model.sh rebuilds it."""
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
