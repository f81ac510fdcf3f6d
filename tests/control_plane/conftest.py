"""Fixtures for the control-plane tests: the session's SageMaker fake and moto server (tests/conftest.py),
reset per test."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import moto_ext
from tests.support import sagemaker_fake as fake
from tests.support.cloud import Cloud

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise



@pytest.fixture
def cloud(moto_endpoint: str, sagemaker_fake: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """Every boto3 client created in the test (ours included) talks to the SageMaker fake
    (tests/support/sagemaker_fake.py, emptied) for SageMaker and to the moto server for the rest."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", fake.REGION)
    monkeypatch.setenv("AWS_REGION", fake.REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "o2v-control-plane-test")
    moto_ext.install()
    try:
        cloud = Cloud(moto_endpoint)
        cloud.reset()
        cloud.wire_rules()
        yield cloud
    finally:
        moto_ext.uninstall()


@pytest.fixture
def log_records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the handlers' Powertools logger writes (what CloudWatch Logs would show)."""
    from control_plane.handlers import retrain_launcher

    stream = io.StringIO()
    handlers = [
        handler for handler in logging.getLogger(retrain_launcher.logger.name).handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    assert handlers, "the Powertools logger has no stream handler"
    previous = [handler.setStream(stream) for handler in handlers]

    def read() -> list[dict[str, Any]]:
        lines = stream.getvalue().splitlines()
        stream.seek(0)
        stream.truncate()
        return [json.loads(line) for line in lines if line.startswith("{")]

    try:
        yield read
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)


@pytest.fixture
def aws_calls(cloud: Cloud) -> Iterator[Counter[str]]:
    """Every AWS call our handlers make, by API (a botocore event hook on the shared clients)."""
    from control_plane.aws import clients

    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    made = [clients.sagemaker(), clients.logs(), clients.events(), clients.dynamodb()]
    for client in made:
        client.meta.events.register("before-call", count)
    yield counts
    for client in made:
        client.meta.events.unregister("before-call", count)
