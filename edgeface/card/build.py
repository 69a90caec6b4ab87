"""Building one artifact's card from its model spec and the artifact's real inputs and outputs."""
from __future__ import annotations

import datetime

from edgeface.card.schema import SCHEMA_VERSION, validate_card
from edgeface.data.framing import crop_card
from edgeface.data.images import DECODE_CARD, RESIZE_CARD
from edgeface.labels import AGE_GROUP_LABELS, AGE_GROUP_RULE, GENDER_LABELS
from edgeface.version import __version__

PREPROCESSING = ("decode the image as 8-bit RGB; centre-crop to a square; resize to {size}x{size} with "
                 "antialiased bilinear interpolation; round to 0-255; then normalize per channel")

NORMALIZATION_FORMULA = "normalized = (pixel - mean) / std, per channel in color_order"

INPUT_QUANTIZATION_FORMULA = "q = clamp(round(normalized / scale) + zero_point) to the input dtype's range"

OUTPUT_QUANTIZATION_FORMULA = "value = (q - zero_point) * scale"

RAW_PIXELS_FORMULA = ("feed the 0-255 RGB bytes as they are (no arithmetic, no rounding in the app); inside, the "
                      "network sees (pixel - zero_point) * scale")
# How the input is fed: normalized floats, integers quantized by the app, or raw pixels (the app form, --io app).

ENCODINGS = ("float", "quantized", "raw_pixels")


def build_card(*, file_name: str, fmt: str, precision: str, runtime: str, spec, parameters: int, io: dict,
               training: dict, calibration: dict | None = None, metrics: dict | None = None,
               options: dict | None = None, layout: str = "NHWC", raw_pixels: bool = False) -> dict:
    """The card of one artifact, before `seal` adds its size and hash. `io` is the artifact's real input and
    output description (dtype, shape, quantization and runtime names per tensor), as `Runner.io()` reads it;
    `raw_pixels`: the app form, fed the pixel bytes as they are."""
    config = spec.backbone_config
    size = spec.input_size
    inp = io["input"]
    quant_in = None
    encoding = "raw_pixels" if raw_pixels else ("float" if inp["dtype"] == "float32" else "quantized")
    if inp.get("quantization"):
        scale, zero = inp["quantization"]
        quant_in = {"scale": scale, "zero_point": zero,
                    "formula": RAW_PIXELS_FORMULA if raw_pixels else INPUT_QUANTIZATION_FORMULA}
    batch = (inp.get("shape") or [-1])[0]
    out_quant = {name: ({"scale": q[0], "zero_point": q[1], "formula": OUTPUT_QUANTIZATION_FORMULA} if q else None)
                 for name, q in ((n, o.get("quantization")) for n, o in io["outputs"].items())}
    out_dtypes = {o["dtype"] for o in io["outputs"].values()}
    card = {
        "schema_version": SCHEMA_VERSION,
        "edgeface_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "artifact": {"file": file_name, "format": fmt, "precision": precision, "runtime": runtime,
                     "size_bytes": 1, "sha256": "0" * 64, "sha256_of": "file", "options": options or {}},
        "model": {"backbone": spec.backbone, "alpha": spec.alpha, "family": config.family, "tasks": list(spec.tasks),
                  "age_head": spec.age_head, "parameters": parameters, "spec": spec.to_dict()},
        "input": {
            "name": "image",
            "shape": [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3],
            "layout": layout, "dtype": inp["dtype"], "encoding": encoding, "color_order": config.channel_order,
            "preprocessing": PREPROCESSING.format(size=size),
            "decode": DECODE_CARD, "resize": RESIZE_CARD,
            "normalization": {"mean": list(config.mean), "std": list(config.std), "formula": NORMALIZATION_FORMULA,
                              "applied_by": "the model, inside its graph: the app feeds raw pixels" if raw_pixels
                              else "the app, before feeding the model"},
            "quantization": quant_in,
        },
        "outputs": _outputs(spec.card_outputs(out_dtypes.pop() if len(out_dtypes) == 1 else "float32", out_quant),
                            io["outputs"], batch),
        "labels": {"gender": list(GENDER_LABELS), "age_groups": list(AGE_GROUP_LABELS),
                   "age_group_rule": AGE_GROUP_RULE},
        "training": training,
        "calibration": calibration,
        "metrics": metrics or {},
    }
    crop = crop_card(training.get("data", ""))
    if crop is not None:  # how to cut a face from a photo so it matches the training chips
        card["input"]["crop"] = crop
    validate_card(card)
    return card


def _outputs(outputs: list, real: dict, batch: int) -> list:
    """The card's outputs with the batch the artifact has and each tensor's name as the runtime shows it."""
    for out in outputs:
        out["shape"] = [batch, *out["shape"][1:]]
        if real.get(out["name"], {}).get("tensor"):
            out["tensor"] = real[out["name"]]["tensor"]
    return outputs
