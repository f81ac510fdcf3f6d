"""Business metrics (issue 15): each handler flushes what the loop did as CloudWatch embedded
metric format (Powertools Metrics), counted per outcome, not per invocation.

The EMF document (``_aws.CloudWatchMetrics``: namespace, dimensions, metric names; values at the
top level) is the one CloudWatch Logs turns into metrics
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from control_plane import observability
from control_plane.handlers import divergence_monitor, retrain_launcher
from o2v_core import business_metrics

from tests.control_plane.test_flow import LINEAGE, SCHEDULED, run_monitor_each_epoch
from tests.support.cloud import DEPLOYMENT, Cloud
from tests.support.lambda_context import lambda_context


def emitted(output: str) -> dict[str, float]:
    """Sum of each business metric over the EMF documents printed, checking their shape."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document: dict[str, Any] = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == business_metrics.NAMESPACE
        assert directive["Dimensions"] == [[business_metrics.DIMENSION]]
        assert document[business_metrics.DIMENSION] == DEPLOYMENT
        for metric in directive["Metrics"]:
            assert metric["Unit"] == "Count"
            value = document[metric["Name"]]
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(value if isinstance(value, list) else [value])
    return totals


def test_a_divergence_and_its_relaunch_are_counted_once_however_often_the_handlers_run(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.use_config(monkeypatch)
    parent = cloud.create_job(LINEAGE)
    # Counts that tests (and the bench) made by calling logic without a handler were never
    # flushed; in Lambda every count happens inside a handler, which flushes it.
    observability.metrics.clear_metrics()
    capsys.readouterr()

    run_monitor_each_epoch(cloud, parent)  # several ticks; one of them finds the divergence
    assert divergence_monitor.handler(SCHEDULED, lambda_context())["diverged"] == []
    (event,) = cloud.delivered("retrain_launcher")
    assert retrain_launcher.handler(event, lambda_context())["action"] == "launched"
    assert retrain_launcher.handler(event, lambda_context())["action"] == "already_launched"  # redelivered

    assert emitted(capsys.readouterr().out) == {
        business_metrics.DIVERGENCES_DETECTED: 1,
        business_metrics.ATTEMPTS_LAUNCHED: 1,
    }
