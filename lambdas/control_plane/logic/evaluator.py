"""The finished-job evaluator: judge the whole curve of a job that completed, stopped or failed.

* ``Failed`` is never overfitting: it becomes ``TrainingFailed`` with a category (capacity,
  algorithm_error, client_error, internal_error, unknown), which NotifyOperators sends to SNS.
* The detector judges the whole curve (for a ``Completed`` job that Object2Vec's own early
  stopping ended, also by its ``early_stopped_after_rise`` rule): a divergence becomes
  ``ValidationLossDiverged`` (the job already finished, so ``stoppedJob`` is false), unless the job is already tagged
  ``o2v:diverged`` (the monitor reported it, or an earlier delivery of this event did).
* A healthy or undecided curve becomes ``TrainingSucceeded`` with the model artifact and the best
  and final values. So does a diverged one whose job is promotable (``Completed``: ended by its
  own early stopping or budget, its artifact holds its best epoch, reference section 10d; or a
  ``Stopped`` job tagged as holding its best epoch), with ``diverged`` true: an overfitted
  attempt is both a reason to retrain and a promotion candidate. A job with no per-epoch
  validation metric, or no model artifact, cannot be judged or promoted and becomes
  ``TrainingFailed`` (category ``no_validation_metric`` / ``no_model_artifact``).
* Once the verdict's event is put, the job is tagged ``o2v:evaluated`` (never before: a crash in
  between means a retry or the reconciler judges it again, and the duplicate is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger
from o2v_core.detector import Decision, DetectorConfig
from o2v_core.events import FINISHED_STATUSES, MalformedEvent, TrainingFailed, TrainingSucceeded
from o2v_core.metric_series import MetricSeries, decide_series
from o2v_core.naming import Lineage

from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJob, TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.jobs import (
    TAG_DIVERGED,
    TAG_EVALUATED,
    lineage_of,
    load_job,
    own_early_stopping,
    read_curve,
    report_divergence,
)
from control_plane.logic.promotion import status_veto
from control_plane.logic.sagemaker_event import TrainingJobStateChange

logger = Logger(child=True)

# FailureReason prefixes SageMaker uses, most specific first.
_FAILURE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("capacity", ("capacityerror", "insufficientcapacity", "insufficient capacity", "resourcelimitexceeded",
                  "capacity is not available")),
    ("algorithm_error", ("algorithmerror",)),
    ("client_error", ("clienterror",)),
    ("internal_error", ("internalservererror", "internal server error")),
)


def classify_failure(reason: str) -> str:
    """A failed job's category from its FailureReason; never 'overfitting'."""
    text = reason.lower()
    for category, markers in _FAILURE_CATEGORIES:
        if any(marker in text for marker in markers):
            return category
    return "unknown"


@dataclass(frozen=True)
class Evaluation:
    job: str
    # "diverged" | "diverged_candidate" (also offered for promotion) | "succeeded" | "failed" |
    # "already_reported" (diverged, reported before, not promotable)
    action: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"job": self.job, "action": self.action, "detail": self.detail}


def evaluate_finished_job(
    change: TrainingJobStateChange,
    deployment: str,
    *,
    jobs: TrainingJobs,
    logs: TrainingLogs,
    bus: EventBus,
    detector: DetectorConfig,
) -> Evaluation:
    job = load_job(jobs, change.name, field="detail.TrainingJobName")
    if job.status not in FINISHED_STATUSES:
        raise MalformedEvent(
            f"field 'detail.TrainingJobStatus' is {change.status!r}, but DescribeTrainingJob says {job.status!r}"
        )
    return judge_and_report(job, deployment, jobs=jobs, logs=logs, bus=bus, detector=detector)


