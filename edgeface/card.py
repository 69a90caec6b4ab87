"""Model cards: everything an app developer needs to feed an artifact and decode its outputs, built once per
artifact (the copy embedded in a TFLite/ONNX file equals the JSON file beside it), and the checks that every load
runs: schema, the artifact's hash, the embedded copy, and the card's contract against the model spec and the
artifact's real inputs and outputs."""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np

from edgeface.data.framing import crop_card
from edgeface.errors import EdgefaceError
from edgeface.data.images import DECODE_CARD, RESIZE_CARD
from edgeface.labels import AGE_GROUP_LABELS, AGE_GROUP_RULE, GENDER_LABELS
from edgeface.version import __version__

SCHEMA_VERSION = 2
SCHEMA = json.loads((Path(__file__).parent / "model_card.schema.json").read_text())
EMBEDDED_KEY = "edgeface_model_card"  # TFLite metadata entry / ONNX metadata_props key
CARD_MAX_BYTES = 4 << 20  # a card is a few KB; a larger file is refused before it is read
PREPROCESSING = ("decode the image as 8-bit RGB; centre-crop to a square; resize to {size}x{size} with "
                 "antialiased bilinear interpolation; round to 0-255; then normalize per channel")
NORMALIZATION_FORMULA = "normalized = (pixel - mean) / std, per channel in color_order"
INPUT_QUANTIZATION_FORMULA = "q = clamp(round(normalized / scale) + zero_point) to the input dtype's range"
OUTPUT_QUANTIZATION_FORMULA = "value = (q - zero_point) * scale"
RAW_PIXELS_FORMULA = ("feed the 0-255 RGB bytes as they are (no arithmetic, no rounding in the app); inside, the "
                      "network sees (pixel - zero_point) * scale")
# How the input is fed: normalized floats, integers quantized by the app, or raw pixels (the app form, --io app).
ENCODINGS = ("float", "quantized", "raw_pixels")


def card_path(artifact) -> Path:
    """NAME.json beside NAME.tflite / NAME.onnx / NAME.engine, or beside a SavedModel folder NAME."""
    artifact = Path(artifact)
    stem = artifact.name if artifact.is_dir() else artifact.name.removesuffix(artifact.suffix)
    return artifact.with_name(stem + ".json")


