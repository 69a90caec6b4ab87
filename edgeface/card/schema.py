"""The model card's JSON schema (edgeface/model_card.schema.json) and its check."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from edgeface.errors import EdgefaceError

SCHEMA_VERSION = 2

SCHEMA = json.loads((Path(__file__).parents[1] / "model_card.schema.json").read_text())  # edgeface package data


def validate_card(card: dict, source="model card") -> None:
    try:
        jsonschema.validate(card, SCHEMA)
    except RecursionError:
        raise EdgefaceError(f"{source}: the model card is nested too deeply to be a card") from None
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise EdgefaceError(f"{source}: does not match the model card schema: {err.message} at {where}") from None
