"""What the monitor, the evaluator and the launcher share: a job's curve, its lineage, and the
at-most-once report of a divergence.

At least one ``ValidationLossDiverged`` per diverged job, and usually exactly one: whoever sees
the divergence first (the in-flight monitor, or the finished-job evaluator for a job that ended
between two checks) puts the event and *then* tags the job ``o2v:diverged``; nobody reports a job
that already carries the tag. Nothing is marked reported before the report exists, so a crash
between the two only causes a duplicate, which the launcher absorbs (deterministic child name).
The monitor tags before it stops the job, so the ``Stopped`` state change that the stop causes
finds the tag (docs/guarantees.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from o2v_core.detector import Decision
from o2v_core.early_stopping import ended_by_own_early_stopping
from o2v_core.events import MalformedEvent, ValidationLossDiverged
from o2v_core.hyperparameters import DEFAULT_OUTPUT_LAYER, SCHEMA, validate_partial
from o2v_core.metric_series import MetricSeries, loss_metric_for, series_from_lines
from o2v_core.naming import TAG_DEPLOYMENT, Lineage, NamingError

from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJob, TrainingJobs
from control_plane.aws.training_logs import TrainingLogs

logger = Logger(child=True)

TAG_DIVERGED = "o2v:diverged"  # set once a ValidationLossDiverged event has been put for the job
TAG_RETRAINING_EXHAUSTED = "o2v:retraining-exhausted"  # set once RetrainingExhausted is put for the job
TAG_EVALUATED = "o2v:evaluated"  # set once the evaluator's TrainingSucceeded/TrainingFailed is put
TAG_PROMOTION = "o2v:promotion"  # "decided" / "deferred", set once the promoter's decision is put
TAG_ROLLED_BACK = "o2v:rolled-back"  # set once the reconciler reported the endpoint rolled the model back
# The lineage's best so far, which the retrain policy compares a relaunch with (docs/detector.md):
TAG_BEST_VALUE = "o2v:best-value"  # set with o2v:diverged: the diverged job's best validation value
TAG_LINEAGE_BEST_VALUE = "o2v:lineage-best-value"  # set by the launcher on attempt n+1: best of attempts 1..n
TAG_LINEAGE_BEST_JOB = "o2v:lineage-best-job"  # ... and the job that reached it


def own_early_stopping(job: TrainingJob) -> OwnEarlyStopping:
    """The job's own early-stopping settings and epoch budget (the schema's defaults where not set)."""
    given = validate_partial({key: value for key, value in job.hyperparameters.items()
                              if key in _EARLY_STOPPING_KEYS},
                             where=f"training job {job.name} HyperParameters")
    patience, tolerance, epochs = (given.get(key, SCHEMA[key].default) for key in _EARLY_STOPPING_KEYS)
    assert isinstance(patience, int) and isinstance(tolerance, float) and isinstance(epochs, int)
    return OwnEarlyStopping(patience, tolerance, epochs)


_EARLY_STOPPING_KEYS = ("early_stopping_patience", "early_stopping_tolerance", "epochs")


@dataclass(frozen=True)
class OwnEarlyStopping:
    """A job's Object2Vec early stopping (reference section 10c) and its epoch budget."""

    patience: int
    tolerance: float
    epochs: int

    def ended(self, series: MetricSeries) -> bool:
        """Did this rule end a finished job with this curve (rather than its budget)?"""
        return ended_by_own_early_stopping([value for _, value in series.validation], self.patience,
                                           self.tolerance, self.epochs)


def load_job(jobs: TrainingJobs, name: str, *, field: str) -> TrainingJob:
    """Describe a job and read its tags; a missing job is a malformed event (``field`` names it)."""
    description = jobs.describe(name)
    if description is None:
        raise MalformedEvent(f"field {field!r}: no training job named {name!r}")
    arn = str(description["TrainingJobArn"])
    return TrainingJob(name, arn, description, jobs.tags(arn))


def lineage_of(job: TrainingJob, deployment: str) -> Lineage:
    """The job's lineage tags, checked to belong to this deployment."""
    try:
        lineage = Lineage.from_tags(job.tags)
    except NamingError as error:
        raise MalformedEvent(f"training job {job.name!r}: {error}") from None
    if lineage.deployment != deployment:
        raise MalformedEvent(
            f"training job {job.name!r} belongs to deployment {lineage.deployment!r} (tag {TAG_DEPLOYMENT!r}), "
            f"not {deployment!r}"
        )
    return lineage


def read_curve(job: TrainingJob, logs: TrainingLogs) -> MetricSeries:
    """The job's per-epoch validation loss (and train loss) from its CloudWatch Logs stream."""
    return curve_of(job, logs.metric_lines(job.name), source=f"CloudWatch Logs of {job.name}")


def curve_of(job: TrainingJob, lines: Sequence[str], *, source: str) -> MetricSeries:
    """The job's curve from its ``#quality_metric`` lines in log order (from the logs or the curve store)."""
    output_layer = job.hyperparameters.get("output_layer", DEFAULT_OUTPUT_LAYER)
    metric = loss_metric_for(output_layer)
    # the number counts metric lines only
    series = series_from_lines(lines, metric=metric, source=f"{source}, #quality_metric line")
    if series.skipped:  # one garbled line must not make the job unjudgeable: skip it, say so
        logger.warning(series.skipped_note(), extra={"job": job.name, "skipped_lines": list(series.skipped)})
    return series


def report_divergence(
    job: TrainingJob, lineage: Lineage, decision: Decision, metric: str, *, jobs: TrainingJobs, bus: EventBus,
    stop: bool,
    epochs_saved: int = 0,
) -> bool:
    """Put ``ValidationLossDiverged``, then tag, then stop the job when ``stop``. False when already reported.

    The event goes first: the tag says "reported", so it is only set once the report exists. An
    invocation that dies in between leaves an untagged job, which the next monitor tick, the
    evaluator's retry or the reconciler reports again; the duplicate is harmless, because the
    launcher's child job name is deterministic.
    """
    if TAG_DIVERGED in job.tags:
        return False
    event = ValidationLossDiverged(
        deployment=lineage.deployment,
        trainingJobName=job.name,
        lineage=lineage.lineage,
        attempt=lineage.attempt,
        metricName=metric,
        stoppedJob=stop,
        decision=decision.to_detail(),
        epochsSaved=epochs_saved if stop else 0,
    )
    event_id = bus.publish(event)
    tags = {TAG_DIVERGED: f"{decision.reason} epoch {decision.detected_at_epoch}"}
    best = event.decision.best_value  # None when non-finite
    if best is not None:
        tags[TAG_BEST_VALUE] = repr(best)  # the reconciler's continue_lineage reads it (no event there)
    jobs.add_tags(job.arn, tags)
    logger.info(
        "validation loss diverged",
        extra={"job": job.name, "reason": decision.reason, "epoch": decision.detected_at_epoch, "eventId": event_id,
               "explanation": decision.explanation},
    )
    if stop:
        jobs.stop(job.name)
    return True
