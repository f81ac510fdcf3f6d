"""Event names, detail schemas, patterns and the rule table, defined once.

The CDK training stack creates one EventBridge rule per :class:`RuleSpec` returned by
:func:`rules`; local mode's event pump routes with the very same specs; the handlers build and
parse details with the dataclasses below. ``docs/events.md`` shows an example of each event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar

from o2v_core.naming import job_prefix

SOURCE = "object2vec.retraining"

SAGEMAKER_SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
# SageMaker's event for a batch transform job's status change (SageMaker developer guide,
# automating-sagemaker-with-eventbridge.html, "SageMaker transform job state change"; detail
# ``TransformJobName``, ``TransformJobStatus``, ``FailureReason`` when it failed, ...).
TRANSFORM_JOB_STATE_CHANGE = "SageMaker Transform Job State Change"
# Bulk-embedding transform jobs are named {job_prefix}{TRANSFORM_JOB_INFIX}<time> (o2v_core.bulk_transform).
TRANSFORM_JOB_INFIX = "embed-"
FINISHED_STATUSES = ("Completed", "Stopped", "Failed")

VALIDATION_LOSS_DIVERGED = "ValidationLossDiverged"
TRAINING_SUCCEEDED = "TrainingSucceeded"
TRAINING_FAILED = "TrainingFailed"
RETRAINING_EXHAUSTED = "RetrainingExhausted"
MODEL_PROMOTED = "ModelPromoted"
PROMOTION_SKIPPED = "PromotionSkipped"
MODEL_ROLLED_BACK = "ModelRolledBack"
DETAIL_TYPES = (
    VALIDATION_LOSS_DIVERGED,
    TRAINING_SUCCEEDED,
    TRAINING_FAILED,
    RETRAINING_EXHAUSTED,
    MODEL_PROMOTED,
    PROMOTION_SKIPPED,
    MODEL_ROLLED_BACK,
)


class MalformedEvent(ValueError):
    """An event cannot be handled; the message names the field and what was wrong.

    Handlers let it propagate so that the event ends in a dead-letter queue, never dropped.
    """


# ---------------------------------------------------------------------------------------------
# Detail schemas


@dataclass(frozen=True)
class DivergenceDecisionDetail:
    diverged: bool
    reason: str
    best_epoch: int | None
    best_value: float | None
    detected_at_epoch: int | None
    last_value: float | None


@dataclass(frozen=True)
class ValidationLossDiverged:
    """A training job's validation loss diverged; the retrain launcher starts the next attempt."""

    deployment: str
    trainingJobName: str
    lineage: str
    attempt: int
    metricName: str
    stoppedJob: bool
    decision: DivergenceDecisionDetail
    detail_type: str = field(default=VALIDATION_LOSS_DIVERGED, init=False, repr=False)
    # Epochs the stop saved, at least: the fewest the job would still have paid before its own
    # early stopping or its budget ended it (o2v_core.early_stopping.choose_stop); 0 when it was
    # left to finish. Optional in the detail (events put before the field existed lack it).
    epochsSaved: int = 0


@dataclass(frozen=True)
class TrainingSucceeded:
    """A finished job's model is a promotion candidate; the promoter considers it.

    Healthy jobs, and also jobs that overfitted (``diverged``): a job its own early stopping
    ended keeps its best epoch (reference section 10d), which may be its lineage's best model.
    """

    deployment: str
    trainingJobName: str
    lineage: str
    attempt: int
    metricName: str
    bestValue: float
    bestEpoch: int
    finalValue: float
    modelArtifact: str
    trainingJobStatus: str
    detail_type: str = field(default=TRAINING_SUCCEEDED, init=False, repr=False)
    # The detector judged the curve diverged (ValidationLossDiverged was put for it too).
    # Optional in the detail (events put before the field existed lack it).
    diverged: bool = False


@dataclass(frozen=True)
class TrainingFailed:
    """A job failed for a reason that is not overfitting (algorithm, client or capacity error)."""

    deployment: str
    trainingJobName: str
    failureReason: str
    category: str
    detail_type: str = field(default=TRAINING_FAILED, init=False, repr=False)


