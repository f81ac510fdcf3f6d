"""RetrainingExhausted once per lineage: concurrent deliveries, and a launcher killed at each step.

The announcement ledger's claim is a PutObject with ``If-None-Match: *``; of two such writes of
one key, S3 accepts one and answers the other ``412 Precondition Failed``
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html), which moto's
server enforces too. A kill is a ``BaseException`` from a botocore ``before-call``/``after-call``
hook (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html), so no
``except Exception`` runs, as when Lambda ends an invocation at its timeout.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from control_plane.aws.announcements import Announcements
from control_plane.handlers import retrain_launcher
from o2v_core.events import RETRAINING_EXHAUSTED
from o2v_core.functions import RECONCILER

from tests.control_plane.test_fault_injection import reconciler
from tests.control_plane.test_retrain_launcher import diverged_event, stopped_parent
from tests.support.aws_calls import attributed_to
from tests.support.cloud import ARTIFACT_BUCKET, BASE_HYPERPARAMETERS, Cloud
from tests.support.faults import Killed, killed
from tests.support.lambda_context import lambda_context


def exhausted_parent(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> str:
    cloud.use_config(monkeypatch, retrain_policy='{"max_attempts": 4}')
    return stopped_parent(cloud, attempt=4, hyperparameters={**BASE_HYPERPARAMETERS, "dropout": "0.4"})


def notified(cloud: Cloud) -> list[str]:
    """The RetrainingExhausted notifications (the reconciler also reports the stopped parent's verdict)."""
    return [event["detail-type"] for event in cloud.delivered("notifications")
            if event["detail-type"] == RETRAINING_EXHAUSTED]


def test_simultaneous_deliveries_notify_once(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = exhausted_parent(cloud, monkeypatch)
    event = diverged_event(parent, attempt=4)
    start = threading.Barrier(8)

    def deliver(_: int) -> dict[str, Any]:
        start.wait()  # all read the parent before any tags it exhausted
        return retrain_launcher.handler(json.loads(json.dumps(event)), lambda_context())

    with ThreadPoolExecutor(max_workers=8) as pool:
        actions = sorted(outcome["action"] for outcome in pool.map(deliver, range(8)))

    assert actions == ["already_exhausted"] * 7 + ["exhausted"]
    assert notified(cloud) == [RETRAINING_EXHAUSTED]


@pytest.mark.parametrize(
    ("operation", "when"),
    [("PutObject", "after"), ("PutEvents", "before"), ("AddTags", "before"), ("AddTags", "after")],
    ids=["after-claim", "before-put-events", "before-tag", "after-tag"],
)
def test_a_killed_launcher_still_notifies_exactly_once(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, operation: str, when: str
) -> None:
    parent = exhausted_parent(cloud, monkeypatch)
    event = diverged_event(parent, attempt=4)
    service = {"PutObject": "s3", "PutEvents": "events", "AddTags": "sagemaker"}[operation]
    with killed(service, operation, when=when), contextlib.suppress(Killed):
        retrain_launcher.handler(event, lambda_context())
    for _ in range(2):  # Lambda's two async retries
        retrain_launcher.handler(event, lambda_context())
    with attributed_to(RECONCILER.function_id):
        reconciler(cloud).run()
        reconciler(cloud).run()  # a second run changes nothing

    assert notified(cloud) == [RETRAINING_EXHAUSTED]
    assert cloud.training_jobs() == [parent]


def test_a_kill_after_put_events_before_its_confirmation_is_not_announced_again(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim stays unconfirmed, but the witness queue holds the event's copy: the reconciler
    marks it sent instead of putting it a second time."""
    parent = exhausted_parent(cloud, monkeypatch)
    event = diverged_event(parent, attempt=4)
    with killed("events", "PutEvents", when="after"), contextlib.suppress(Killed):
        retrain_launcher.handler(event, lambda_context())
    retrain_launcher.handler(event, lambda_context())
    with attributed_to(RECONCILER.function_id):
        report = reconciler(cloud).run()
        again = reconciler(cloud).run()

    assert notified(cloud) == [RETRAINING_EXHAUSTED]
    assert report.confirmed == [f"exhausted/{parent}"] and report.republished == []
    assert again.confirmed == again.republished == []


def test_a_claim_whose_claimant_died_before_put_events_is_put_once_after_the_grace_period(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = exhausted_parent(cloud, monkeypatch)
    event = diverged_event(parent, attempt=4)
    for _ in range(3):  # the first attempt and both retries die at the same point
        with killed("events", "PutEvents", when="before"), contextlib.suppress(Killed):
            retrain_launcher.handler(event, lambda_context())
    assert notified(cloud) == []
    with attributed_to(RECONCILER.function_id):
        soon = reconciler(cloud, now=datetime.now(UTC)).run()  # within the grace period: not yet
        report = reconciler(cloud).run()
        again = reconciler(cloud).run()

    assert soon.republished == []
    assert report.republished == [f"exhausted/{parent}"]
    assert again.republished == [] and again.confirmed == [f"exhausted/{parent}"]  # the witness saw it
    assert notified(cloud) == [RETRAINING_EXHAUSTED]


def test_the_ledger_claim_is_create_only(cloud: Cloud) -> None:
    """S3 (and the fake, tests/support/moto_s3_conditional.py) answers 412 to a second If-None-Match: * write."""
    ledger = Announcements(ARTIFACT_BUCKET, cloud.deployment)
    with ThreadPoolExecutor(max_workers=8) as pool:
        claimed = list(pool.map(lambda _: ledger.claim("exhausted/x", {"Detail": "{}"}), range(8)))
    assert sorted(claimed) == [False] * 7 + [True]
