"""Typed configuration: pydantic v2 models whose validation errors become one line naming the key, so the
Python API and the CLI get the same checks (a YAML "5e-4" is coerced to a float; a wrong type is refused
before anything is written)."""
from __future__ import annotations

from typing import ClassVar, get_args

import pydantic

from edgeface.errors import EdgefaceError


def _describe(err: pydantic.ValidationError, model: type) -> str:
    first = err.errors()[0]
    key = ".".join([model.config_key] * bool(model.config_key) + [str(p) for p in first["loc"]]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return f"unknown config key {key!r} (known: {known})"
    shown = "" if first["type"].startswith("value_error") else f" (got {first.get('input')!r})"
    more = f"; and {err.error_count() - 1} more" if err.error_count() > 1 else ""
    return f"config key {key!r}: {message}{shown}{more}"


def choices(literal) -> list[str]:
    """The allowed values of a Literal type, for click.Choice."""
    return list(get_args(literal))


class Config(pydantic.BaseModel):
    """Base of every config: unknown keys refused, errors raised as EdgefaceError."""

    model_config = pydantic.ConfigDict(extra="forbid")
    # where this config sits inside the training config ("" at the top), so errors name the full dotted key
    config_key: ClassVar[str] = ""

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except pydantic.ValidationError as err:
            raise EdgefaceError(_describe(err, type(self))) from None

    def replace(self, **changes):
        """A validated copy with some fields changed."""
        return type(self)(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    # keras-hub style: configuration round-trips through get_config() / from_config()
    def get_config(self) -> dict:
        return self.to_dict()

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)
