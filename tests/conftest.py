"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.moto_server import moto_server
from tests.support import aws_calls, moto_s3_conditional
from tests.support.sagemaker_fake import sagemaker_fake, sagemaker_url  # noqa: F401  (fixtures for every package)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real public data sits beside the repo (see ../shared/data/README.md); it is never copied in.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "stsbenchmark" / "sts-train.csv").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; the suite needs ../shared/data beside the repo")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def record_aws_calls() -> Iterator[None]:
    """Record every AWS call each Lambda handler makes (tests/support/aws_calls.py) for the IAM check."""
    yield from aws_calls.installed()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The IAM check reads the calls every other test recorded, so it runs last."""
    items.sort(key=lambda item: item.get_closest_marker("iam_calls") is not None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server in server mode (HTTP) for the session, with S3's atomic conditional writes
    (tests/support/moto_s3_conditional.py)."""
    server = moto_server()  # local mode's own, without Nagle's delay on each reply
    server.start()
    host, port = server.get_host_and_port()
    try:
        with moto_s3_conditional.installed():
            yield f"http://{host}:{port}"
    finally:
        server.stop()