@dataclass(frozen=True)
class RetrainingExhausted:
    """The retrain policy ends the lineage; no further job is started.

    ``stoppedBecause`` (``o2v_core.retrain_policy.STOPPED_BECAUSE``): ``max_attempts``,
    ``no_regularization_left`` or ``no_improvement`` (a relaunch did not beat the lineage's best);
    ``bestTrainingJobName``/``bestValue``: the lineage's best attempt the launcher knows of (null
    when it knows none). Events put before these fields existed lack them.
    """

    deployment: str
    lineage: str
    lastTrainingJobName: str
    attempts: int
    reason: str
    stoppedBecause: str = "max_attempts"
    bestTrainingJobName: str | None = None
    bestValue: float | None = None
    detail_type: str = field(default=RETRAINING_EXHAUSTED, init=False, repr=False)


@dataclass(frozen=True)
class ModelPromoted:
    deployment: str
    trainingJobName: str
    endpointName: str
    modelName: str
    candidateValue: float
    previousValue: float | None
    metricName: str
    detail_type: str = field(default=MODEL_PROMOTED, init=False, repr=False)


@dataclass(frozen=True)
class PromotionSkipped:
    deployment: str
    trainingJobName: str
    endpointName: str
    candidateValue: float | None
    servingValue: float | None
    metricName: str
    reason: str
    detail_type: str = field(default=PROMOTION_SKIPPED, init=False, repr=False)


@dataclass(frozen=True)
class ModelRolledBack:
    """The endpoint serves an older model than the record named: its blue/green deployment of
    ``rejectedTrainingJobName`` was rolled back (alarm) or failed. Put by the reconciler."""

    deployment: str
    endpointName: str
    rejectedTrainingJobName: str
    servingEndpointConfigName: str
    servingTrainingJobName: str | None  # None: the serving stack's own config (no promoted model)
    reason: str
    detail_type: str = field(default=MODEL_ROLLED_BACK, init=False, repr=False)


Detail = (
    ValidationLossDiverged
    | TrainingSucceeded
    | TrainingFailed
    | RetrainingExhausted
    | ModelPromoted
    | PromotionSkipped
    | ModelRolledBack
)
_DETAIL_CLASSES: dict[str, type[Any]] = {
    VALIDATION_LOSS_DIVERGED: ValidationLossDiverged,
    TRAINING_SUCCEEDED: TrainingSucceeded,
    TRAINING_FAILED: TrainingFailed,
    RETRAINING_EXHAUSTED: RetrainingExhausted,
    MODEL_PROMOTED: ModelPromoted,
    PROMOTION_SKIPPED: PromotionSkipped,
    MODEL_ROLLED_BACK: ModelRolledBack,
}
T = TypeVar("T")


def to_detail(detail: Detail) -> dict[str, Any]:
    """The JSON-ready ``detail`` of an event (the detail type travels in ``DetailType``)."""
    data = asdict(detail)
    data.pop("detail_type", None)
    return data


def put_events_entry(detail: Detail, bus_name: str) -> dict[str, str]:
    """One ``PutEvents`` entry for the project bus."""
    import json

    return {
        "Source": SOURCE,
        "DetailType": detail.detail_type,
        "Detail": json.dumps(to_detail(detail)),
        "EventBusName": bus_name,
    }


def parse_event(event: Mapping[str, Any], expected: type[T]) -> T:
    """Parse an EventBridge event whose detail must be of type ``expected``.

    Raises :class:`MalformedEvent` naming the wrong source, detail type or field.
    """
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    detail_type = event.get("detail-type")
    wanted = next((name for name, cls in _DETAIL_CLASSES.items() if cls is expected), None)
    if event.get("source") != SOURCE:
        raise MalformedEvent(f"field 'source' is {event.get('source')!r}; expected {SOURCE!r}")
    if detail_type != wanted:
        raise MalformedEvent(f"field 'detail-type' is {detail_type!r}; expected {wanted!r}")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEvent("field 'detail' is missing or not an object")
    return _build(expected, detail, "detail")


