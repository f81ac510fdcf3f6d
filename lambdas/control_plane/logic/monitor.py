"""Judging running jobs' validation curves: one job at a time (:func:`judge_job`), two callers.

:func:`judge_job` is the one seam: the metric-line judge (:mod:`control_plane.logic.metric_line_judge`)
calls it for the job whose ``#quality_metric`` line CloudWatch Logs just delivered, and the scheduled
monitor (:func:`run_monitor`, the slow safety net) calls it for each in-progress job of this
deployment (name prefix, confirmed by the ``o2v:deployment`` tag).

A job is judged from its ``#quality_metric`` lines in CloudWatch Logs. On a divergence it is reported
once (see :mod:`control_plane.logic.jobs`): the retrain launcher starts the next attempt at once.
Whether the diverged job is also stopped is :func:`o2v_core.early_stopping.choose_stop`'s choice:
only when ``stop_on_divergence`` and more than ``finish_within_epochs`` epochs would otherwise be
paid before the job's own early stopping (or its epoch budget) ends it. A job left to finish ends
Completed with its best epoch in its artifact (reference section 10d), a promotion candidate; a
stopped Object2Vec job may keep none (unconfirmed, 10d). A job already tagged as diverged that is
still running (left to finish, or its stop failed) is judged again and stopped once that choice
says so, never reported twice. Each choice is logged (:data:`STOP_CHOICE_LOG_MESSAGE`, with
``epochsSaved``).

The monitor is the safety net behind the metric-line judge, and it spends the account's
CloudWatch Logs quota sparingly:

* it first reads this deployment's curve store (BatchGetItem, 100 jobs a call) and leaves out
  every job *covered* by the judge: heard from within :data:`COVERED_WITHIN_S` and with no
  missing epoch in its stored curve (a gap means a delivery was lost). Those cost no Logs call;
* it sweeps the others from the logs, least recently seen first (never-seen jobs first, then by
  the later of the last delivery and the last sweep, which it records), so a list longer than one
  run can judge is covered over consecutive runs and no job is always last;
* its Logs calls are paced (:class:`control_plane.aws.training_logs.Pacer`, at
  ``o2v_core.aws_quotas.SAFETY_NET_LOGS_SHARE`` of each API's quota) instead of bursting;
* the run is bounded: it takes new jobs for :data:`RUN_SHARE` of the invocation's time (leaving
  at least :data:`RESERVE_MS`), listing the rest as ``deferred`` for the next run.

One job's trouble (a corrupt log line, a throttled call) does not keep the others from being
checked; the run raises at the end so the failure shows in the function's errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Literal

from aws_lambda_powertools import Logger
from o2v_core.curve_store import JobRecord
from o2v_core.detector import DetectorConfig
from o2v_core.early_stopping import STOP_CHOICE_LOG_MESSAGE, StopChoice, choose_stop
from o2v_core.metric_lines import MetricLine, parse_line
from o2v_core.metric_series import MetricSeries, decide_series
from o2v_core.naming import TAG_DEPLOYMENT, job_prefix

from control_plane.aws.curve_store import CurveStore
from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import IN_PROGRESS, JobSummary, TrainingJob, TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.jobs import TAG_DIVERGED, lineage_of, own_early_stopping, read_curve, report_divergence

logger = Logger(child=True)

# Stop taking new jobs when less than this much of the invocation is left: one job's calls
# (ListTags, DescribeTrainingJob, DescribeLogStreams, FilterLogEvents, and on a divergence
# AddTags, PutEvents, StopTrainingJob) fit with room for throttling backoff.
RESERVE_MS = 20_000
RUN_SHARE = 0.4  # of the invocation's time a run may spend taking new jobs: no run near its timeout
# A job heard from this recently, with no gap in its stored curve, is the judge's: not swept. One
# schedule interval (rate(10 minutes)): a job whose lines stop arriving is swept in the next run.
COVERED_WITHIN_S = 600.0

Verdict = Literal["checked", "diverged", "stopped_again", "already_reported", "skipped", "gone", "not_running"]


class MonitorError(RuntimeError):
    """One or more jobs could not be checked; the message lists them."""


@dataclass
class MonitorReport:
    checked: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    stopped_again: list[str] = field(default_factory=list)
    # Stop-or-finish choices: "<job>: <why>" for diverged jobs left to finish, "<job>: <epochs>"
    # (saved, at least) for those stopped.
    left_to_finish: list[str] = field(default_factory=list)
    epochs_saved: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # left for the next run: time ran short
    covered: list[str] = field(default_factory=list)  # judged on their own lines (curve store): not swept

    def as_dict(self) -> dict[str, list[str]]:
        return asdict(self)

    def add(self, name: str, verdict: Verdict) -> None:
        if verdict in ("checked", "diverged"):
            self.checked.append(name)
        if verdict in ("diverged", "stopped_again", "skipped"):
            getattr(self, verdict).append(name)

    def note(self, name: str, choice: StopChoice) -> None:
        (self.epochs_saved if choice.stop else self.left_to_finish).append(f"{name}: {choice.summary}")


@dataclass(frozen=True)
class Judge:
    """What judging needs: this deployment's data access and settings."""

    deployment: str
    jobs: TrainingJobs
    logs: TrainingLogs
    bus: EventBus
    store: CurveStore
    detector: DetectorConfig
    stop_on_divergence: bool
    # A diverged job whose own early stopping or budget ends it within this many more epochs is
    # left to finish (settings' finish_diverged_within_epochs).
    finish_within_epochs: int

    @property
    def finish_within(self) -> int | None:
        return self.finish_within_epochs if self.stop_on_divergence else None


