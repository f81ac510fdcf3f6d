"""What every section of docs/benchmarks.md renders with: the detectors' order and short names, a
value as a table cell's text (fmt), a Markdown table (md_table), a target's verdict (verdict_of).
The report modules (report, detection_report, cost_report, value_report, scale_report, demo_seeds)
import these from here, and none imports another's helpers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

DETECTOR_ORDER = ("ours_recommended", "ours_default", "object2vec_early_stopping", "debugger_overfit",
                  "keras_early_stopping")
SHORT = {
    "ours_recommended": "ours (recommended)",
    "ours_default": "ours (defaults)",
    "object2vec_early_stopping": "O2V early stop",
    "debugger_overfit": "Debugger Overfit",
    "keras_early_stopping": "Keras EarlyStopping",
}

# -- formatting --------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value}{suffix}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}{suffix}"
    return str(value)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict_of(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**not met**")
