"""The reconciler: level-triggered repair of everything the edge-triggered handlers can lose.

Every 5 minutes (``o2v_core.functions.RECONCILER``) it compares what should be with what is, and
repairs it through the very steps the handlers use, so that any single event, invocation or
retry can be lost without losing its outcome (docs/guarantees.md):

1. **The served model.** The promoter and the reconciler own the endpoint (docs/promotion.md, "Who
   owns what"). With no endpoint but a record whose config exists, the endpoint is created again on
   that config. When the endpoint is ``InService``, its autoscaling is set as the settings say
   (registered after a first endpoint or an instance-type change, updated after a changed
   capacity). When the endpoint is ``InService`` on a config the record does not name,
   the record is rewritten from the endpoint (the config's tags and its model's artifact). If the
   served config is the newer one, its promotion was never announced: ``ModelPromoted``, then the
   record. If the record's config is the newer one, the endpoint rolled that deployment back (or
   it failed): ``ModelRolledBack`` for operators, the tag ``o2v:rolled-back`` on the rejected job
   (never deployed again), then the record. UNCONFIRMED: that DescribeEndpoint names the old
   (blue) config after an auto-rollback is our reading of DeploymentConfig ("SageMaker creates a
   new fleet during the deployment while maintaining the old fleet",
   https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html); no AWS
   page states the field's value after a rollback. If it kept the new name, the record would
   still match and no rollback would be reported (nothing else depends on it): confirm in a
   real account.
2. **Lineages.** Of this deployment's recent jobs (bounded): a finished job with no verdict
   (neither ``o2v:diverged`` nor ``o2v:evaluated``) is judged and reported
   (:func:`control_plane.logic.evaluator.judge_and_report`); a diverged job with neither its
   child nor ``o2v:retraining-exhausted`` continues its lineage
   (:func:`control_plane.logic.retrain.continue_lineage`); a succeeded job with no
   ``o2v:promotion`` tag gets its promotion decision.
3. **Deferred candidates**, once the endpoint is free and the record true: best first, until one
   is promoted (the endpoint is then busy again; the rest wait for the next run).

A job is only repaired once it is older than :data:`GRACE_SECONDS`, longer than Lambda's async
retries take, so the reconciler does not race the handlers' own retries; duplicates it could still
cause are harmless (deterministic names, tags checked first). Each run does at most
:data:`MAX_ACTIONS` repairs and reads at most :data:`MAX_JOBS` jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger
from o2v_core.business_metrics import RECONCILER_REPAIRS
from o2v_core.detector import DetectorConfig
from o2v_core.events import FINISHED_STATUSES, ModelPromoted, ModelRolledBack, TrainingSucceeded
from o2v_core.naming import TAG_DEPLOYMENT, job_prefix
from o2v_core.retrain_policy import RetrainPolicy
from o2v_core.served_assets import TAG_TRAINING_JOB, TAG_VOCAB

from control_plane.aws.endpoint import EndpointState, ServedConfig
from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving_record import ServingRecord
from control_plane.aws.training_jobs import RecentJob, TrainingJob, TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.evaluator import OFFERED_FOR_PROMOTION, Diverged, judge, judge_and_report
from control_plane.logic.jobs import (
    TAG_DIVERGED,
    TAG_EVALUATED,
    TAG_PROMOTION,
    TAG_RETRAINING_EXHAUSTED,
    TAG_ROLLED_BACK,
    lineage_of,
)
from control_plane.logic.promotion import (
    PROMOTION_DEFERRED,
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
    TAG_VALIDATION_DATA,
    Promoter,
    candidate_value,
    lower_is_better,
)
from control_plane.logic.retrain import continue_lineage
from control_plane.observability import count

logger = Logger(child=True)

# Lambda retries a failed async invocation twice, waiting about 1 and then 2 minutes
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html); EventBridge
# delivers within seconds. 15 minutes leaves the handlers' own retries room before repairing.
GRACE_SECONDS = 15 * 60
WINDOW_DAYS = 14  # jobs created earlier are not looked at
MAX_JOBS = 100
MAX_ACTIONS = 10


# What the record outcomes count as a repair.
RECORD_REPAIRS = ("announced", "record_written", "rolled_back", "endpoint_recreated")


@dataclass
class ReconcileReport:
    # "unchanged" | "announced" | "record_written" (announced before) | "rolled_back" | "no_endpoint"
    # | "endpoint_busy" | "endpoint_recreated" (from the record's config)
    record: str = "unchanged"
    autoscaling: str = "unchanged"  # | "registered" | "deregistered"
    confirmed: list[str] = field(default_factory=list)  # announcements the witness saw put, now marked sent
    republished: list[str] = field(default_factory=list)  # claims whose claimant died before PutEvents, put now
    judged: list[str] = field(default_factory=list)
    continued: list[str] = field(default_factory=list)
    decided: list[str] = field(default_factory=list)
    deferred_decided: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    capped: bool = False  # MAX_ACTIONS reached; the next run goes on

    @property
    def actions(self) -> int:
        return (
            len(self.republished) + len(self.judged) + len(self.continued) + len(self.decided)
            + len(self.deferred_decided)
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class ReconcileError(RuntimeError):
    """Some repairs failed; the message lists them (the function's error alarm fires)."""


@dataclass
class Reconciler:
    deployment: str
    jobs: TrainingJobs
    logs: TrainingLogs
    bus: EventBus
    detector: DetectorConfig
    policy: RetrainPolicy
    promoter: Promoter
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        self._guard(report, "announcements", lambda: self._republish(report))
        endpoint = self._guard(report, "served model", lambda: self.reconcile_served_model(report))
        live = endpoint
        if live is not None and not live.busy:  # before this run's promotions (they may deregister it)
            self._guard(report, "autoscaling", lambda: self.autoscale(live, report))
        recent = self.jobs.recent(
            job_prefix(self.deployment), since=self.now() - timedelta(days=WINDOW_DAYS), limit=MAX_JOBS
        )
        deferred: list[tuple[TrainingJob, TrainingSucceeded]] = []
        for summary in recent:
            if report.actions >= MAX_ACTIONS:
                report.capped = True
                break
            if summary.status not in FINISHED_STATUSES or not self._settled(summary):
                continue
            self._guard(report, summary.name, _bind(self._reconcile_job, summary, report, deferred))
        free = endpoint is not None and endpoint.status == "InService" and report.record in ("unchanged",)
        if deferred and free and not report.capped:
            self._guard(report, "deferred candidates", lambda: self._decide_deferred(deferred, report))
        count(RECONCILER_REPAIRS, self.deployment, report.actions + (report.record in RECORD_REPAIRS))
        logger.info("reconciler run finished", extra=report.as_dict())
        if report.errors:
            raise ReconcileError("; ".join(report.errors))
        return report

    def _republish(self, report: ReconcileReport) -> None:
        """Announcements whose claimant died before marking them sent (control_plane.logic.announce):
        confirmed from the witness queue when they were put, put now when they were not."""
        before = self.now() - timedelta(seconds=GRACE_SECONDS)
        report.confirmed, report.republished = self.promoter.announcer.repair(before, MAX_ACTIONS)

    # -- the served model ----------------------------------------------------------------------

    def reconcile_served_model(self, report: ReconcileReport) -> EndpointState | None:
        promoter = self.promoter
        endpoint = promoter.sagemaker.describe_endpoint(promoter.settings.endpoint_name)
        if endpoint is None:
            report.record = self._recreate_endpoint()
            return None
        if endpoint.busy:
            report.record = "endpoint_busy"  # a deployment is under way; its outcome is judged later
            return endpoint
        record = promoter.records.read()
        if record is not None and record.endpointConfigName == endpoint.config_name:
            return endpoint
        served = promoter.sagemaker.served_config(endpoint.config_name)
        if served is None:
            raise RuntimeError(f"endpoint {endpoint.name!r} serves config {endpoint.config_name!r}, which is gone")
        served_record = record_of(served)
        if record is None and served_record is None:
            return endpoint  # a config the promoter did not make, nothing promoted yet: consistent
        rejected = record is not None and self._is_newer(record, served)
        if rejected and record is not None:
            self._report_rollback(endpoint, record, served, served_record)
            report.record = "rolled_back"
        elif served_record is not None:
            # The promoter claimed this announcement before its ModelPromoted; when it did, the
            # claim stands (its event was put, or the stale-claim step puts it) and nothing repeats.
            announced = promoter.announcer.once(ModelPromoted(
                deployment=self.deployment,
                trainingJobName=served_record.trainingJobName,
                endpointName=endpoint.name,
                modelName=served_record.modelName,
                candidateValue=served_record.metricValue,
                previousValue=record.metricValue if record else None,
                metricName=served_record.metricName,
            ))
            promoter.records.write(served_record)
            report.record = "announced" if announced else "record_written"
        logger.warning("served-model record corrected from the endpoint",
                       extra={"was": record.to_json() if record else None, "serving": endpoint.config_name,
                              "action": report.record})
        return endpoint

    def _recreate_endpoint(self) -> str:
        """No endpoint, but the record names a config: create the endpoint on it again.

        The promoter and this reconciler own the endpoint (docs/promotion.md, "Who owns what"), so
        an endpoint deleted by hand, or by an older serving stack that owned it, comes back with the
        model the record says is served. With no record, the first good model creates it."""
        promoter = self.promoter
        record = promoter.records.read()
        if record is None or promoter.sagemaker.served_config(record.endpointConfigName) is None:
            return "no_endpoint"
        tags = {TAG_DEPLOYMENT: self.deployment}
        if not promoter.sagemaker.create_endpoint(
            promoter.settings.endpoint_name, config_name=record.endpointConfigName, tags=tags
        ):
            return "endpoint_busy"  # created meanwhile (a promotion): judged on the next run
        logger.warning("endpoint recreated from the served-model record",
                       extra={"endpointName": promoter.settings.endpoint_name, "record": record.to_json()})
        return "endpoint_recreated"

    def autoscale(self, endpoint: EndpointState, report: ReconcileReport) -> None:
        """Keep the InService endpoint's scalable target and policy as the settings say (level-triggered:
        a first endpoint, a promotion that changed the instance type, a changed capacity setting)."""
        promoter = self.promoter
        wanted = promoter.settings.scaling
        current = promoter.autoscaling.current(endpoint.name)
        if current == wanted:
            return
        if wanted is None:
            promoter.autoscaling.deregister(endpoint.name)
            report.autoscaling = "deregistered"
        else:
            promoter.autoscaling.apply(endpoint.name, wanted)
            report.autoscaling = "registered"
        logger.info("endpoint autoscaling set", extra={"was": asdict(current) if current else None,
                                                        "now": asdict(wanted) if wanted else None})

    def _is_newer(self, record: ServingRecord, served: ServedConfig) -> bool:
        """The record's config was created after the served one: its deployment did not stick."""
        named = self.promoter.sagemaker.served_config(record.endpointConfigName)
        return named is not None and named.created > served.created

    def _report_rollback(
        self, endpoint: EndpointState, record: ServingRecord, served: ServedConfig, served_record: ServingRecord | None
    ) -> None:
        promoter = self.promoter
        rejected = promoter.sagemaker.describe_training_job(record.trainingJobName)
        if TAG_ROLLED_BACK not in rejected.tags:  # already reported by an earlier run otherwise
            promoter.announcer.once(ModelRolledBack(
                deployment=self.deployment,
                endpointName=endpoint.name,
                rejectedTrainingJobName=record.trainingJobName,
                servingEndpointConfigName=served.name,
                servingTrainingJobName=served_record.trainingJobName if served_record else None,
                reason=f"the record named {record.endpointConfigName!r}, but the endpoint is InService on the "
                       f"older {served.name!r}: the blue/green deployment was rolled back or failed",
            ))
            promoter.sagemaker.add_tags(rejected.arn, {TAG_ROLLED_BACK: record.endpointConfigName})
        if served_record is not None:
            promoter.records.write(served_record)
        else:
            promoter.records.clear()

    # -- lineages ---------------------------------------------------------------------------------

    def _settled(self, summary: RecentJob) -> bool:
        return (self.now() - summary.last_modified).total_seconds() >= GRACE_SECONDS

    def _reconcile_job(
        self, summary: RecentJob, report: ReconcileReport, deferred: list[tuple[TrainingJob, TrainingSucceeded]]
    ) -> None:
        tags = self.jobs.tags(summary.arn)
        if tags.get("o2v:deployment") != self.deployment:
            return
        judged_now = TAG_EVALUATED not in tags
        if judged_now:  # a diverged job too: its model may be a candidate (evaluator docstring)
            job = self._load(summary, tags)
            judge_and_report(job, self.deployment, jobs=self.jobs, logs=self.logs, bus=self.bus,
                             detector=self.detector)
            report.judged.append(summary.name)
            tags = self.jobs.tags(summary.arn)
        if TAG_DIVERGED in tags and TAG_RETRAINING_EXHAUSTED not in tags:
            job = self._load(summary, tags)
            lineage = lineage_of(job, self.deployment)
            if self.jobs.describe(lineage.next_attempt(job.name).job_name()) is None:
                continued = continue_lineage(job, lineage, self.deployment, jobs=self.jobs,
                                             announcer=self.promoter.announcer, policy=self.policy)
                report.continued.append(f"{summary.name}: {continued.action}")
        if judged_now:  # its TrainingSucceeded (if any) is on its way to the promoter
            return
        if tags.get(TAG_EVALUATED) not in OFFERED_FOR_PROMOTION or tags.get(TAG_PROMOTION) not in (
            None, PROMOTION_DEFERRED
        ):
            return
        job = self._load(summary, tags)
        judged = judge(job, self.deployment, logs=self.logs, detector=self.detector)
        verdict = judged.candidate if isinstance(judged, Diverged) else judged
        if not isinstance(verdict, TrainingSucceeded):
            return  # judged differently now (a changed detector): the recorded verdict stands
        if tags.get(TAG_PROMOTION) == PROMOTION_DEFERRED:
            deferred.append((job, verdict))
            return
        outcome = self.promoter.handle(verdict)
        report.decided.append(f"{summary.name}: {outcome.detail.detail_type}")

    def _decide_deferred(self, deferred: list[tuple[TrainingJob, TrainingSucceeded]], report: ReconcileReport) -> None:
        """Best candidate first; stop at the first promotion (the endpoint is busy again)."""

        def rank(item: tuple[TrainingJob, TrainingSucceeded]) -> float:
            job, event = item
            value = candidate_value(event, job.status, job.tags)
            if not math.isfinite(value):
                return math.inf
            return value if lower_is_better(event.metricName) else -value

        for _, event in sorted(deferred, key=rank):
            outcome = self.promoter.handle(event)
            report.deferred_decided.append(f"{event.trainingJobName}: {outcome.detail.detail_type}")
            if outcome.promoted or outcome.deferred:
                return

    def _load(self, summary: RecentJob, tags: dict[str, str]) -> TrainingJob:
        description = self.jobs.describe(summary.name)
        if description is None:
            raise RuntimeError(f"training job {summary.name!r} vanished")
        return TrainingJob(summary.name, summary.arn, description, tags)

    def _guard(
        self, report: ReconcileReport, what: str, step: Callable[[], EndpointState | None]
    ) -> EndpointState | None:
        try:
            return step()
        except Exception as error:  # one repair's trouble does not stop the others; raised at the end
            logger.exception("reconciler step failed", extra={"step": what})
            report.errors.append(f"{what}: {error}")
            return None


def _bind(
    step: Callable[[RecentJob, ReconcileReport, list[tuple[TrainingJob, TrainingSucceeded]]], None],
    summary: RecentJob,
    report: ReconcileReport,
    deferred: list[tuple[TrainingJob, TrainingSucceeded]],
) -> Callable[[], None]:
    return lambda: step(summary, report, deferred)


def record_of(served: ServedConfig) -> ServingRecord | None:
    """The record for a config the promoter created (its tags say which job and value), else None."""
    job = served.tags.get(TAG_TRAINING_JOB)
    metric = served.tags.get(TAG_METRIC_NAME)
    value = served.tags.get(TAG_METRIC_VALUE)
    if not (job and metric and value and served.model_data_url):
        return None
    return ServingRecord(
        modelDataUrl=served.model_data_url,
        trainingJobName=job,
        metricName=metric,
        metricValue=float(value),
        modelName=served.model_name,
        endpointConfigName=served.name,
        vocab=served.model_tags.get(TAG_VOCAB) or None,
        validationData=served.tags.get(TAG_VALIDATION_DATA) or None,
    )
