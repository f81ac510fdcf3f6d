"""Field checks shared by the small JSON config dataclasses (detector, retrain policy).

Every error names the config, the field and the allowed range, e.g.
``detector config field 'patience': 0 is out of range; allowed: int in [1, 50]``. A config
checks its fields through its own :class:`FieldChecks`, which raises the config's own error
type directly, so nobody catches and re-wraps an error to change its type or its prefix; and
every error keeps ``field`` and ``detail`` apart, so whoever reports it at another place (the
cdk.json key path) builds on those instead of taking the message apart.
Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any


class ConfigFieldError(ValueError):
    """A config field is unknown, of the wrong type or out of range; ``field`` names it and
    ``detail`` says what is wrong and what is allowed."""

    def __init__(self, config: str, field: str, detail: str) -> None:
        super().__init__(f"{config} field {field!r}: {detail}")
        self.config = config
        self.field = field
        self.detail = detail


# (field, detail) -> the config's own error
ErrorFactory = Callable[[str, str], ConfigFieldError]


class FieldChecks:
    """The field checks of one config: each failed check raises ``error(field, detail)``."""

    def __init__(self, error: ErrorFactory) -> None:
        self.error = error

    def integer(self, field: str, value: object, low: int, high: int) -> int:
        allowed = f"int in [{low}, {high}]"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"{value!r} is not an integer; allowed: {allowed}")
        if not low <= value <= high:
            raise self.error(field, f"{value!r} is out of range; allowed: {allowed}")
        return value

    def number(self, field: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
        allowed = f"number in {'(' if low_open else '['}{low:g}, {high:g}]"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"{value!r} is not a number; allowed: {allowed}")
        number = float(value)
        below = number <= low if low_open else number < low
        if not math.isfinite(number) or below or number > high:
            raise self.error(field, f"{value!r} is out of range; allowed: {allowed}")
        return number

    def boolean(self, field: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(field, f"{value!r} is not true or false")
        return value

    def known_fields(self, cls: type[Any], data: Mapping[str, object]) -> dict[str, object]:
        """Reject keys that are not fields of ``cls``; the error lists the known ones."""
        if not isinstance(data, Mapping):
            raise self.error("<root>", f"must be a JSON object, got {type(data).__name__}")
        names = [item.name for item in fields(cls)]
        for key in data:
            if key not in names:
                raise self.error(str(key), f"unknown; known fields: {', '.join(names)}")
        return dict(data)

    def json_object(self, text: str) -> Mapping[str, object]:
        """Parse a JSON object; an empty string means ``{}`` (all defaults)."""
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise self.error("<root>", f"not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise self.error("<root>", f"must be a JSON object, got {type(data).__name__}")
        return data
