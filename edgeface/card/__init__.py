"""Model cards: everything an app developer needs to feed an artifact and decode its outputs, built once per
artifact (the copy embedded in a TFLite/ONNX file equals the JSON file beside it), and the checks that every load
runs: schema, the artifact's hash, the embedded copy, and the card's contract against the model spec and the
artifact's real inputs and outputs.

A facade: `schema` (the JSON schema and its check), `embed` (cards inside files, content hashes, `seal`),
`build` (one artifact's card) and `check` (reading a card and checking it against the artifact).
"""
from edgeface.card.build import ENCODINGS, PREPROCESSING, build_card
from edgeface.card.check import PARITY_KEYS, contract_problems, failed_parity, raw_pixel_mapping, read_card
from edgeface.card.embed import EMBEDDED_KEY, card_path, content_sha256, embedded_card, seal, set_tflite_metadata
from edgeface.card.schema import SCHEMA, SCHEMA_VERSION, validate_card

__all__ = ["EMBEDDED_KEY", "ENCODINGS", "PARITY_KEYS", "PREPROCESSING", "SCHEMA", "SCHEMA_VERSION", "build_card",
           "card_path", "content_sha256", "contract_problems", "embedded_card", "failed_parity", "raw_pixel_mapping",
           "read_card", "seal", "set_tflite_metadata", "validate_card"]
