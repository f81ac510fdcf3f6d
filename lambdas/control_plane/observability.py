"""Powertools on every handler: Logger context, Tracer and Metrics, and the business counts.

:func:`instrumented` wraps a handler with Powertools' Logger context (the request id and cold
start on every line), Tracer (an X-Ray segment per invocation; the functions run with active
tracing, and Tracer disables itself outside Lambda) and Metrics (the counts below, flushed once
per invocation as CloudWatch embedded metric format, so no PutMetricData permission is needed).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from o2v_core.business_metrics import DIMENSION, METRIC_OF_EVENT, NAMESPACE

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = Tracer()

Result = TypeVar("Result")
# A run that counted nothing (a monitor tick with no job in flight) is normal, not a mistake.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def instrumented(handler: Callable[[Mapping[str, Any], Any], Result]) -> Callable[[Mapping[str, Any], Any], Result]:
    """Logger context, Tracer and Metrics around a Lambda handler (outermost first: metrics flush last)."""
    traced = tracer.capture_lambda_handler(handler, capture_response=False)
    with_context = logger.inject_lambda_context(traced, clear_state=True)
    return metrics.log_metrics(with_context)  # type: ignore[no-any-return]


def count(metric: str, deployment: str, value: int = 1) -> None:
    """Add a business count for this deployment to the invocation's metrics."""
    if value <= 0:
        return
    if metrics.default_dimensions.get(DIMENSION) != deployment:  # set once: Powertools warns on a repeat
        metrics.set_default_dimensions(**{DIMENSION: deployment})
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def count_event(detail_type: str, deployment: str) -> None:
    metric = METRIC_OF_EVENT.get(detail_type)
    if metric is not None:
        count(metric, deployment)
