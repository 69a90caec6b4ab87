"""Export facade: `export(run, formats, precisions)` writes artifacts, each with its model card (built once,
embedded where the format allows) and a parity check against the run's Keras model. Re-exports only:

    options     ExportOptions (what is asked), ExportResult (what came out), artifact_path
    pipeline    export_run (every asked variant, each a row with its status), export (raises on any failure,
                resolves keep_float="auto", takes an exported file for its app form)
    writers     one writer per format of the formats table (edgeface.runtime.formats), keyed by its name
    install     test vectors, then the file, its card and SHA256SUMS moved into place atomically
    provenance  the card's training section and the run's measured metrics
    app_form    export_app: an exported int8 TFLite / ONNX file rewritten to the app form (raw pixels in)
    tflite / onnx / tensorrt, calibration, ptq (equalize, adaround), sensitivity, app: the techniques
"""
from __future__ import annotations

from edgeface.export.app_form import export_app
from edgeface.export.options import ExportOptions, ExportResult, artifact_path
from edgeface.export.pipeline import export, export_run
from edgeface.export.ptq import PtqCorrections
from edgeface.export.writers import WRITERS
from edgeface.runtime.formats import FORMATS, export_variants

__all__ = ["export", "export_run", "export_app", "ExportOptions", "ExportResult", "FORMATS", "export_variants",
           "artifact_path", "PtqCorrections", "WRITERS"]
