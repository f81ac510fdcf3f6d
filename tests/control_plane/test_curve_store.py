"""The metric-line judge's curve store and the paced safety net, against the moto server.

The judge builds each job's curve from the delivered lines plus what it stored before (one
UpdateItem per delivery, no CloudWatch Logs call), so what CloudWatch Logs' delivery may do to
it must not change a verdict: duplicates (Lambda invokes asynchronously, at least once:
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html), several epochs in one
``logEvents`` batch, and lines arriving out of order. The safety net leaves the jobs the judge
covers alone, sweeps the rest from the logs, and paces its Logs calls.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from control_plane.aws.curve_store import CurveStore
from control_plane.aws.training_jobs import JobSummary
from control_plane.aws.training_logs import Pacer
from control_plane.handlers import divergence_monitor, metric_line_judge
from control_plane.logic.monitor import COVERED_WITHIN_S, triage
from o2v_core.curve_store import JobRecord, StoredLine
from o2v_core.log_subscription import DATA_MESSAGE, LogBatch, LogEvent, encode
from o2v_core.naming import TAG_DEPLOYMENT
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP, job_curve_table_name

from tests.support import sagemaker_fake
from tests.support.cloud import DIVERGING, PATIENT, Cloud, epoch_lines
from tests.support.lambda_context import lambda_context

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
METRIC = "mean_squared_error"


def delivery(job: str, epochs: list[int], *, base_ms: int) -> dict[str, Any]:
    """One stream's batch with these epochs' metric lines, each epoch one second after the last."""
    events = []
    for epoch in epochs:
        for index, line in enumerate(epoch_lines([DIVERGING[epoch]], METRIC)):
            if "#quality_metric" in line:
                events.append(LogEvent(f"{epoch}-{index}", base_ms + 1000 * epoch, line))
    return encode(LogBatch(sagemaker_fake.ACCOUNT, TRAINING_JOB_LOG_GROUP, f"{job}/algo-1-1764150000",
                           ("dev-metric-line-judge",), DATA_MESSAGE, tuple(events)))


def test_duplicate_batched_and_out_of_order_deliveries_judge_the_whole_curve_and_report_once(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)
    job = cloud.create_job("stsb-baseline", hyperparameters=PATIENT)
    base = int(time.time() * 1000) - 60_000
    verdicts = []
    # a batch of three epochs, delivered twice; epoch 4 before epoch 3; two epochs; the decisive one
    for epochs in ([0, 1, 2], [0, 1, 2], [4], [3], [5, 6], [7]):
        verdicts.append(metric_line_judge.handler(delivery(job, epochs, base_ms=base), lambda_context())["verdict"])
    assert verdicts == ["checked"] * 5 + ["diverged"]
    # The decisive delivery retried (Lambda's asynchronous retry after a lost answer): nothing new.
    again = metric_line_judge.handler(delivery(job, [7], base_ms=base), lambda_context())["verdict"]
    assert again in ("already_reported", "not_running")
    assert len(cloud.delivered("retrain_launcher")) == 1
    stored = CurveStore(job_curve_table_name(cloud.deployment)).records([job])[job]
    epochs = sorted(int(line.message.split("epoch=")[1].split(",")[0]) for line in stored.lines)
    assert epochs == sorted([*range(8), *range(8)])  # each epoch's train and validation line, once
    assert stored.reported == "diverged"
    # No CloudWatch Logs call; SageMaker on the first line and on the divergence (and the retry's stop check).
    assert aws_calls["FilterLogEvents"] == aws_calls["DescribeLogStreams"] == 0
    assert aws_calls["ListTags"] == aws_calls["DescribeTrainingJob"] == 3  # first line, divergence, retry


def test_a_job_under_our_prefix_owned_elsewhere_is_asked_about_once(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("stsb-baseline", extra_tags={TAG_DEPLOYMENT: "someone-else"})
    base = int(time.time() * 1000)
    for epoch in range(3):
        assert metric_line_judge.handler(delivery(job, [epoch], base_ms=base), lambda_context())["verdict"] == "skipped"
    assert aws_calls["DescribeTrainingJob"] == aws_calls["ListTags"] == 1  # remembered in the store


def test_the_safety_net_leaves_covered_jobs_alone_and_sweeps_the_rest(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    cloud.use_config(monkeypatch)
    covered, gapped, silent = (cloud.create_job(name, hyperparameters=PATIENT)
                               for name in ("covered", "gapped", "silent"))
    base = int(time.time() * 1000) - 60_000
    for job, epochs in ((covered, [0, 1, 2]), (gapped, [0, 2])):  # gapped: epoch 1's delivery was lost
        cloud.write_log(job, epoch_lines([DIVERGING[e] for e in epochs], METRIC))
        for epoch in epochs:
            metric_line_judge.handler(delivery(job, [epoch], base_ms=base), lambda_context())
    cloud.write_log(silent, epoch_lines(DIVERGING[:2], METRIC))  # its deliveries never arrived
    aws_calls.clear()
    report = divergence_monitor.handler(SCHEDULED, lambda_context(timeout_seconds=120))
    assert report["covered"] == [covered]
    assert sorted(report["checked"]) == sorted([gapped, silent])
    assert aws_calls["FilterLogEvents"] == 2  # one per swept job, none for the covered one
    assert aws_calls["BatchGetItem"] == 1
    swept = CurveStore(job_curve_table_name(cloud.deployment)).records([gapped, silent])
    assert all(record.swept > 0 for record in swept.values())


def summary(name: str) -> JobSummary:
    return JobSummary(name, f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}")


def test_triage_sweeps_the_least_recently_seen_first_so_consecutive_runs_cover_a_long_list() -> None:
    now = 10_000.0
    line = StoredLine(1, "s", "#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=0.2")
    records = {
        "fresh": JobRecord("fresh", (line,), heard=now - 5),
        "stale-swept-recently": JobRecord("stale-swept-recently", heard=now - 3 * COVERED_WITHIN_S, swept=now - 60),
        "stale-swept-long-ago": JobRecord("stale-swept-long-ago", heard=now - 3 * COVERED_WITHIN_S, swept=now - 900),
    }
    due, covered = triage([summary(n) for n in ("fresh", "never-seen", *list(records)[1:])], records, now)
    assert covered == ["fresh"]
    assert [s.name for s in due] == ["never-seen", "stale-swept-long-ago", "stale-swept-recently"]


def test_pacer_spaces_each_apis_calls_and_keeps_apis_apart() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = Pacer(1.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        pacer.wait("FilterLogEvents")
    pacer.wait("DescribeLogStreams")  # its own quota: no wait
    assert slept == [1.0, 1.0] and clock[0] == 2.0
    with pytest.raises(ValueError, match="> 0"):
        Pacer(0)
