"""Per-epoch loss curves from SageMaker training logs, CSV or JSON. Defined once.

The in-flight monitor and the finished-job evaluator turn CloudWatch Logs messages into a curve
with :func:`series_from_lines`; ``o2v detect`` reads a file with :func:`read_metrics_file`.
Every error is a :class:`MetricInputError` naming the source and the line (or JSON item).

Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path

from o2v_core.detector import Decision, DetectorConfig, detect
from o2v_core.metric_lines import LOSS_METRIC, NUMBER, parse_line

Point = tuple[int, float]
DEFAULT_LABEL = "validation:loss"


class MetricInputError(ValueError):
    """Metrics input cannot be read; the message names the source and the line."""


@dataclass(frozen=True)
class MetricSeries:
    """One job's validation curve (and the train curve of the same metric, when logged)."""

    metric: str  # SageMaker's name of the validation metric, e.g. "validation:cross_entropy"
    validation: tuple[Point, ...]
    train: tuple[Point, ...] = ()
    skipped: tuple[str, ...] = ()  # garbled metric lines left out, each "source:line: why: text"

    def skipped_note(self) -> str:
        """One sentence for a decision's explanation and the logs; empty when nothing was skipped."""
        if not self.skipped:
            return ""
        more = f" (and {len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
        return f"skipped {len(self.skipped)} garbled #quality_metric line(s): {self.skipped[0]}{more}"


def decide_series(
    series: MetricSeries, config: DetectorConfig | None = None, *, ended_by_early_stopping: bool = False
) -> Decision:
    """The detector's decision on a curve; skipped garbled lines are named in its explanation.
    ``ended_by_early_stopping``: a finished job's curve that Object2Vec's own early stopping ended."""
    decision = detect(series.validation, series.train or None, config, metric=series.metric,
                      ended_by_early_stopping=ended_by_early_stopping)
    note = series.skipped_note()
    return replace(decision, explanation=f"{decision.explanation}; {note}") if note else decision


def loss_metric_for(output_layer: str) -> str:
    """The validation metric the detector watches for an ``output_layer`` value."""
    try:
        return f"validation:{LOSS_METRIC[output_layer]}"
    except KeyError:
        raise MetricInputError(
            f"output_layer {output_layer!r} has no loss metric; known: {', '.join(LOSS_METRIC)}"
        ) from None


def series_from_lines(lines: Iterable[str], *, metric: str | None = None, source: str = "log") -> MetricSeries:
    """Collect the per-epoch ``#quality_metric`` values of one validation loss (and its train twin).

    ``metric`` is a name like ``validation:cross_entropy`` or ``cross_entropy``; without it the
    log's own validation loss is used (cross_entropy or mean_squared_error, whichever it logs).
    Lines without ``epoch=`` (the final test metrics) are ignored. With several hosts, the lowest
    host name (``algo-1``) is used. A repeated epoch (a spot restart from a checkpoint) keeps the
    latest value. Lines that are not metric lines are ignored. A garbled metric line (value cut
    off or not a number, negative epoch) is skipped and named in ``skipped``, so one bad line
    does not make the rest of the curve unjudgeable; callers report it.
    """
    # values[(channel, metric, host)][epoch] = value, in log order
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    skipped: list[str] = []
    for number, text in enumerate(lines, start=1):
        try:
            parsed = parse_line(text)
        except ValueError as error:
            skipped.append(f"{source}:{number}: {error}: {text.strip()[:200]}")
            continue
        if parsed is None or parsed.epoch is None:
            continue
        values.setdefault((parsed.channel, parsed.metric, parsed.host), {})[parsed.epoch] = parsed.value

    wanted = _metric_name(metric, {key[1] for key in values if key[0] == "validation"}, source)
    hosts = sorted(host for channel, name, host in values if channel == "validation" and name == wanted)
    if not hosts:
        return MetricSeries(f"validation:{wanted}", (), skipped=tuple(skipped))
    host = hosts[0]
    return MetricSeries(
        f"validation:{wanted}",
        tuple(sorted(values[("validation", wanted, host)].items())),
        tuple(sorted(values.get(("train", wanted, host), {}).items())),
        tuple(skipped),
    )


def _metric_name(metric: str | None, logged: set[str], source: str) -> str:
    if metric:
        return metric.split(":", 1)[1] if metric.startswith("validation:") else metric
    losses = [name for name in LOSS_METRIC.values() if name in logged]
    if not losses:
        found = ", ".join(sorted(logged)) or "none"
        raise MetricInputError(
            f"{source}: no per-epoch '#quality_metric' validation loss lines (validation "
            f"{' or '.join(LOSS_METRIC.values())}); validation metrics found: {found}"
        )
    if len(losses) > 1:
        raise MetricInputError(f"{source}: logs both {' and '.join(losses)}; choose one with --metric")
    return losses[0]


