"""The rollback check in an account: a deliberately failing candidate goes through the normal
promotion path, the run sends invocations during the bake, and the endpoint must go back to the
previous model, with the served-model record and ``ModelRolledBack`` saying so.

The candidate (why this one): the promoter deploys only a training job of this deployment, made
with the training role into the training output (its provenance veto), that beats the served model
by the margin on the same validation data (``control_plane.logic.promotion.rules.compare``). So the
candidate is a real training job: one attempt of its own lineage (``<run>-rb``) on the run's
dataset with the served attempt's hyperparameters, on the training instance type, tagged with the
run. When it has completed, the run replaces its ``model.tar.gz`` with an archive that holds no
model (a container cannot load it). The promoter decides on the job from DescribeTrainingJob's
values and deploys the artifact's S3 URI; SageMaker reads the archive when it provisions the new
fleet, minutes later. Two outcomes are possible and both are recorded as AWS reports them:

* the new fleet's container starts but answers the run's invocations with 5xx: ``Invocation5XXErrors``
  moves, the serving stack's rollback alarm (Sum >= 1 per minute, ``stacks/constructs/endpoint_alarms.py``)
  goes to ALARM, and "If any of the alarms trip during the baking period, SageMaker initiates a
  complete rollback to the old endpoint" (deployment guardrails, auto-rollback:
  https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html and
  ...-blue-green.html: all traffic moves to the new fleet at once, then the baking period);
* the container does not pass the health check, so the deployment fails before the bake and
  SageMaker keeps the old fleet (UpdateEndpoint: "If the update fails, the endpoint keeps serving
  its current configuration", with ``FailureReason``; botocore ``sagemaker`` model).

Which of the two Object2Vec's container does with an archive holding no model has no source: the
check says which one happened. Only the first settles which role SageMaker reads the alarms as (an
alarm that went ALARM, read back with DescribeAlarmHistory, followed by a rollback); both settle
what DescribeEndpoint names after the endpoint went back and whether the reconciler's record and
``ModelRolledBack`` follow (docs/promotion.md "Known limits": within its next run, every 5 minutes).

The candidate may also not be promoted (its validation value did not beat the served model's by the
margin): then no update happened and the check says "could not tell", with the promoter's reason.

Every wait is bounded (``training.verify.plan``: ``ROLLBACK_*_SECONDS``, counted in the plan's upper
bound) and prints progress. The candidate's job, artifact, model and endpoint config carry the run's
name (``verify-``) and are removed by the run's clean-up (``training.verify.run_tag``).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.events import MODEL_PROMOTED, MODEL_ROLLED_BACK, PROMOTION_SKIPPED

from training.preflight.report import Check, Status
from training.verify.loop_checks import ENDPOINT_BUSY, SETTLING, LoopChecks, aws_error
from training.verify.plan import (
    MAX_RUNTIME_SECONDS,
    ROLLBACK_BAKE_SECONDS,
    ROLLBACK_DECISION_SECONDS,
    ROLLBACK_LINEAGE_SUFFIX,
    ROLLBACK_RECORD_SECONDS,
)
from training.verify.target import served_record

NAME = "blue/green rollback on a tripped alarm"
CANDIDATE_LAYER = "o2v verify's rollback candidate (the served attempt's recipe)"
# A body any Object2Vec model with a vocabulary of more than 3 tokens embeds (reference 4b).
PROBE_BODY = json.dumps({"instances": [{"in0": [1, 2, 3]}]}).encode()
INVOCATION_SECONDS = 2.0  # between the bake's invocations: ~30 a minute, each minute's Sum moves


def unservable_archive() -> bytes:
    """A valid ``model.tar.gz`` that holds no model: one text file saying why."""
    text = b"o2v verify: a deliberately unservable model artifact (the rollback check's candidate)\n"
    buffer = io.BytesIO()
    # The same bytes on every call (gzip's header time fixed), so a replaced artifact is recognisable.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, tarfile.open(
            fileobj=compressed, mode="w") as archive:
        info = tarfile.TarInfo("NOT-A-MODEL.txt")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


@dataclass
class RollbackObservation:
    """What the run saw, read back from the services; :func:`judge` turns it into the check."""

    previous_config: str = ""
    previous_job: str = ""
    candidate_job: str = ""
    candidate_config: str = ""  # the endpoint config the promoter deployed
    promotion: str = ""  # "promoted", "skipped: <reason>", or why there was no decision
    answers: Counter[str] = field(default_factory=Counter)  # the bake's invocations by outcome
    statuses: list[str] = field(default_factory=list)  # the endpoint's statuses during the bake, in order
    endpoint_after: dict[str, Any] = field(default_factory=dict)  # DescribeEndpoint once it settled
    alarm_trips: list[str] = field(default_factory=list)  # "<alarm> -> ALARM at <time>"
    record_job: str | None = None  # the record's trainingJobName at the end
    rolled_back: dict[str, Any] | None = None  # the ModelRolledBack detail for the candidate


def _answers(observed: RollbackObservation) -> str:
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(observed.answers.items())) or "none"
    return f"invocations during the bake: {counts}"


def _described(observed: RollbackObservation) -> str:
    after = observed.endpoint_after
    alarms = [item.get("AlarmName") for item in after.get("LastDeploymentConfig", {}).get(
        "AutoRollbackConfiguration", {}).get("Alarms", [])]
    reason = f", FailureReason {after['FailureReason']!r}" if after.get("FailureReason") else ""
    return (f"DescribeEndpoint after: {after.get('EndpointStatus', '?')} on {after.get('EndpointConfigName', '?')}"
            f"{reason}, rollback alarms {', '.join(map(str, alarms)) or 'none'}")


def judge(observed: RollbackObservation) -> Check:
    """passed: an alarm tripped, the endpoint went back, the record and ModelRolledBack say so."""
    if observed.promotion != "promoted":
        return Check(NAME, Status.UNKNOWN, f"the candidate {observed.candidate_job or '(none)'} was not deployed "
                     f"({observed.promotion}); no blue/green update to roll back",
                     "rerun `o2v verify`: the candidate must beat the served model by the promotion margin")
    recorded = f"{_described(observed)}; {_answers(observed)}; alarm state changes: " + (
        "; ".join(observed.alarm_trips) or "none to ALARM")
    served = observed.endpoint_after.get("EndpointConfigName")
    if observed.endpoint_after.get("EndpointStatus") != "InService":
        return Check(NAME, Status.UNKNOWN, f"the update to {observed.candidate_config} did not end within "
                     f"{ROLLBACK_BAKE_SECONDS // 60} min; recorded: {recorded}",
                     "look at the endpoint in the console; the clean-up deletes it")
    if served == observed.candidate_config:
        if observed.alarm_trips:
            return Check(NAME, Status.FAILED, f"an alarm went to ALARM during the bake but the endpoint kept the "
                         f"failing candidate; recorded: {recorded}", "report it: SageMaker may read the alarms as a "
                         "role without cloudwatch:DescribeAlarms on them (docs/verification.md)")
        if observed.answers.get("5xx"):
            return Check(NAME, Status.FAILED, f"the candidate answered with 5xx but no rollback alarm went to ALARM; "
                         f"recorded: {recorded}", "report the alarm's metric and dimensions (Invocation5XXErrors, "
                         "EndpointName, VariantName)")
        return Check(NAME, Status.UNKNOWN, f"the candidate served without failing (its archive was read before "
                     f"the run replaced it, or the container serves it); recorded: {recorded}",
                     "rerun `o2v verify`")
    if served != observed.previous_config:
        return Check(NAME, Status.FAILED, f"the endpoint serves {served}, neither the previous "
                     f"{observed.previous_config} nor the candidate; recorded: {recorded}", "report it")
    repaired = observed.record_job == observed.previous_job and observed.rolled_back is not None
    if not repaired:
        return Check(NAME, Status.FAILED, f"the endpoint went back to {served}, but within "
                     f"{ROLLBACK_RECORD_SECONDS // 60} min the record names {observed.record_job} and "
                     f"{'a' if observed.rolled_back else 'no'} {MODEL_ROLLED_BACK} arrived; recorded: {recorded}",
                     "look at the reconciler's log group and its on-failure queue")
    told = (f"the record names {observed.previous_job} again and {MODEL_ROLLED_BACK} said: "
            f"{observed.rolled_back.get('reason', '') if observed.rolled_back else ''}")
    if observed.alarm_trips:
        return Check(NAME, Status.PASSED, f"recorded: the alarm tripped during the bake and SageMaker rolled back "
                     f"(so it could read the alarms); {told}; {recorded}")
    return Check(NAME, Status.UNKNOWN, f"the endpoint went back to {served} because the update failed before the bake"
                 f", not on an alarm, so which role reads the alarms stays open; {told}; {recorded}",
                 "report this line: it settles what DescribeEndpoint names after a failed update")


class RollbackProbe:
    """Runs the candidate through the promoter, the bake and the reconciler; :meth:`run` is the check."""

    def __init__(self, loop: LoopChecks) -> None:
        self.loop = loop
        self.target = loop.target
        self.seen = RollbackObservation()
        self.invocation_seconds = INVOCATION_SECONDS
        self.bake_started = datetime.now(UTC)

    def run(self) -> Check:
        if not self._before():
            return Check(NAME, Status.UNKNOWN, "no model of this run is served, so there is nothing to roll back to",
                         "see the promotion check above")
        try:
            self._launch_candidate()
            if self._await_decision():
                self._bake()
                self._read_alarm_history()
                self._await_record()
        except (ClientError, BotoCoreError) as error:
            return Check(NAME, Status.UNKNOWN, f"{aws_error(error)} (candidate {self.seen.candidate_job or 'none'})",
                         "grant the call it names, or look by hand")
        return judge(self.seen)

    # -- the steps

    def _before(self) -> bool:
        record = served_record(self.loop.client("ssm"), self.target.serving_parameter) or {}
        self.seen.previous_job = str(record.get("trainingJobName") or "")
        self.seen.previous_config = str(record.get("endpointConfigName") or "")
        return bool(self.seen.previous_job and self.seen.previous_config)

    def _launch_candidate(self) -> None:
        from training.launcher.launch import LaunchError, plan_launch, submit

        loop = self.loop
        served = loop.client("sagemaker").describe_training_job(TrainingJobName=self.seen.previous_job)
        try:
            launch = plan_launch(
                loop.session, deployment=self.target.deployment,
                lineage=loop.verify_run.lineage + ROLLBACK_LINEAGE_SUFFIX,
                dataset=loop.verify_run.dataset, layers=[(CANDIDATE_LAYER, dict(served.get("HyperParameters", {})))],
                instance_type=loop.plan.training_instance_type, volume_size_gb=5,
                max_runtime_seconds=MAX_RUNTIME_SECONDS, stack=self.target.launch, tags=dict(loop.verify_run.tags))
            submit(loop.session, launch)
        except LaunchError as error:
            self.seen.promotion = f"the candidate could not be launched: {error}"
            return
        self.seen.candidate_job = launch.job_name
        loop.progress(f"rollback candidate {launch.job_name}: launched with {self.seen.previous_job}'s recipe")

    def _await_decision(self) -> bool:
        """The candidate ends; its artifact is replaced; the promoter decides (ModelPromoted/PromotionSkipped)."""
        job = self.seen.candidate_job
        if not job:
            return False
        sagemaker, loop = self.loop.client("sagemaker"), self.loop
        deadline = time.monotonic() + MAX_RUNTIME_SECONDS + ROLLBACK_DECISION_SECONDS
        status, replaced = "", False
        while time.monotonic() < deadline:
            described = sagemaker.describe_training_job(TrainingJobName=job)
            if described["TrainingJobStatus"] != status:
                status = described["TrainingJobStatus"]
                loop.progress(f"rollback candidate {job}: {status}")
            if status == "Completed" and not replaced:
                self._replace_artifact(described["ModelArtifacts"]["S3ModelArtifacts"])
                replaced = True
            elif status not in SETTLING and status != "Completed":
                self.seen.promotion = f"the candidate ended {status}: {described.get('FailureReason', '')}".strip()
                return False
            decision = self._decision(job)
            if decision is not None:
                self.seen.promotion = decision
                return decision == "promoted"
            time.sleep(loop.poll_seconds)
        bound = (MAX_RUNTIME_SECONDS + ROLLBACK_DECISION_SECONDS) // 60
        self.seen.promotion = f"no promotion decision on {job} within {bound} min (job {status or 'unseen'})"
        return False

    def _replace_artifact(self, uri: str) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.loop.client("s3").put_object(Bucket=bucket, Key=key, Body=unservable_archive())
        self.loop.progress(f"rollback candidate: {uri} replaced with an archive that holds no model")

    def _decision(self, job: str) -> str | None:
        self.loop._drain()
        for event in self.loop.seen.announcements:
            detail = event.get("detail", {})
            if detail.get("trainingJobName") != job:
                continue
            if event.get("detail-type") == MODEL_PROMOTED:
                return "promoted"
            if event.get("detail-type") == PROMOTION_SKIPPED:
                return f"skipped: {detail.get('reason', '')}"
        return None

    def _bake(self) -> None:
        """Invocations until the update ends: all traffic is on the new fleet during the bake."""
        sagemaker, runtime = self.loop.client("sagemaker"), self.loop.client("sagemaker-runtime")
        self.bake_started = datetime.now(UTC)
        deadline = time.monotonic() + ROLLBACK_BAKE_SECONDS
        last_report = 0.0
        while time.monotonic() < deadline:
            endpoint = sagemaker.describe_endpoint(EndpointName=self.target.endpoint_name)
            status = str(endpoint["EndpointStatus"])
            pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
            if pending and not self.seen.candidate_config:
                self.seen.candidate_config = str(pending)
            if not self.seen.statuses or self.seen.statuses[-1] != status:
                self.seen.statuses.append(status)
            moved = any(seen in ENDPOINT_BUSY for seen in self.seen.statuses) or endpoint.get(
                "FailureReason") or endpoint.get("EndpointConfigName") != self.seen.previous_config
            if status not in ENDPOINT_BUSY and moved:
                break
            self.seen.answers[self._invoke(runtime)] += 1
            self._watch_alarms()
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                self.loop.progress(f"rollback bake: {status}; {_answers(self.seen)}")
            time.sleep(self.invocation_seconds)
        self.seen.endpoint_after = sagemaker.describe_endpoint(EndpointName=self.target.endpoint_name)
        if not self.seen.candidate_config and self.seen.endpoint_after.get("EndpointConfigName") != (
                self.seen.previous_config):  # settled before the first look: it serves the candidate
            self.seen.candidate_config = str(self.seen.endpoint_after.get("EndpointConfigName"))
        self.loop.progress(f"rollback bake over: {_described(self.seen)}")

    def _invoke(self, runtime: Any) -> str:
        try:
            runtime.invoke_endpoint(EndpointName=self.target.endpoint_name, Body=PROBE_BODY,
                                    ContentType="application/json", Accept="application/json")
        except ClientError as error:
            response = error.response
            original = response.get("OriginalStatusCode") or response.get("Error", {}).get("OriginalStatusCode")
            if original is not None:
                return f"{str(original)[0]}xx"
            return f"error {response.get('Error', {}).get('Code', '?')}"
        return "ok"

    def _watch_alarms(self) -> None:
        """The rollback alarms' states as DescribeAlarms shows them during the bake (an alarm may be
        OK again by the end: after a rollback the old fleet answers)."""
        alarms = self.loop.client("cloudwatch").describe_alarms(AlarmNames=list(self.target.rollback_alarms))
        for alarm in alarms["MetricAlarms"]:
            if alarm.get("StateValue") == "ALARM":
                seen = f"{alarm['AlarmName']} -> ALARM at {alarm.get('StateUpdatedTimestamp')}"
                if seen not in self.seen.alarm_trips:
                    self.seen.alarm_trips.append(seen)
                    self.loop.progress(f"rollback bake: {seen} ({alarm.get('StateReason', '')})")

    def _read_alarm_history(self) -> None:
        """Trips between two looks: DescribeAlarmHistory's state updates since the bake began."""
        cloudwatch = self.loop.client("cloudwatch")
        self._watch_alarms()
        for alarm in self.target.rollback_alarms:
            try:
                items = cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate",
                                                          StartDate=self.bake_started)["AlarmHistoryItems"]
            except (ClientError, BotoCoreError) as error:  # the states seen during the bake still count
                self.loop.progress(f"rollback: DescribeAlarmHistory of {alarm}: {aws_error(error)}")
                continue
            for item in items:
                if "to ALARM" in str(item.get("HistorySummary", "")) and not any(
                        trip.startswith(f"{alarm} -> ALARM") for trip in self.seen.alarm_trips):
                    self.seen.alarm_trips.append(f"{alarm} -> ALARM at {item.get('Timestamp')}")

    def _await_record(self) -> None:
        """The reconciler's next run rewrites the record and puts ModelRolledBack (docs/promotion.md)."""
        if self.seen.endpoint_after.get("EndpointConfigName") != self.seen.previous_config:
            return
        deadline = time.monotonic() + ROLLBACK_RECORD_SECONDS
        while time.monotonic() < deadline:
            self.loop._drain()
            self.seen.rolled_back = next((event.get("detail", {}) for event in self.loop.seen.announcements
                                          if event.get("detail-type") == MODEL_ROLLED_BACK and event.get(
                                              "detail", {}).get("rejectedTrainingJobName") == self.seen.candidate_job),
                                         None)
            record = served_record(self.loop.client("ssm"), self.target.serving_parameter) or {}
            self.seen.record_job = record.get("trainingJobName")
            if self.seen.rolled_back is not None and self.seen.record_job == self.seen.previous_job:
                return
            time.sleep(self.loop.poll_seconds)
        self.loop.progress(f"rollback: the record names {self.seen.record_job} after "
                           f"{ROLLBACK_RECORD_SECONDS // 60} min")
