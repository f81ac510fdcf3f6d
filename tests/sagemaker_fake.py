"""The tests' one SageMaker stand-in: the local SageMaker API, scripted, served over HTTP.

The same API local mode runs (:mod:`local_aws.sagemaker.api`: SageMaker's wire protocol,
the whole botocore request contract and reference section 10a, SageMaker's error codes) runs in
the test process in *scripted* mode (:mod:`local_aws.sagemaker.scripted`): it trains and
serves nothing, and jobs and endpoints move only when a test says so. The code under test reaches
it over HTTP through ``AWS_ENDPOINT_URL_SAGEMAKER`` (botocore's per-service endpoint variable, which
``control_plane.aws.clients`` keys its cache on, as local mode sets it); every other service stays
on the moto server (``AWS_ENDPOINT_URL``).

The module-level names are the test-control surface (not SageMaker operations), on the session's
one fake: :func:`set_status`, :func:`settle`, :func:`roll_back`, :data:`FAULTS` with
:data:`ThrottlingException` / :data:`ResourceLimitExceeded`, :data:`CALLS`, :class:`ServingLog`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from local_aws import procs
from local_aws.clients import Clients
from local_aws.sagemaker.api import LocalSageMaker, make_handler
from local_aws.sagemaker.scripted import RESOURCE_LIMIT_EXCEEDED, THROTTLING, Faults, ServingLog

ACCOUNT = "123456789012"  # what moto's STS answers, so the fake's ARNs are moto's account
REGION = "us-east-1"
ThrottlingException = THROTTLING
ResourceLimitExceeded = RESOURCE_LIMIT_EXCEEDED
__all__ = [
    "ACCOUNT",
    "CALLS",
    "FAULTS",
    "REGION",
    "SERVING_LOG",
    "ResourceLimitExceeded",
    "ServingLog",
    "ThrottlingException",
    "roll_back",
    "set_status",
    "settle",
]

_fake: list[LocalSageMaker] = []


def _api() -> LocalSageMaker:
    if not _fake:
        raise RuntimeError("the SageMaker fake is not running: use the sagemaker_fake fixture")
    return _fake[0]


# The session's fake records into these very objects (reset in place per test).
FAULTS = Faults()
CALLS: Counter[str] = Counter()
SERVING_LOG = ServingLog()


def reset() -> None:
    """Empty the fake: no job, tag or serving resource, no armed fault, no count, no log entry."""
    _api().control.reset()


def set_status(name: str, status: str, secondary: str | None = None, failure_reason: str | None = None) -> None:
    _api().control.set_status(name, status, secondary, failure_reason)


def settle() -> None:
    _api().control.settle()


def roll_back() -> None:
    _api().control.roll_back()


@contextlib.contextmanager
def serving(clients: Clients, state_dir: Path) -> Iterator[str]:
    """Run a scripted local SageMaker API on a free loopback port for the block; its URL.

    ``clients``: the other services it uses (moto's). The module-level control names act on it.
    """
    api = LocalSageMaker(clients, state_dir, scripted=True, emit_events=False)
    api.control.faults, api.control.calls, api.control.serving_log = FAULTS, CALLS, SERVING_LOG
    server = ThreadingHTTPServer((procs.LOOPBACK, 0), make_handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    _fake.append(api)
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        _fake.remove(api)
        server.shutdown()
        api.shutdown()
        server.server_close()


def moto_clients(moto_endpoint: str | None) -> Clients:
    """Clients of the moto services at ``moto_endpoint`` (None: boto3's default, e.g. under mock_aws)."""
    kwargs = {"endpoint_url": moto_endpoint, "region_name": REGION, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    return Clients(s3=boto3.client("s3", **kwargs), logs=boto3.client("logs", **kwargs),  # type: ignore[call-overload]
                   cloudwatch=boto3.client("cloudwatch", **kwargs),  # type: ignore[call-overload]
                   events=boto3.client("events", **kwargs), account=ACCOUNT, region=REGION)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def sagemaker_url(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's one scripted SageMaker fake (its other services: the session's moto server)."""
    with serving(moto_clients(moto_endpoint), tmp_path_factory.mktemp("sagemaker-fake")) as url:
        yield url


@pytest.fixture
def sagemaker_fake(sagemaker_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake, emptied, with every boto3 SageMaker client of the test sent to it; its URL."""
    reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", sagemaker_url)
    return sagemaker_url
