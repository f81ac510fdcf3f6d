"""Fixtures: a moto server (the promoter talks to it over HTTP, as in local mode), reset per test."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from o2v_core.events import SOURCE

from tests.promotion import moto_serving
from tests.promotion.support import BUS, CONFIG, Aws


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", moto_serving.REGION)
    monkeypatch.setenv("AWS_REGION", moto_serving.REGION)
    for key, value in CONFIG.to_env().items():
        monkeypatch.setenv(key, value)
    log = moto_serving.install(monkeypatch)

    client = boto3.client("events", endpoint_url=moto_url, region_name=moto_serving.REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=moto_serving.REGION)
    client.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="promotion-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    client.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Aws(url=moto_url, log=log, queue_url=queue_url)
