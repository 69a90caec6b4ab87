"""TFLite Support metadata (the `TFLITE_METADATA` entry that MediaPipe Tasks, Android Studio's ML model binding and
the TFLite Support library read), written from its published schema (tensorflow/tflite-support,
metadata_schema.fbs, file identifier "M001") with the flatbuffers builder. tflite-support itself is unmaintained
(last release 2023) and pins protobuf<4, which TensorFlow 2.21 cannot install beside it.

Field slots follow the schema's declaration order; a union takes two slots (its type, then its value).
"""
from __future__ import annotations

import dataclasses

import flatbuffers

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # NormalizationOptions, ImageProperties, Stats and ValueRange are all in 1.0
# enum values of the schema
COLOR_SPACE = {"RGB": 1, "GRAYSCALE": 2}
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2  # ContentProperties union
PROCESS_NORMALIZATION = 1  # ProcessUnitOptions union


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    description: str
    image: tuple | None = None  # (colour space, width, height) for an image input
    normalization: tuple | None = None  # (mean per channel, std per channel) for a float image input
    stats: tuple | None = None  # (min per channel, max per channel) of the values the tensor holds


def _strings(builder, *texts):
    return [builder.CreateString(t) if t is not None else None for t in texts]


def _floats(builder, values):
    builder.StartVector(4, len(values), 4)
    for v in reversed(values):
        builder.PrependFloat32(float(v))
    return builder.EndVector()


def _tables(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _table(builder, fields: dict):
    """fields: slot -> ("offset", value) | ("uint8", value) | ("uint32", value); None values are left out."""
    builder.StartObject(max(fields) + 1 if fields else 0)
    for slot, (kind, value) in fields.items():
        if value is None:
            continue
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "uint32":
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _tensor(builder, info: TensorInfo):
    name, description = _strings(builder, info.name, info.description)
    content = process = stats = None
    if info.image is not None:
        space, width, height = info.image
        size = _table(builder, {0: ("uint32", int(width)), 1: ("uint32", int(height))})
        props = _table(builder, {0: ("uint8", COLOR_SPACE[space]), 1: ("offset", size)})
        content = _table(builder, {0: ("uint8", CONTENT_IMAGE), 1: ("offset", props)})
    else:
        props = _table(builder, {})
        content = _table(builder, {0: ("uint8", CONTENT_FEATURE), 1: ("offset", props)})
    if info.normalization is not None:
        mean, std = (_floats(builder, v) for v in info.normalization)
        options = _table(builder, {0: ("offset", mean), 1: ("offset", std)})
        unit = _table(builder, {0: ("uint8", PROCESS_NORMALIZATION), 1: ("offset", options)})
        process = _tables(builder, [unit])
    if info.stats is not None:
        low, high = (_floats(builder, v) for v in info.stats)
        stats = _table(builder, {0: ("offset", high), 1: ("offset", low)})
    return _table(builder, {0: ("offset", name), 1: ("offset", description), 3: ("offset", content),
                            4: ("offset", process), 5: ("offset", stats)})


def metadata_buffer(name: str, description: str, version: str, author: str, license: str,
                    inputs: list[TensorInfo], outputs: list[TensorInfo]) -> bytes:
    """The ModelMetadata flatbuffer of a one-subgraph model, tensors in the model's input and output order."""
    builder = flatbuffers.Builder(1024)
    in_tensors = _tables(builder, [_tensor(builder, t) for t in inputs])
    out_tensors = _tables(builder, [_tensor(builder, t) for t in outputs])
    subgraph = _tables(builder, [_table(builder, {2: ("offset", in_tensors), 3: ("offset", out_tensors)})])
    name, description, version, author, license, parser = _strings(
        builder, name, description, version, author, license, MIN_PARSER_VERSION)
    root = _table(builder, {0: ("offset", name), 1: ("offset", description), 2: ("offset", version),
                            3: ("offset", subgraph), 4: ("offset", author), 5: ("offset", license),
                            7: ("offset", parser)})
    builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def with_metadata(flatbuffer: bytes, payload: bytes) -> bytes:
    """The TFLite file with its TFLITE_METADATA entry set to `payload`."""
    from edgeface.card import set_tflite_metadata

    return set_tflite_metadata(flatbuffer, METADATA_NAME, payload)
