"""The tests' one SageMaker stand-in: the local SageMaker API, scripted, served over HTTP.

The same API local mode runs (:mod:`local_aws.sagemaker.api`: SageMaker's wire protocol, the whole
botocore request contract and reference section 10a, SageMaker's error codes) runs in the test
process in *scripted* mode (:class:`local_aws.sagemaker.scripted.ScriptedSageMaker`, which wraps the
API): it trains and serves nothing, and jobs and endpoints move only when a test says so. The code
under test reaches it over HTTP through ``AWS_ENDPOINT_URL_SAGEMAKER`` (botocore's per-service
endpoint variable, which ``control_plane.aws.clients`` keys its cache on, as local mode sets it);
every other service stays on the moto server (``AWS_ENDPOINT_URL``).

The module-level names are the test-control surface (not SageMaker operations), on the session's
one fake: :func:`set_status`, :func:`set_transform_status`, :func:`settle`, :func:`roll_back`, :data:`FAULTS` with
:data:`ThrottlingException` / :data:`ResourceLimitExceeded`, :data:`CALLS`, :class:`ServingLog`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.clients import Clients
from local_aws.sagemaker import scripted
from local_aws.sagemaker.scripted import (
    ACCOUNT,
    REGION,
    RESOURCE_LIMIT_EXCEEDED,
    THROTTLING,
    Faults,
    ScriptedSageMaker,
    ServingLog,
    moto_clients,
)

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
    "moto_clients",
    "roll_back",
    "set_status",
    "set_transform_status",
    "settle",
]

_fake: list[ScriptedSageMaker] = []


def _api() -> ScriptedSageMaker:
    if not _fake:
        raise RuntimeError("the SageMaker fake is not running: use the sagemaker_fake fixture")
    return _fake[0]


# The session's fake records into these very objects (reset in place per test).
FAULTS = Faults()
CALLS: Counter[str] = Counter()
SERVING_LOG = ServingLog()


def reset() -> None:
    """Empty the fake: no job, tag or serving resource, no armed fault, no count, no log entry."""
    _api().reset()


def set_status(name: str, status: str, secondary: str | None = None, failure_reason: str | None = None) -> None:
    _api().set_status(name, status, secondary, failure_reason)


def set_transform_status(name: str, status: str, failure_reason: str | None = None) -> None:
    _api().set_transform_status(name, status, failure_reason)


def settle() -> None:
    _api().settle()


def roll_back() -> None:
    _api().roll_back()


@contextlib.contextmanager
def serving(clients: Clients, state_dir: Path) -> Iterator[str]:
    """Run a scripted local SageMaker API on a free loopback port for the block; its URL.

    ``clients``: the other services it uses (moto's). The module-level control names act on it.
    """
    fake = ScriptedSageMaker(clients, state_dir, faults=FAULTS, calls=CALLS, serving_log=SERVING_LOG)
    with scripted.serving(fake) as url:
        _fake.append(fake)
        try:
            yield url
        finally:
            _fake.remove(fake)


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