def _build(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    kwargs: dict[str, Any] = {}
    hints = _field_types(cls)
    for item in fields(cls):  # type: ignore[arg-type]
        if not item.init:
            continue
        where = f"{path}.{item.name}"
        if item.name not in data:
            if item.default is not MISSING:  # a field added later: older events lack it
                continue
            raise MalformedEvent(f"field {where!r} is missing")
        kwargs[item.name] = _check(hints[item.name], data[item.name], where)
    return cls(**kwargs)


def _field_types(cls: type[Any]) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def _check(kind: Any, value: Any, where: str) -> Any:
    import types
    import typing

    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(option, value, where)
            except MalformedEvent:
                continue
        raise MalformedEvent(f"field {where!r} has the wrong type: {value!r}")
    if kind is bool:
        if not isinstance(value, bool):
            raise MalformedEvent(f"field {where!r} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedEvent(f"field {where!r} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MalformedEvent(f"field {where!r} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str) or not value:
            raise MalformedEvent(f"field {where!r} must be a non-empty string, got {value!r}")
        return value
    if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__"):
        if not isinstance(value, Mapping):
            raise MalformedEvent(f"field {where!r} must be an object, got {value!r}")
        return _build(kind, value, where)
    raise TypeError(f"unsupported field type {kind!r}")  # programming error, not bad input


# ---------------------------------------------------------------------------------------------
# Patterns and the rule table


def training_job_finished_pattern(deployment: str) -> dict[str, Any]:
    """SageMaker's own state-change events for this deployment's finished jobs (default bus)."""
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [TRAINING_JOB_STATE_CHANGE],
        "detail": {
            "TrainingJobName": [{"prefix": job_prefix(deployment)}],
            "TrainingJobStatus": list(FINISHED_STATUSES),
        },
    }


def transform_job_finished_pattern(deployment: str) -> dict[str, Any]:
    """SageMaker's state-change events for this deployment's bulk-embedding transform jobs that ended
    (default bus). Completed, Failed and Stopped are TransformJobStatus's final values (botocore's
    service model); the name prefix is o2v_core.bulk_transform's (``{deployment}--embed-``)."""
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [TRANSFORM_JOB_STATE_CHANGE],
        "detail": {
            "TransformJobName": [{"prefix": f"{job_prefix(deployment)}{TRANSFORM_JOB_INFIX}"}],
            "TransformJobStatus": list(FINISHED_STATUSES),
        },
    }


def project_event_pattern(deployment: str, *detail_types: str) -> dict[str, Any]:
    """This deployment's own events of the given detail types (project bus)."""
    return {
        "source": [SOURCE],
        "detail-type": list(detail_types),
        "detail": {"deployment": [deployment]},
    }


BusKind = Literal["default", "project"]
TargetKind = Literal["finished_job_evaluator", "retrain_launcher", "promoter", "notifications", "announcement_witness"]
# Operator announcements that go out once (control_plane.logic.announce), and the queue that keeps a
# copy of each one put, so the reconciler can tell a claim whose event was put from one whose
# claimant died before PutEvents (docs/guarantees.md).
ANNOUNCED = (RETRAINING_EXHAUSTED, MODEL_PROMOTED, MODEL_ROLLED_BACK)
ANNOUNCEMENT_WITNESS: Literal["announcement_witness"] = "announcement_witness"


@dataclass(frozen=True)
class RuleSpec:
    """One EventBridge rule: which bus it listens on, what it matches, where it sends."""

    rule_id: str
    description: str
    bus: BusKind
    pattern: dict[str, Any]
    target: TargetKind


def rules(deployment: str) -> list[RuleSpec]:
    """Every rule of the control plane, for the stacks and for local mode alike."""
    return [
        RuleSpec(
            "FinishedTrainingJob",
            "Evaluate the whole validation curve of this deployment's finished training jobs",
            "default",
            training_job_finished_pattern(deployment),
            "finished_job_evaluator",
        ),
        RuleSpec(
            "RetrainOnDivergence",
            "Launch the next attempt with more dropout when validation loss diverged",
            "project",
            project_event_pattern(deployment, VALIDATION_LOSS_DIVERGED),
            "retrain_launcher",
        ),
        RuleSpec(
            "PromoteOnSuccess",
            "Consider a healthy finished job for promotion to the embedding endpoint",
            "project",
            project_event_pattern(deployment, TRAINING_SUCCEEDED),
            "promoter",
        ),
        RuleSpec(
            "NotifyOperators",
            "Tell operators about failures, exhausted retraining, promotions and rollbacks",
            "project",
            project_event_pattern(deployment, TRAINING_FAILED, RETRAINING_EXHAUSTED, MODEL_PROMOTED, MODEL_ROLLED_BACK),
            "notifications",
        ),
        RuleSpec(
            "AnnounceTransformJobEnd",
            "Tell operators that a bulk-embedding transform job completed, failed or was stopped",
            "default",
            transform_job_finished_pattern(deployment),
            "notifications",
        ),
        RuleSpec(
            "WitnessAnnouncements",
            "Keep a copy of each announcement put, so the reconciler never puts one twice",
            "project",
            project_event_pattern(deployment, *ANNOUNCED),
            ANNOUNCEMENT_WITNESS,
        ),
    ]
