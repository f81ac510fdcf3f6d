"""Fixtures: the SageMaker fake and the session's moto server (the promoter talks to both over HTTP,
as in local mode), reset per test."""

from __future__ import annotations

import json
import os

import pytest
import requests
from o2v_core.events import ANNOUNCEMENT_WITNESS, SOURCE

from local_aws.deployment import create_buckets, wire_control_plane
from tests.promotion.support import BUS, CONFIG, DEPLOYMENT, Aws, client_of
from tests.support import sagemaker_fake as fake


@pytest.fixture
def aws(moto_endpoint: str, sagemaker_fake: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    moto_url = moto_endpoint
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", sagemaker_fake)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", fake.REGION)
    monkeypatch.setenv("AWS_REGION", fake.REGION)
    for key, value in CONFIG.to_env().items():
        monkeypatch.setenv(key, value)
    return fresh_account(moto_url, sagemaker_fake)


def fresh_account(moto_url: str, sagemaker_url: str) -> Aws:
    """An empty account again: the SageMaker fake reset; on moto, the artifact bucket, the curve store,
    the bus and the witness rule as local mode's deployment makes them (local_aws.deployment: the
    promoter's own rule is not wired, the tests invoke it), and the tests' capture rule."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    fake.reset()
    client, sqs = client_of("events", moto_url), client_of("sqs", moto_url)
    create_buckets(client_of("s3", moto_url), [CONFIG.artifact_bucket])  # the announcement ledger's too
    (witness,) = wire_control_plane(client, sqs, client_of("dynamodb", moto_url), DEPLOYMENT, BUS,
                                    targets={ANNOUNCEMENT_WITNESS})
    assert witness.queue_url.endswith(CONFIG.announcement_witness_queue_url.rsplit("/", 1)[1]), witness.queue_url
    queue_url = sqs.create_queue(QueueName="promotion-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    client.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Aws(url=moto_url, sagemaker_url=sagemaker_url, log=fake.SERVING_LOG, queue_url=queue_url)
