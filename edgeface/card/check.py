"""What every load checks: the card read (JSON beside the file or the embedded copy, equal when both exist),
its schema version, the parity it records, and its contract against the model spec and the artifact."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeface.card.build import PREPROCESSING
from edgeface.card.embed import card_path, embedded_card
from edgeface.card.schema import SCHEMA_VERSION, validate_card
from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUP_LABELS, GENDER_LABELS

CARD_MAX_BYTES = 4 << 20  # a card is a few KB; a larger file is refused before it is read

PARITY_KEYS = ("parity_vs_keras", "parity_vs_source")  # the file's own checks at export (vs its model, or the file
# it was rewritten from); a rewritten file keeps its source's check as source_parity_vs_keras


def read_card(artifact) -> dict:
    """The artifact's card: the JSON file beside it, or the embedded copy when that file is missing. When both
    exist they must be equal. Schema-checked."""
    artifact = Path(artifact)
    file = card_path(artifact)
    embedded = embedded_card(artifact)
    if file.is_file():
        if file.stat().st_size > CARD_MAX_BYTES:
            raise EdgefaceError(f"{file}: {file.stat().st_size >> 20} MiB is too large for a model card")
        try:
            card = json.loads(file.read_text())
        except (ValueError, RecursionError) as err:
            raise EdgefaceError(f"{file}: not valid JSON ({str(err)[:120]})") from None
        source = file
        if embedded is not None and embedded != card:
            keys = _differences(card, embedded)
            raise EdgefaceError(f"{file}: differs from the card embedded in {artifact.name} at "
                                f"{', '.join(keys[:5])}; the JSON card was edited or belongs to another artifact")
    elif embedded is not None:
        card, source = embedded, f"{artifact} (embedded card)"
    else:
        raise EdgefaceError(f"{file}: model card missing (and {artifact.name} carries none); exported artifacts "
                            "are read with their card")
    if not isinstance(card, dict) or card.get("schema_version") != SCHEMA_VERSION:
        version = card.get("schema_version") if isinstance(card, dict) else None
        raise EdgefaceError(f"{source}: model card schema {version}, this edgeface reads {SCHEMA_VERSION}; "
                            "re-export the artifact (or run tools/upgrade_card.py on it)")
    validate_card(card, str(source))
    return card


def _differences(a, b, prefix="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "top level"]


def failed_parity(card: dict | None) -> str | None:
    """Which parity check the card records as failed, or None (none failed, or none recorded)."""
    metrics = (card or {}).get("metrics", {})
    return next((key for key in PARITY_KEYS if key in metrics and not metrics[key].get("passed")), None)


def contract_problems(card: dict, spec, io: dict) -> list[str]:
    """Where the card's contract (what an app relies on) disagrees with the model spec it carries, the label
    vocabularies, or the artifact's real inputs and outputs (`io` from the runner). Empty when it holds."""
    config = spec.backbone_config
    problems = []
    inp = card["input"]
    expected = {"color_order": config.channel_order,
                "normalization.mean": list(config.mean), "normalization.std": list(config.std),
                "preprocessing": PREPROCESSING.format(size=spec.input_size),
                "spatial size": [spec.input_size, spec.input_size]}
    actual = {"color_order": inp["color_order"], "normalization.mean": inp["normalization"]["mean"],
              "normalization.std": inp["normalization"]["std"], "preprocessing": inp["preprocessing"],
              "spatial size": inp["shape"][2:] if inp["layout"] == "NCHW" else inp["shape"][1:3]}
    for key, value in expected.items():
        got = actual[key]
        same = [float(v) for v in got] == [float(v) for v in value] if isinstance(value, list) else got == value
        if not same:
            problems.append(f"input.{key} is {got!r}, but {spec.backbone} at {spec.input_size} px needs "
                            f"{value!r}")
    model = card["model"]
    for key in ("backbone", "alpha", "tasks", "age_head"):
        want = list(spec.tasks) if key == "tasks" else getattr(spec, key)
        if model.get(key) != want:
            problems.append(f"model.{key} is {model.get(key)!r} but its spec says {want!r}")
    labels = {k: card["labels"].get(k) for k in ("gender", "age_groups")}
    if labels != {"gender": list(GENDER_LABELS), "age_groups": list(AGE_GROUP_LABELS)}:
        problems.append(f"labels are {card['labels']}, not edgeface's {list(GENDER_LABELS)} / age groups")
    by_name = {o["name"]: o for o in card["outputs"]}
    for want in spec.card_outputs():
        got = by_name.get(want["name"])
        if got is None:
            problems.append(f"output {want['name']} is missing")
            continue
        for key in ("meaning", "decode", "decoding"):
            if got.get(key) != want[key]:
                problems.append(f"output {want['name']}.{key} is {got.get(key)!r}, expected {want[key]!r}")
        if got["shape"][1:] != want["shape"][1:] or got["shape"][0] != inp["shape"][0]:
            problems.append(f"output {want['name']}.shape is {got['shape']}, expected {want['shape'][1:]} per face "
                            f"with the input's batch {inp['shape'][0]}")
    if set(by_name) != set(spec.tasks):
        problems.append(f"outputs {sorted(by_name)} do not match tasks {list(spec.tasks)}")
    # the artifact itself: dtypes and quantization parameters as the runtime reports them
    real_in = io["input"]
    if real_in.get("dtype") and real_in["dtype"] != inp["dtype"]:
        problems.append(f"input.dtype is {inp['dtype']} but the artifact takes {real_in['dtype']}")
    if real_in.get("shape") and any(c not in (-1, None) and r not in (-1, None) and c != r
                                    for c, r in zip(inp["shape"], real_in["shape"])):
        problems.append(f"input.shape is {inp['shape']} but the artifact takes {real_in['shape']}")
    if "quantization" in real_in and _quant(inp.get("quantization")) != _round(real_in["quantization"]):
        problems.append(f"input.quantization is {_quant(inp.get('quantization'))} but the artifact uses "
                        f"{_round(real_in['quantization'])}")
    if inp.get("encoding") == "raw_pixels":
        problems += _raw_pixel_problems(inp)
    for name, real in io["outputs"].items():
        got = by_name.get(name)
        if got is None:
            problems.append(f"the artifact has an output {name!r} the card does not describe")
            continue
        if real.get("dtype") and real["dtype"] != got["dtype"]:
            problems.append(f"output {name}.dtype is {got['dtype']} but the artifact gives {real['dtype']}")
        if "quantization" in real and _quant(got.get("quantization")) != _round(real["quantization"]):
            problems.append(f"output {name}.quantization is {_quant(got.get('quantization'))} but the artifact "
                            f"uses {_round(real['quantization'])}")
        if real.get("units") and got["shape"][-1] != real["units"]:
            problems.append(f"output {name}.shape is {got['shape']} but the artifact gives {real['units']} values")
    return problems