def judge_job(
    judge: Judge, name: str, arn: str | None = None, *, series: MetricSeries | None = None,
    on_choice: Callable[[str, StopChoice], None] | None = None,
) -> Verdict:
    """Judge one job's curve so far; report it on a divergence, and stop it when :func:`stop_choice`
    says so (``on_choice`` hears that choice). See the module doc. ``series``: the curve as the
    curve store has it (the metric-line judge); without it, the curve is read from the logs."""
    description = None
    if arn is None:  # the metric-line judge knows only the name
        description = judge.jobs.describe(name)
        if description is None:
            return "gone"
        arn = str(description["TrainingJobArn"])
    tags = judge.jobs.tags(arn)
    if tags.get(TAG_DEPLOYMENT) != judge.deployment:
        return "skipped"  # the prefix matched, but the job is not ours
    if TAG_DIVERGED in tags and judge.finish_within is None:
        return "already_reported"
    description = description or judge.jobs.describe(name)
    if description is None:
        return "gone"  # deleted between List and Describe
    if description.get("TrainingJobStatus") != IN_PROGRESS:
        return "not_running"  # the finished-job evaluator judges the whole curve
    job = TrainingJob(name, arn, description, tags)
    series = series if series is not None else read_curve(job, judge.logs)
    if TAG_DIVERGED in tags:  # reported already: left to finish, or its stop did not take
        choice = stop_choice(job, series, judge.finish_within)
        if choice.stop and judge.jobs.stop(name):
            _heard(on_choice, name, choice)
            return "stopped_again"
        return "already_reported"
    decision = decide_series(series, judge.detector)
    if not decision.diverged:
        return "checked"
    lineage = lineage_of(job, judge.deployment)
    choice = stop_choice(job, series, judge.finish_within)
    if report_divergence(job, lineage, decision, series.metric, jobs=judge.jobs, bus=judge.bus, stop=choice.stop,
                         epochs_saved=choice.epochs_saved):
        _heard(on_choice, name, choice)
        return "diverged"
    return "checked"


def stop_choice(job: TrainingJob, series: MetricSeries, finish_within: int | None) -> StopChoice:
    """Stop this diverged job now? Its own early-stopping settings and budget say how long it would go on."""
    own = own_early_stopping(job)
    losses = [value for _, value in series.validation]
    return choose_stop(losses, patience=own.patience, tolerance=own.tolerance, epochs=own.epochs,
                       finish_within_epochs=finish_within)


def _heard(on_choice: Callable[[str, StopChoice], None] | None, name: str, choice: StopChoice) -> None:
    logger.info(STOP_CHOICE_LOG_MESSAGE, extra={"job": name, "stop": choice.stop, "epochsSaved": choice.epochs_saved,
                                                "epochsToOwnStop": choice.epochs_to_own_stop,
                                                "reason": choice.reason})
    if on_choice is not None:
        on_choice(name, choice)


def run_monitor(
    judge: Judge,
    *,
    remaining_ms: Callable[[], int] | None = None,
    now: Callable[[], float] = time.time,
) -> MonitorReport:
    report = MonitorReport()
    first_error: Exception | None = None
    reserve = RESERVE_MS if remaining_ms is None else max(RESERVE_MS, int(remaining_ms() * (1 - RUN_SHARE)))
    summaries = sorted(judge.jobs.in_progress(job_prefix(judge.deployment)), key=lambda s: s.name)
    due, report.covered = triage(summaries, judge.store.records(s.name for s in summaries), now())
    for index, summary in enumerate(due):
        if remaining_ms is not None and remaining_ms() < reserve:
            report.deferred.extend(s.name for s in due[index:])
            logger.warning("monitor run out of time; the rest waits for the next run",
                           extra={"deferred": len(report.deferred)})
            break
        try:
            report.add(summary.name, judge_job(judge, summary.name, summary.arn, on_choice=report.note))
            judge.store.mark_swept(summary.name)
        except Exception as error:  # keep checking the other jobs; raised below
            logger.exception("could not check training job", extra={"job": summary.name})
            report.errors.append(f"{summary.name}: {error}")
            first_error = first_error or error
    logger.info("monitor run finished", extra=report.as_dict())
    if first_error is not None:
        raise MonitorError("; ".join(report.errors)) from first_error
    return report


def triage(
    summaries: list[JobSummary], records: Mapping[str, JobRecord], now: float
) -> tuple[list[JobSummary], list[str]]:
    """(jobs to sweep, least recently seen first; names of jobs the judge covers). See the module doc."""
    due: list[JobSummary] = []
    covered: list[str] = []
    for summary in summaries:
        record = records.get(summary.name)
        if record is not None and now - record.heard < COVERED_WITHIN_S and not has_gap(record):
            covered.append(summary.name)
        else:
            due.append(summary)
    due.sort(key=lambda s: (records[s.name].last_seen if s.name in records else 0.0, s.name))
    return due, covered


def has_gap(record: JobRecord) -> bool:
    """An epoch missing between two stored validation epochs: a delivery in between was lost."""
    epochs = sorted({line.epoch for line in _parsed(record) if line.channel == "validation" and line.epoch is not None})
    return any(after - before > 1 for before, after in pairwise(epochs))


def _parsed(record: JobRecord) -> list[MetricLine]:
    parsed = []
    for message in record.messages:
        try:
            line = parse_line(message)
        except ValueError:
            continue
        if line is not None:
            parsed.append(line)
    return parsed
