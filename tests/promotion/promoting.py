"""Steps the promoter's end-to-end tests share: promote a job, serve a first model, read the one event."""

from __future__ import annotations

from typing import Any

from control_plane.handlers.promoter import handler
from o2v_core.events import MODEL_PROMOTED

from tests.promotion.support import Aws, succeeded
from tests.support import sagemaker_fake
from tests.support.lambda_context import lambda_context


def promote(aws: Aws, job: str, best: float, **kwargs: Any) -> dict[str, object]:
    return handler(succeeded(job, artifact=aws.model_artifact(job), best=best, **kwargs), lambda_context())


def serve_first_model(aws: Aws, value: float = 0.5) -> str:
    """A served model: the first job creates the endpoint, which then becomes InService."""
    job = aws.training_job("sts", 1)
    assert promote(aws, job, value)["outcome"] == MODEL_PROMOTED
    sagemaker_fake.settle()
    aws.events()
    return job


def only_event(aws: Aws) -> dict[str, Any]:
    events = aws.events()
    assert len(events) == 1, events
    return events[0]
