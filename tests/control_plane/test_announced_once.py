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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from control_plane.aws import clients
from control_plane.handlers import retrain_launcher
from o2v_core.events import RETRAINING_EXHAUSTED
from o2v_core.functions import RECONCILER

from tests.aws_calls import attributed_to
from tests.control_plane.cloud import BASE_HYPERPARAMETERS, Cloud
from tests.control_plane.test_fault_injection import reconciler
from tests.control_plane.test_retrain_launcher import diverged_event, stopped_parent
from tests.lambda_context import lambda_context

LATER = datetime.now(UTC) + timedelta(hours=1)


class Killed(BaseException):
    """The invocation ends (timeout / out of memory)."""


@contextlib.contextmanager
def killed(service: str, operation: str, *, when: str) -> Iterator[None]:
    client = clients.client(service)
    name = f"{when}-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def die(**_: Any) -> None:
        raise Killed(f"killed {when} {operation}")

    client.meta.events.register(name, die, unique_id="o2v-kill")
    try:
        yield
    finally:
        client.meta.events.unregister(name, unique_id="o2v-kill")


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


def test_the_one_window_left_a_kill_between_put_events_and_its_confirmation_repeats_it(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented in docs/guarantees.md: nothing can tell that PutEvents was applied, so the
    reconciler puts the claimed event again (same detail): at least once, never lost."""
    parent = exhausted_parent(cloud, monkeypatch)
    event = diverged_event(parent, attempt=4)
    with killed("events", "PutEvents", when="after"), contextlib.suppress(Killed):
        retrain_launcher.handler(event, lambda_context())
    retrain_launcher.handler(event, lambda_context())
    with attributed_to(RECONCILER.function_id):
        report = reconciler(cloud).run()

    delivered = [e for e in cloud.delivered("notifications") if e["detail-type"] == RETRAINING_EXHAUSTED]
    assert [e["detail-type"] for e in delivered] == [RETRAINING_EXHAUSTED] * 2
    assert delivered[0]["detail"] == delivered[1]["detail"]
    assert report.republished == [f"exhausted/{parent}"]