# ---- embedded cards and content hashes -------------------------------------------------------------------
def _tflite_card_span(data: bytes) -> tuple[int, int] | None:
    """Byte range of the embedded card's JSON inside a TFLite flatbuffer, or None."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == EMBEDDED_KEY:
            # the generated API gives the bytes but not where they sit; its table does (field 4 = Buffer.data)
            table = model.Buffers(entry.Buffer())._tab
            offset = table.Offset(4)
            if not offset:
                return None
            start = table.Vector(offset)
            return start, start + table.VectorLen(offset)
    return None


def _onnx_without_card(model):
    kept = [p for p in model.metadata_props if p.key != EMBEDDED_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    return model


def content_sha256(path) -> tuple[str, str]:
    """(sha256, what it covers). A file cannot hold its own hash, so for files that embed their card the hash
    leaves the card's bytes out (TFLite) or hashes the model without the card entry (ONNX); a SavedModel folder
    hashes its files' names and bytes."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest(), "files of the folder"
    data = path.read_bytes()
    if path.suffix == ".tflite":
        span = _tflite_card_span(data)
        if span:
            return hashlib.sha256(data[:span[0]] + data[span[1]:]).hexdigest(), "file without the embedded model card"
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load_from_string(data)
        external = _onnx_external_files(model, path)
        if any(p.key == EMBEDDED_KEY for p in model.metadata_props):
            digest = hashlib.sha256(_onnx_without_card(model).SerializeToString(deterministic=True))
            scope = "file without the embedded model card"
        else:
            digest, scope = hashlib.sha256(data), "file"
        if external:  # the weights it reads from other files are part of what the hash must cover
            for file in external:
                digest.update(file.name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
            scope += ", and its external data files"
        return digest.hexdigest(), scope
    return hashlib.sha256(data).hexdigest(), "file"


def _onnx_external_files(model, path: Path) -> list[Path]:
    """The external data files an ONNX model reads (tensors stored outside the .onnx), sorted; each must sit in
    the model's folder (a location elsewhere is refused: the hash could not cover what the runtime would read)."""
    names = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == 1:  # TensorProto.EXTERNAL
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            names.add(location)
    files = []
    for name in sorted(names):
        file = (path.parent / name).resolve()
        if not name or Path(name).is_absolute() or file.parent != path.parent.resolve() or not file.is_file():
            raise EdgefaceError(f"{path}: external data {name!r} is not a file beside the model")
        files.append(file)
    return files


def _embed_bytes(path: Path, data: bytes, card: dict) -> bytes:
    text = json.dumps(card, sort_keys=True)
    if path.suffix == ".tflite":
        return _embed_tflite(data, text.encode())
    import onnx

    model = _onnx_without_card(onnx.load_from_string(data))
    model.metadata_props.add(key=EMBEDDED_KEY, value=text)
    return model.SerializeToString(deterministic=True)


def _embed_tflite(flatbuffer: bytes, payload: bytes) -> bytes:
    """Adds the card as a named metadata buffer, readable with any flatbuffer/TFLite schema reader. Android's,
    iOS's and MediaPipe's tooling read another entry, TFLITE_METADATA (edgeface.export.tflite_metadata), which
    the app form carries too."""
    return set_tflite_metadata(flatbuffer, EMBEDDED_KEY, payload)


def set_tflite_metadata(flatbuffer: bytes, name: str, payload: bytes) -> bytes:
    """The TFLite file with metadata entry `name` holding `payload` (a previous entry of that name replaced)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    kept = []
    for entry in model.metadata or []:
        entry_name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if entry_name == name:  # the previous one: its buffer is emptied (indices stay valid), its entry dropped
            model.buffers[entry.buffer].data = []
        else:
            kept.append(entry)
    buffer = schema.BufferT()
    buffer.data = list(payload)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = kept + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + len(payload) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


EMBEDS = (".tflite", ".onnx")


def seal(staged: Path, card: dict) -> dict:
    """Completes the card's artifact facts (size, content hash) for the finished artifact at `staged` and, for
    formats that can carry it, embeds the card; returns the final card, which the JSON file repeats exactly."""
    card = json.loads(json.dumps(card))
    artifact = card["artifact"]
    if staged.suffix not in EMBEDS:
        artifact["sha256"], artifact["sha256_of"] = content_sha256(staged)
        artifact["size_bytes"] = _size(staged)
        validate_card(card)
        return card
    plain = staged.read_bytes()
    artifact.update(sha256="0" * 64, sha256_of="file without the embedded model card", size_bytes=len(plain))
    for _ in range(8):  # the size and hash written into the card must be those of the file that carries it
        validate_card(card)
        data = _embed_bytes(staged, plain, card)
        staged.write_bytes(data)
        sha, scope = content_sha256(staged)
        if (artifact["size_bytes"], artifact["sha256"], artifact["sha256_of"]) == (len(data), sha, scope):
            return card
        artifact.update(size_bytes=len(data), sha256=sha, sha256_of=scope)
    raise EdgefaceError(f"{staged}: the card's size and hash did not settle while embedding it")


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def embedded_card(path) -> dict | None:
    """The card carried inside a TFLite or ONNX file, or None."""
    path = Path(path)
    if path.suffix not in EMBEDS or not path.is_file():
        return None
    data = path.read_bytes()
    try:
        if path.suffix == ".tflite":
            span = _tflite_card_span(data)
            return json.loads(data[span[0]:span[1]]) if span else None
        import onnx

        model = onnx.load_from_string(data)
        text = next((p.value for p in model.metadata_props if p.key == EMBEDDED_KEY), None)
        return json.loads(text) if text else None
    except Exception as err:  # a damaged file: say so, do not trace back
        raise EdgefaceError(f"{path}: cannot read its embedded model card ({type(err).__name__})") from None


# ---- building ----------------------------------------------------------------------------------------------
def build_card(*, file_name: str, fmt: str, precision: str, runtime: str, spec, parameters: int, io: dict,
               training: dict, calibration: dict | None = None, metrics: dict | None = None,
               options: dict | None = None, layout: str = "NHWC", raw_pixels: bool = False) -> dict:
    """The card of one artifact, before `seal` adds its size and hash. `io` is the artifact's real input and
    output description (dtype, shape, quantization and runtime names per tensor), as `Runner.io()` reads it;
    `raw_pixels`: the app form, fed the pixel bytes as they are."""
    config = spec.config
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


def validate_card(card: dict, source="model card") -> None:
    try:
        jsonschema.validate(card, SCHEMA)
    except RecursionError:
        raise EdgefaceError(f"{source}: the model card is nested too deeply to be a card") from None
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise EdgefaceError(f"{source}: does not match the model card schema: {err.message} at {where}") from None


# ---- reading and checking ----------------------------------------------------------------------------------
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


PARITY_KEYS = ("parity_vs_keras", "parity_vs_source")  # the file's own checks at export (vs its model, or the file
# it was rewritten from); a rewritten file keeps its source's check as source_parity_vs_keras


def failed_parity(card: dict | None) -> str | None:
    """Which parity check the card records as failed, or None (none failed, or none recorded)."""
    metrics = (card or {}).get("metrics", {})
    return next((key for key in PARITY_KEYS if key in metrics and not metrics[key].get("passed")), None)


def contract_problems(card: dict, spec, io: dict) -> list[str]:
    """Where the card's contract (what an app relies on) disagrees with the model spec it carries, the label
    vocabularies, or the artifact's real inputs and outputs (`io` from the runner). Empty when it holds."""
    config = spec.config
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
