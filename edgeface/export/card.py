"""Model cards: everything an app developer needs to feed an artifact and decode its outputs."""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import jsonschema

import edgeface
from edgeface.data import GENDER_LABELS
from edgeface.errors import EdgefaceError
from edgeface.models.heads import AGE_GROUP_LABELS, DISTRIBUTION_YEARS, ORDINAL_MAX_YEARS

SCHEMA = json.loads((Path(__file__).parent / "model_card.schema.json").read_text())
PREPROCESSING = ("decode the image as 8-bit RGB; centre-crop to a square; resize to {size}x{size} with "
                 "antialiased bilinear interpolation; round to 0-255; then normalize per channel")


def card_path(artifact) -> Path:
    """NAME.json beside NAME.tflite / NAME.onnx / NAME.engine, or beside a SavedModel folder NAME."""
    artifact = Path(artifact)
    stem = artifact.name if artifact.is_dir() else artifact.name.removesuffix(artifact.suffix)
    return artifact.with_name(stem + ".json")


def artifact_digest(path: Path) -> tuple[int, str | None]:
    """Size in bytes and sha256 (files) or total size and None (SavedModel folders)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()), None
    return path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()


def age_output(spec, dtype: str, quantization) -> dict:
    if spec.age_head == "regression":
        meaning, decode, shape = "estimated age in years", "age = output[0]", [-1, 1]
    elif spec.age_head == "distribution":
        meaning = f"probability of each age in years: output[k] = P(age = k), k = 0..{DISTRIBUTION_YEARS - 1}"
        decode, shape = "age in years = sum(k * output[k]) / sum(output)", [-1, DISTRIBUTION_YEARS]
    elif spec.age_head == "groups":
        meaning = "probabilities of the 8 Adience age groups (labels.age_groups)"
        decode, shape = "group = argmax(output)", [-1, len(AGE_GROUP_LABELS)]
    elif spec.numeric_age:
        meaning = f"ordinal: output[k-1] = P(age >= k years), k = 1..{ORDINAL_MAX_YEARS}"
        decode, shape = "age in years = number of outputs > 0.5", [-1, ORDINAL_MAX_YEARS]
    else:
        meaning = "ordinal: output[k-1] = P(age group > k-1), k = 1..7"
        decode, shape = "group index = number of outputs > 0.5 (labels.age_groups)", [-1, len(AGE_GROUP_LABELS) - 1]
    return {"name": "age", "shape": shape, "dtype": dtype, "meaning": meaning, "decode": decode,
            "quantization": quantization}


def build_card(*, artifact: Path, fmt: str, precision: str, runtime: str, spec, run: Path, parameters: int,
               layout: str = "NHWC", input_dtype: str = "float32", input_quantization=None,
               output_dtype: str = "float32", output_quantization=None, calibration: dict | None = None,
               metrics: dict | None = None, options: dict | None = None) -> dict:
    config = spec.config
    size = spec.input_size
    data = json.loads((run / "data.json").read_text()) if (run / "data.json").is_file() else {}
    train_cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    nbytes, sha = artifact_digest(artifact)
    quant_in = None
    if input_quantization:
        scale, zero = input_quantization
        quant_in = {"scale": scale, "zero_point": zero,
                    "formula": "q = clamp(round(normalized / scale) + zero_point) to the input dtype's range"}
    out_quant = None
    if output_quantization:
        out_quant = {name: {"scale": s, "zero_point": z, "formula": "value = (q - zero_point) * scale"}
                     for name, (s, z) in output_quantization.items()}
    outputs = []
    if "gender" in spec.tasks:
        outputs.append({"name": "gender", "shape": [-1, 1], "dtype": output_dtype,
                        "meaning": "probability that the face is male (index 0 of this output)",
                        "decode": "male if output[0] >= 0.5 else female",
                        "quantization": (out_quant or {}).get("gender")})
    if "age" in spec.tasks:
        outputs.append(age_output(spec, output_dtype, (out_quant or {}).get("age")))
    card = {
        "schema_version": 1,
        "edgeface_version": edgeface.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "artifact": {"file": artifact.name, "format": fmt, "precision": precision, "runtime": runtime,
                     "size_bytes": nbytes, "sha256": sha, "options": options or {}},
        "model": {"backbone": spec.backbone, "alpha": spec.alpha, "family": config.family, "tasks": list(spec.tasks),
                  "age_head": spec.age_head, "parameters": parameters},
        "input": {
            "name": "image",
            "shape": [-1, 3, size, size] if layout == "NCHW" else [-1, size, size, 3],
            "layout": layout, "dtype": input_dtype, "color_order": config.channel_order,
            "preprocessing": PREPROCESSING.format(size=size),
            "normalization": {"mean": list(config.mean), "std": list(config.std),
                              "formula": "normalized = (pixel - mean) / std, per channel in color_order"},
            "quantization": quant_in,
        },
        "outputs": outputs,
        "labels": {"gender": list(GENDER_LABELS), "age_groups": list(AGE_GROUP_LABELS)},
        "training": {"data": data.get("spec") or train_cfg.get("data"), "split": data.get("split"),
                     "counts": data.get("counts"), "run": str(run),
                     "parents": list(train_cfg.get("parents", [])),
                     "compression": train_cfg.get("compression") or {}},
        "calibration": calibration,
        "metrics": metrics or {},
    }
    validate_card(card)
    return card


def validate_card(card: dict) -> None:
    try:
        jsonschema.validate(card, SCHEMA)
    except jsonschema.ValidationError as err:
        raise EdgefaceError(f"model card does not match its schema: {err.message} at {list(err.absolute_path)}")
