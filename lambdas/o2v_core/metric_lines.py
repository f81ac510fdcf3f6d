"""Object2Vec's ``#quality_metric`` log lines: written by the local trainer, read by the
monitor, ``o2v detect`` and the benchmarks. Format as built-in SageMaker algorithms print it:

    #quality_metric: host=algo-1, epoch=3, validation mean_squared_error <loss>=0.091
    #quality_metric: host=algo-1, test mean_squared_error <loss>=0.087

The real service prefixes each line with ``[MM/DD/YYYY HH:MM:SS INFO <thread>] ``
(../shared/reference/object2vec.md section 10b); the pattern is searched anywhere in the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The epoch and the value are matched loosely (anything up to the separator) and checked after,
# so that a line cut after ``<loss>=``, ``epoch=-1`` or ``1_1.8`` is reported, not silently dropped.
LINE_PATTERN = re.compile(
    r"#quality_metric: host=(?P<host>[^,\s]+),(?: epoch=(?P<epoch>[^,\s]*),)? "
    r"(?P<channel>train|validation|test) (?P<metric>[a-z_]+) <(?P<kind>loss|score)>=(?P<value>\S*)"
)
# What the algorithm prints: a decimal or exponent float, or nan/inf. Python's float() also takes
# ``1_1.8`` (as 11.8), which no logger writes, so the value is checked against this first.
NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE)
EPOCH = re.compile(r"\d{1,9}")

# The CloudWatch Logs filter pattern that selects these lines (a quoted term matches the exact
# phrase, https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):
# FilterLogEvents' filterPattern for the monitor and the subscription filter of the metric-line judge.
FILTER_PATTERN = '"#quality_metric"'

# The metric a detector watches, per output_layer (SageMaker's metric names).
LOSS_METRIC = {"softmax": "cross_entropy", "mean_squared_error": "mean_squared_error"}
SCORE_KIND = {"accuracy": "score"}


@dataclass(frozen=True)
class MetricLine:
    host: str
    epoch: int | None
    channel: str
    metric: str
    value: float

    @property
    def sagemaker_name(self) -> str:
        """The name SageMaker uses in CloudWatch and FinalMetricDataList, e.g. ``validation:cross_entropy``."""
        return f"{self.channel}:{self.metric}"


def format_line(channel: str, metric: str, value: float, *, epoch: int | None = None, host: str = "algo-1") -> str:
    kind = SCORE_KIND.get(metric, "loss")
    epoch_part = f" epoch={epoch}," if epoch is not None else ""
    return f"#quality_metric: host={host},{epoch_part} {channel} {metric} <{kind}>={value!r}"


def parse_line(text: str) -> MetricLine | None:
    """Return the metric on this line, or None when the line is not a metric line.

    A metric line whose value is missing or not a number (``nan`` and ``inf`` are numbers here),
    or whose epoch is not a whole number >= 0, raises ValueError, so a corrupt log is reported
    rather than silently skipped.
    """
    match = LINE_PATTERN.search(text)
    if match is None:
        return None
    raw = match.group("value")
    if not raw:
        raise ValueError("metric value is missing (the line ends after '=')")
    if NUMBER.fullmatch(raw) is None:
        raise ValueError(f"metric value {raw[:40]!r} is not a number")
    epoch = match.group("epoch")
    if epoch is not None and EPOCH.fullmatch(epoch) is None:
        raise ValueError(f"epoch {epoch[:40]!r} is not a whole number >= 0")
    return MetricLine(
        host=match.group("host"),
        epoch=int(epoch) if epoch is not None else None,
        channel=match.group("channel"),
        metric=match.group("metric"),
        value=float(raw),
    )


def metric_definitions() -> list[dict[str, str]]:
    """Regexes for CreateTrainingJob ``MetricDefinitions`` (used for local, non-built-in images)."""
    definitions = []
    for channel in ("train", "validation"):
        for metric in ("cross_entropy", "mean_squared_error", "accuracy"):
            kind = SCORE_KIND.get(metric, "loss")
            definitions.append({
                "Name": f"{channel}:{metric}",
                "Regex": rf"#quality_metric: host=\S+, epoch=\S+, {channel} {metric} <{kind}>=(\S+)",
            })
    return definitions
