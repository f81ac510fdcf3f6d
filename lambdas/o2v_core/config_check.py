"""Field checks shared by the small JSON config dataclasses (detector, retrain policy).

Every error names the config, the field and the allowed range, e.g.
``detector config field 'patience': 0 is out of range; allowed: int in [1, 50]``.
Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any


class ConfigFieldError(ValueError):
    """A config field is unknown, of the wrong type or out of range; ``field`` names it."""

    def __init__(self, config: str, field: str, message: str) -> None:
        super().__init__(f"{config} field {field!r}: {message}")
        self.config = config
        self.field = field


def check_int(config: str, field: str, value: object, low: int, high: int) -> int:
    allowed = f"int in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigFieldError(config, field, f"{value!r} is not an integer; allowed: {allowed}")
    if not low <= value <= high:
        raise ConfigFieldError(config, field, f"{value!r} is out of range; allowed: {allowed}")
    return value


def check_float(
    config: str, field: str, value: object, low: float, high: float, *, low_open: bool = False
) -> float:
    allowed = f"number in {'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigFieldError(config, field, f"{value!r} is not a number; allowed: {allowed}")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        raise ConfigFieldError(config, field, f"{value!r} is out of range; allowed: {allowed}")
    return number


def check_bool(config: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigFieldError(config, field, f"{value!r} is not true or false")
    return value


def known_fields(config: str, cls: type[Any], data: Mapping[str, object]) -> dict[str, object]:
    """Reject keys that are not fields of ``cls``; the error lists the known ones."""
    if not isinstance(data, Mapping):
        raise ConfigFieldError(config, "<root>", f"must be a JSON object, got {type(data).__name__}")
    names = [item.name for item in fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigFieldError(config, str(key), f"unknown; known fields: {', '.join(names)}")
    return dict(data)


def load_json_object(config: str, text: str) -> Mapping[str, object]:
    """Parse a JSON object; an empty string means ``{}`` (all defaults)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigFieldError(config, "<root>", f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConfigFieldError(config, "<root>", f"must be a JSON object, got {type(data).__name__}")
    return data
