"""SageMaker's own "SageMaker Training Job State Change" event, as the evaluator receives it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from o2v_core.events import FINISHED_STATUSES, SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, MalformedEvent
from o2v_core.naming import job_prefix


@dataclass(frozen=True)
class TrainingJobStateChange:
    name: str
    status: str


def parse_training_job_state_change(event: Mapping[str, Any], deployment: str) -> TrainingJobStateChange:
    """Check source, detail-type, the job name (this deployment's prefix) and a finished status."""
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    if event.get("source") != SAGEMAKER_SOURCE:
        raise MalformedEvent(f"field 'source' is {event.get('source')!r}; expected {SAGEMAKER_SOURCE!r}")
    if event.get("detail-type") != TRAINING_JOB_STATE_CHANGE:
        raise MalformedEvent(
            f"field 'detail-type' is {event.get('detail-type')!r}; expected {TRAINING_JOB_STATE_CHANGE!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEvent("field 'detail' is missing or not an object")
    name = detail.get("TrainingJobName")
    if not isinstance(name, str) or not name:
        raise MalformedEvent(f"field 'detail.TrainingJobName' must be a non-empty string, got {name!r}")
    prefix = job_prefix(deployment)
    if not name.startswith(prefix):
        raise MalformedEvent(
            f"field 'detail.TrainingJobName' is {name!r}: another deployment's job (this deployment's jobs "
            f"start with {prefix!r})"
        )
    status = detail.get("TrainingJobStatus")
    if status not in FINISHED_STATUSES:
        raise MalformedEvent(
            f"field 'detail.TrainingJobStatus' is {status!r}; expected one of {', '.join(FINISHED_STATUSES)}"
        )
    return TrainingJobStateChange(name, str(status))
