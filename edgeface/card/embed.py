"""Cards inside the files that can carry them (TFLite metadata, ONNX metadata_props), the content hash that
leaves the card out, and `seal`, which settles a finished artifact's size and hash into its card."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgeface.card.schema import validate_card
from edgeface.errors import EdgefaceError

EMBEDDED_KEY = "edgeface_model_card"  # TFLite metadata entry / ONNX metadata_props key

EMBEDS = (".tflite", ".onnx")


def card_path(artifact) -> Path:
    """NAME.json beside NAME.tflite / NAME.onnx / NAME.engine, or beside a SavedModel folder NAME."""
    artifact = Path(artifact)
    stem = artifact.name if artifact.is_dir() else artifact.name.removesuffix(artifact.suffix)
    return artifact.with_name(stem + ".json")


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


def embed_bytes(path: Path, data: bytes, card: dict) -> bytes:
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
        data = embed_bytes(staged, plain, card)
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