def _raw_pixel_problems(inp: dict) -> list[str]:
    """A raw-pixel input is uint8; where it is quantized (TFLite int8 inside), its (scale, zero point) must be the
    card's normalization within half a level (ONNX does the normalization in float inside the graph)."""
    if inp["dtype"] != "uint8":
        return [f"input.encoding raw_pixels needs a uint8 input, not {inp['dtype']}"]
    q = inp.get("quantization")
    if not q:
        return []
    try:
        raw_pixel_mapping(q["scale"], q["zero_point"] - 128, inp["normalization"]["mean"], inp["normalization"]["std"])
    except EdgefaceError as err:
        return [f"input.quantization does not feed raw pixels with the card's normalization ({err})"]
    return []


MAX_LEVEL_SHIFT = 0.5  # pixel levels between the card's mean and the integer zero point a raw-pixel file uses


def raw_pixel_mapping(scale: float, zero_point: int, mean, std) -> int:
    """The uint8 zero point that makes raw pixels feed an int8 input of (scale, zero_point): zero_point + 128, so
    every byte maps to an int8 value without clipping; an error when that does not meet the card's normalization
    within half a pixel level (MobileNet's mean 127.5 with a zero point of 0 or -1 does: 128 or 127)."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if np.ptp(mean) or np.ptp(std):
        raise EdgefaceError(f"--io app needs one mean and std for all channels (the int8 input has one scale); "
                            f"this model normalizes with mean {mean.tolist()} std {std.tolist()}")
    if abs(scale * std[0] - 1) > 1e-4:
        raise EdgefaceError(f"--io app: the int8 input's scale {scale:.6g} is not 1/std (std {std[0]:g}), so raw "
                            "pixels cannot be fed exactly; export with --io int8 or uint8 instead")
    zero = zero_point + 128  # the converter's own uint8 mapping: 0-255 maps onto -128..127 without clipping
    if abs(zero - mean[0]) > MAX_LEVEL_SHIFT:
        raise EdgefaceError(f"--io app: the int8 input's zero point {zero_point} puts raw pixel {zero} at 0, "
                            f"but the normalization's mean is {mean[0]:g} (more than half a level away)")
    return zero


def _quant(entry):
    return None if not entry else _round((entry["scale"], entry["zero_point"]))


def _round(pair):
    return None if not pair else (round(float(pair[0]), 9), int(pair[1]))