def judge_and_report(
    job: TrainingJob, deployment: str, *, jobs: TrainingJobs, logs: TrainingLogs, bus: EventBus,
    detector: DetectorConfig,
) -> Evaluation:
    """Judge a finished job and put the verdict's event, then tag the job as judged.

    The one 'judge and report' step: the evaluator calls it on SageMaker's state change, the
    reconciler on a finished job that carries neither ``o2v:diverged`` nor ``o2v:evaluated``
    (the evaluator's invocation died, or its retries ended in the DLQ).
    """
    lineage = lineage_of(job, deployment)
    verdict = judge(job, deployment, logs=logs, detector=detector)
    if isinstance(verdict, Diverged):
        # Reported once (the monitor may have done it in flight); then, when the job is
        # promotable, its best epoch is offered like a healthy job's.
        reported = report_divergence(job, lineage, verdict.decision, verdict.metric, jobs=jobs, bus=bus, stop=False)
        if not reported:
            logger.info("divergence already reported", extra={"job": job.name, "tag": job.tags.get(TAG_DIVERGED)})
        why = job.tags.get(TAG_DIVERGED) or f"{verdict.decision.reason} epoch {verdict.decision.detected_at_epoch}"
        candidate = verdict.candidate
        if candidate is None or status_veto(job.status, dict(job.tags)) is not None:
            action = "diverged" if reported else "already_reported"
            jobs.add_tags(job.arn, {TAG_EVALUATED: action})
            return Evaluation(job.name, action, why)
        bus.publish(candidate)
        jobs.add_tags(job.arn, {TAG_EVALUATED: EVALUATED_DIVERGED_CANDIDATE})
        summary = f"{candidate.metricName} best {candidate.bestValue:g} at epoch {candidate.bestEpoch}"
        return Evaluation(job.name, EVALUATED_DIVERGED_CANDIDATE, f"{why}; offered for promotion: {summary}")
    bus.publish(verdict)
    if isinstance(verdict, TrainingFailed):
        evaluation = Evaluation(job.name, "failed", verdict.category)
    else:
        summary = f"{verdict.metricName} best {verdict.bestValue:g} at epoch {verdict.bestEpoch}"
        evaluation = Evaluation(job.name, "succeeded", summary)
    jobs.add_tags(job.arn, {TAG_EVALUATED: evaluation.action})  # only once its event exists
    return evaluation


@dataclass(frozen=True)
class Diverged:
    decision: Decision
    metric: str
    # The job's model as a candidate (diverged=True), None when it has no validation value or artifact.
    candidate: TrainingSucceeded | None = None


EVALUATED_DIVERGED_CANDIDATE = "diverged_candidate"
# o2v:evaluated values of jobs whose TrainingSucceeded was put (the reconciler repairs their promotion).
OFFERED_FOR_PROMOTION = ("succeeded", EVALUATED_DIVERGED_CANDIDATE)


def judge(
    job: TrainingJob, deployment: str, *, logs: TrainingLogs, detector: DetectorConfig
) -> TrainingSucceeded | TrainingFailed | Diverged:
    """What a finished job's whole curve says; reads the logs, changes nothing."""
    lineage = lineage_of(job, deployment)
    status = job.status
    if status == "Failed":
        reason = str(job.description.get("FailureReason") or "no FailureReason given")
        return TrainingFailed(deployment, job.name, reason, classify_failure(reason))
    series = read_curve(job, logs)
    # A Completed job may have been ended by its own early stopping before the detector's patience
    # could see the rise: the detector's early_stopped_after_rise rule judges that case.
    ended_itself = status == "Completed" and own_early_stopping(job).ended(series)
    decision = decide_series(series, detector, ended_by_early_stopping=ended_itself)
    if decision.diverged:
        candidate = _candidate(job, deployment, lineage, series, decision)
        return Diverged(decision, series.metric, candidate if isinstance(candidate, TrainingSucceeded) else None)
    return _candidate(job, deployment, lineage, series, decision)


def _candidate(
    job: TrainingJob, deployment: str, lineage: Lineage, series: MetricSeries, decision: Decision
) -> TrainingSucceeded | TrainingFailed:
    status = job.status
    if not series.validation or decision.best_epoch is None or decision.best_value is None:
        reason = f"the job logged no per-epoch {series.metric} lines, so it cannot be judged or promoted"
        return TrainingFailed(deployment, job.name, reason, "no_validation_metric")
    artifact = (job.description.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not artifact:
        reason = f"the job ended {status} without ModelArtifacts.S3ModelArtifacts"
        return TrainingFailed(deployment, job.name, reason, "no_model_artifact")
    return TrainingSucceeded(
        deployment=deployment,
        trainingJobName=job.name,
        lineage=lineage.lineage,
        attempt=lineage.attempt,
        metricName=series.metric,
        bestValue=decision.best_value,
        bestEpoch=decision.best_epoch,
        finalValue=series.validation[-1][1],
        modelArtifact=str(artifact),
        trainingJobStatus=status,
        diverged=decision.diverged,
    )
