"""Rewrites a schema-1 model card (edgeface before the verified loader), or a schema-2 card written before cards
carried the crop contract (`input.crop`) or the accelerator checks (TFLite: GPU delegate; ONNX: NNAPI and
CoreML, after export's exact graph passes, applied only if the outputs stay bit-identical), as a current card, without touching the model's weights: the contract (normalization, outputs, decoding rules, quantization) is rebuilt from the
card's model spec and the artifact's real inputs and outputs, the facts (training, calibration, metrics,
options, creation date) are kept, and the card is embedded (TFLite, ONNX) and hashed as `edgeface export` does.

    python tools/upgrade_card.py ARTIFACT [ARTIFACT ...]
"""
from __future__ import annotations

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import json
import shutil
import sys
import tempfile
from pathlib import Path

from edgeface.card import build_card, card_path, seal
from edgeface.data.framing import crop_card
from edgeface.export.onnx import GRAPH_PASSES, mobile_ep_readiness
from edgeface.export.tflite import gpu_readiness
from edgeface.models import ModelSpec
from edgeface.runtime import open_runner
from edgeface.utils import write_json


def _graph_passes(path: Path) -> None:
    """Applies export's exact ONNX graph passes in place, refusing unless the outputs stay bit-identical."""
    import numpy as np
    import onnx
    import onnxoptimizer
    import onnxruntime as ort

    before = ort.InferenceSession(str(path))
    optimized = onnxoptimizer.optimize(onnx.load(str(path)), list(GRAPH_PASSES))
    after = ort.InferenceSession(optimized.SerializeToString())
    feed = {i.name: np.random.default_rng(0).normal(0, 1, [8 if not isinstance(d, int) else d for d in i.shape])
            .astype(np.float32) for i in before.get_inputs()}
    if any(not np.array_equal(a, b) for a, b in zip(before.run(None, feed), after.run(None, feed))):
        raise SystemExit(f"{path}: the graph passes changed the outputs; left as it is")
    onnx.save(optimized, str(path))


def upgrade(artifact: Path) -> None:
    old = json.loads(card_path(artifact).read_text())
    needed = {".tflite": ("gpu_delegate",), ".onnx": ("mobile_eps", "graph_passes")}.get(artifact.suffix, ())
    gpu_checked = all(key in old["artifact"].get("options", {}) for key in needed)
    current = old.get("schema_version") == 2 and gpu_checked and (
        "crop" in old["input"] or crop_card(old["training"]["data"]) is None)
    if current or old.get("schema_version") not in (1, 2):
        print(f"{artifact}: card schema {old.get('schema_version')}, nothing to do")
        return
    spec = ModelSpec(**old["model"]["spec"])
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / artifact.name
        shutil.copyfile(artifact, staged)
        if artifact.suffix == ".onnx" and "graph_passes" not in old["artifact"].get("options", {}):
            _graph_passes(staged)
        runner = open_runner(staged)
        a = old["artifact"]
        options = dict(a.get("options") or {})
        if artifact.suffix == ".tflite":
            options["gpu_delegate"] = gpu_readiness(artifact.read_bytes())
        elif artifact.suffix == ".onnx":
            options["graph_passes"] = list(GRAPH_PASSES)
            options["mobile_eps"] = mobile_ep_readiness(staged)
        card = build_card(file_name=artifact.name, fmt=a["format"], precision=a["precision"], runtime=a["runtime"],
                          spec=spec, parameters=old["model"]["parameters"], io=runner.io(), training=old["training"],
                          calibration=old["calibration"], metrics=old["metrics"], options=options,
                          layout=old["input"]["layout"])
        card["created"] = old["created"]
        card = seal(staged, card)
        shutil.copyfile(staged, artifact)
    write_json(card_path(artifact), card)
    print(f"{artifact}: card upgraded to schema {card['schema_version']}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        upgrade(Path(name))
