"""The in-flight monitor: every minute, judge each running job's validation curve so far.

For each in-progress job of this deployment (name prefix, confirmed by the ``o2v:deployment``
tag) it reads the ``#quality_metric`` lines from CloudWatch Logs and runs the detector. On a
divergence it reports the job once (see :mod:`control_plane.logic.jobs`) and stops it when
``stop_on_divergence``: every epoch past divergence is wasted GPU time. A job already tagged as
diverged that is still running (its stop failed, or stopping is off) is only stopped again, never
reported twice. One job's trouble (a corrupt log line, a throttled call) does not keep the others
from being checked; the run raises at the end so the failure shows in the function's errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from aws_lambda_powertools import Logger
from o2v_core.detector import DetectorConfig
from o2v_core.metric_series import decide_series
from o2v_core.naming import TAG_DEPLOYMENT, job_prefix

from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.jobs import TAG_DIVERGED, Job, lineage_of, read_curve, report_divergence

logger = Logger(child=True)


class MonitorError(RuntimeError):
    """One or more jobs could not be checked; the message lists them."""


@dataclass
class MonitorReport:
    checked: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    stopped_again: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return asdict(self)


def run_monitor(
    deployment: str,
    *,
    jobs: TrainingJobs,
    logs: TrainingLogs,
    bus: EventBus,
    detector: DetectorConfig,
    stop_on_divergence: bool,
) -> MonitorReport:
    report = MonitorReport()
    first_error: Exception | None = None
    for summary in jobs.in_progress(job_prefix(deployment)):
        try:
            _check(summary.name, summary.arn, deployment, jobs, logs, bus, detector, stop_on_divergence, report)
        except Exception as error:  # keep checking the other jobs; raised below
            logger.exception("could not check training job", extra={"job": summary.name})
            report.errors.append(f"{summary.name}: {error}")
            first_error = first_error or error
    logger.info("monitor run finished", extra=report.as_dict())
    if first_error is not None:
        raise MonitorError("; ".join(report.errors)) from first_error
    return report


def _check(
    name: str,
    arn: str,
    deployment: str,
    jobs: TrainingJobs,
    logs: TrainingLogs,
    bus: EventBus,
    detector: DetectorConfig,
    stop: bool,
    report: MonitorReport,
) -> None:
    tags = jobs.tags(arn)
    if tags.get(TAG_DEPLOYMENT) != deployment:
        report.skipped.append(name)  # the prefix matched, but the job is not ours
        return
    if TAG_DIVERGED in tags:
        if stop and jobs.stop(name):
            report.stopped_again.append(name)
        return
    description = jobs.describe(name)
    if description is None:
        return  # deleted between List and Describe
    job = Job(name, arn, description, tags)
    report.checked.append(name)
    series = read_curve(job, logs)
    decision = decide_series(series, detector)
    if not decision.diverged:
        return
    if report_divergence(job, lineage_of(job, deployment), decision, series.metric, jobs=jobs, bus=bus, stop=stop):
        report.diverged.append(name)