def read_metrics_file(path: Path, *, metric: str | None = None) -> MetricSeries:
    """Read a SageMaker training log, a CSV ``epoch,validation[,train]`` or a JSON list of points."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MetricInputError(f"{path}: no such file") from None
    except OSError as error:
        raise MetricInputError(f"{path}: cannot read ({error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise MetricInputError(
            f"{path}:{line}: invalid UTF-8 (byte 0x{data[error.start]:02x} at column {column})"
        ) from None
    if path.suffix.lower() == ".json" or _looks_like_json(text):
        return series_from_json(text, source=str(path), metric=metric)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if path.suffix.lower() == ".csv" or first.replace(" ", "").lower().startswith("epoch,"):
        return series_from_csv(text, source=str(path), metric=metric)
    series = series_from_lines(text.splitlines(), metric=metric, source=str(path))
    if not series.validation:
        raise MetricInputError(f"{path}: no per-epoch '#quality_metric' lines for {series.metric}")
    return series


# A real Object2Vec log line: "[06/17/2021 22:47:36 INFO 140683922831168] ..." (reference 10b).
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
_LOG_PREFIX = re.compile(r"\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d ")


def _looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return True
    return stripped.startswith("[") and _LOG_PREFIX.match(stripped) is None


def series_from_csv(text: str, *, source: str = "csv", metric: str | None = None) -> MetricSeries:
    """``epoch,validation[,train]`` rows, with or without that header; blank train cells allowed."""
    rows = list(csv.reader(io.StringIO(text)))
    validation: list[Point] = []
    train: list[Point] = []
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == _first_row(rows) and cells[0].lower() == "epoch":
            header = [cell.lower() for cell in cells]
            if header[:2] != ["epoch", "validation"] or header[2:] not in ([], ["train"]):
                raise MetricInputError(
                    f"{source}:{number}: header must be 'epoch,validation' or 'epoch,validation,train', got {row}"
                )
            continue
        if len(cells) not in (2, 3):
            raise MetricInputError(f"{source}:{number}: expected 2 or 3 columns (epoch,validation[,train]), got {row}")
        epoch = _int(cells[0], f"{source}:{number}: column 'epoch'")
        validation.append((epoch, _number(cells[1], f"{source}:{number}: column 'validation'")))
        if len(cells) == 3 and cells[2]:
            train.append((epoch, _number(cells[2], f"{source}:{number}: column 'train'")))
    return _series(validation, train, source, metric)


def series_from_json(text: str, *, source: str = "json", metric: str | None = None) -> MetricSeries:
    """``[{"epoch": 0, "validation": 0.5, "train": 0.4}, ...]`` or ``{"metric": ..., "points": [...]}``.

    Values may be numbers or the strings ``"nan"``/``"inf"``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetricInputError(f"{source}:{error.lineno}: not valid JSON ({error.msg})") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise MetricInputError(f"{source}: not valid JSON ({str(error)[:120]})") from None
    except RecursionError:
        raise MetricInputError(f"{source}: JSON nested too deeply; expected a list of flat objects") from None
    label = metric
    if isinstance(data, Mapping):
        if "points" not in data:
            raise MetricInputError(f"{source}: a JSON object needs a 'points' list (and optionally 'metric')")
        if label is None and isinstance(data.get("metric"), str):
            label = data["metric"]
        data = data["points"]
    if not isinstance(data, list):
        raise MetricInputError(f"{source}: expected a JSON list of {{epoch, validation[, train]}} objects")
    validation: list[Point] = []
    train: list[Point] = []
    for index, item in enumerate(data):
        where = f"{source}: item {index}"
        if not isinstance(item, Mapping):
            raise MetricInputError(f"{where}: must be an object with 'epoch' and 'validation', got {item!r}")
        for key in item:
            if key not in ("epoch", "validation", "train"):
                raise MetricInputError(f"{where}: unknown key {key!r}; allowed: epoch, validation, train")
        if "epoch" not in item or "validation" not in item:
            raise MetricInputError(f"{where}: 'epoch' and 'validation' are required, got {dict(item)!r}")
        epoch = _int(item["epoch"], f"{where}: 'epoch'")
        validation.append((epoch, _number(item["validation"], f"{where}: 'validation'")))
        if item.get("train") is not None:
            train.append((epoch, _number(item["train"], f"{where}: 'train'")))
    return _series(validation, train, source, label)


def _first_row(rows: list[list[str]]) -> int:
    return next((number for number, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)), 0)


def _series(validation: list[Point], train: list[Point], source: str, metric: str | None) -> MetricSeries:
    if not validation:
        raise MetricInputError(f"{source}: no data rows")
    for channel, points in (("validation", validation), ("train", train)):
        epochs = [epoch for epoch, _ in points]
        for before, after in pairwise(epochs):
            if after <= before:
                raise MetricInputError(
                    f"{source}: {channel} epochs must be strictly increasing; epoch {after} follows {before}"
                )
    label = metric or DEFAULT_LABEL
    if ":" not in label:
        label = f"validation:{label}"
    return MetricSeries(label, tuple(validation), tuple(train))


def _int(raw: object, where: str) -> int:
    if isinstance(raw, bool):
        raise MetricInputError(f"{where} is {raw!r}, not an integer")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        if _INTEGER.fullmatch(raw.strip()) is None:  # int() would take "1_1" and non-ASCII digits
            raise MetricInputError(f"{where} is {raw[:40]!r}, not an integer")
        value = int(raw.strip())
    else:
        raise MetricInputError(f"{where} is {raw!r}, not an integer")
    if value < 0:
        raise MetricInputError(f"{where} is {value}, must be >= 0")
    return value


def _number(raw: object, where: str) -> float:
    """A loss value; NaN and infinity are accepted (the detector reports them)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise MetricInputError(f"{where} is {raw!r}, not a number")
    if isinstance(raw, str) and NUMBER.fullmatch(raw.strip()) is None:  # float() would take "1_1.8"
        raise MetricInputError(f"{where} is {raw[:40]!r}, not a number")
    try:
        return float(raw)
    except ValueError:
        raise MetricInputError(f"{where} is {raw!r}, not a number") from None
