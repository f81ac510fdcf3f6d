"""Label handling: regression scores stay numbers, class names become ids ``0..k-1``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from training.data.errors import DataError

LabelKind = Literal["regression", "classification"]


def label_key(raw: float | str) -> str:
    """The class name of a raw label (``1.0`` and ``"1"`` are the same class ``"1"``)."""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def shown(raw: float | str, limit: int = 40) -> str:
    """``raw`` for a message: a label of thousands of digits is cut, with its length."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(raw))} characters)"


def sorted_classes(names: Iterable[str]) -> tuple[str, ...]:
    """Classes in a stable order: numerically when every name is an integer, else by name."""
    unique = set(names)
    if unique and all(name.lstrip("-").isdigit() for name in unique):
        return tuple(sorted(unique, key=int))
    return tuple(sorted(unique))


@dataclass(frozen=True)
class LabelSpec:
    kind: LabelKind
    classes: tuple[str, ...] = ()

    def convert(self, raw: float | str, path: str, line: int) -> float | int:
        if self.kind == "regression":
            try:
                value = float(raw)
            except ValueError:
                raise DataError(path, line, f"label {shown(raw)} is not a number (regression)") from None
            if not math.isfinite(value):
                raise DataError(path, line, f"label {shown(raw)} is not a finite number")
            return value
        key = label_key(raw)
        try:
            return self.classes.index(key)
        except ValueError:
            raise DataError(path, line,
                            f"label {shown(key)} is not one of the classes {', '.join(self.classes)}") from None

    def to_json(self) -> dict[str, Any]:
        if self.kind == "regression":
            return {"kind": "regression"}
        return {"kind": "classification", "classes": list(self.classes), "num_classes": len(self.classes)}
