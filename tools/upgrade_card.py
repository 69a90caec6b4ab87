"""Rewrites a schema-1 model card (edgeface before the verified loader), or a schema-2 card written before cards
carried the crop contract (`input.crop`) or the accelerator checks (TFLite: GPU delegate; ONNX: NNAPI and
CoreML), as a current card, without touching the model's weights: the contract (normalization, outputs, decoding rules, quantization) is rebuilt from the
card's model spec and the artifact's real inputs and outputs, the facts (training, calibration, metrics,
options, creation date) are kept, and the card is embedded (TFLite, ONNX) and hashed as `edgeface export` does.

    python tools/upgrade_card.py ARTIFACT [ARTIFACT ...]
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from edgeface.card import build_card, card_path, seal
from edgeface.data.framing import crop_card
from edgeface.export.onnx import mobile_ep_readiness
from edgeface.export.tflite import gpu_readiness
from edgeface.models import ModelSpec
from edgeface.runtime import open_runner
from edgeface.utils import write_json


def upgrade(artifact: Path) -> None:
    old = json.loads(card_path(artifact).read_text())
    accelerators = {".tflite": "gpu_delegate", ".onnx": "mobile_eps"}.get(artifact.suffix)
    gpu_checked = accelerators is None or accelerators in old["artifact"].get("options", {})
    current = old.get("schema_version") == 2 and gpu_checked and (
        "crop" in old["input"] or crop_card(old["training"]["data"]) is None)
    if current or old.get("schema_version") not in (1, 2):
        print(f"{artifact}: card schema {old.get('schema_version')}, nothing to do")
        return
    spec = ModelSpec(**old["model"]["spec"])
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / artifact.name
        shutil.copyfile(artifact, staged)
        runner = open_runner(staged)
        a = old["artifact"]
        options = dict(a.get("options") or {})
        if artifact.suffix == ".tflite":
            options["gpu_delegate"] = gpu_readiness(artifact.read_bytes())
        elif artifact.suffix == ".onnx":
            options["mobile_eps"] = mobile_ep_readiness(artifact)
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
