"""The loop, end to end, checked through boto3 alone: a tiny dataset in, attempt 1 overfitting on
purpose, the metric-line judge and its curve store, the relaunch with more dropout, the promotion,
the endpoint and ``o2v embed --endpoint``, the announcements on the operators' topic, and the
witness and dead-letter queues. The same code runs against an account and against local mode.

AWS behaviour each check relies on, and its source:

* SNS delivers a topic's messages to a subscribed SQS queue whose policy lets
  ``sns.amazonaws.com`` send with ``aws:SourceArn`` = the topic, wrapped in a JSON envelope whose
  ``Message`` is the published text (SNS developer guide, "Subscribing an Amazon SQS queue to an
  Amazon SNS topic" and "Amazon SNS message and JSON formats"); an EventBridge rule with an SNS
  target publishes the whole event as the message (EventBridge user guide, "Amazon SNS as a target").
* The judge stores each delivered ``#quality_metric`` line as an attribute of the job's item
  (``o2v_core.curve_store``); ``reported`` is set once it reported the job's divergence.
* ListTrainingJobs ``NameContains`` and ``StatusEquals`` filters, DescribeTrainingJob, ListTags,
  DescribeEndpoint, DescribeEndpointConfig and DescribeModel members: botocore ``sagemaker`` model.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.events import MODEL_PROMOTED, RETRAINING_EXHAUSTED, TRAINING_FAILED
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT

from training.preflight.report import Check, Status
from training.verify.plan import MAX_RUNTIME_SECONDS, Plan
from training.verify.run_tag import is_verify_job

EXAMPLE_SENTENCES = ("A man is playing a flute.", "A man plays the flute.")
VERIFY_LAYER = "o2v verify's overfit-prone first attempt"
SETTLING = ("InProgress", "Stopping")
ENDPOINT_BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def aws_error(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


@dataclass
class Observed:
    """What the run saw of the loop, read back from the services."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> DescribeTrainingJob
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    announcements: list[dict[str, Any]] = field(default_factory=list)  # the events the subscriber received
    first_job: str = ""
    settled: bool = False

    def kinds(self) -> set[str]:
        return {str(event.get("detail-type")) for event in self.announcements}

    def attempts(self) -> list[dict[str, Any]]:
        return sorted(self.jobs.values(), key=lambda job: str(job["TrainingJobName"]))


class LoopChecks:
    """Runs the loop once and reads back what each part did; :meth:`run` yields one check at a time."""

    def __init__(self, session: Any, plan: Plan, data_dir: Path, *, timeout: float, poll_seconds: float,
                 progress: Callable[[str], None], best_epoch_artifact: bool,
                 epochs: int = 8, dims: int = 32) -> None:
        self.session = session
        self.plan = plan
        self.target = plan.target
        self.verify_run = plan.run
        self.data_dir = data_dir
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.progress = progress
        self.best_epoch_artifact = best_epoch_artifact
        self.epochs = epochs
        self.dims = dims
        self.seen = Observed()
        self.queue_url = ""
        self.enc_dim = dims
        self.last_change = time.monotonic()  # when a job last appeared or changed status
        # Settled without an announcement once nothing changed for this long (SNS delivery may be
        # what is broken; its own check says so): 40 polls, 10 minutes at an account's 15 s.
        self.idle_seconds = 40 * poll_seconds

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.target.region)

    # -- 1. the temporary subscriber, the data, attempt 1

    def subscribe(self) -> Check:
        name = "announcement subscriber"
        sqs, sns = self.client("sqs"), self.client("sns")
        try:
            run = self.verify_run
            self.queue_url = sqs.create_queue(QueueName=run.queue_name, tags=run.tags)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"]
            policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": self.target.topic_arn}}}]}
            sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
            sns.subscribe(TopicArn=self.target.topic_arn, Protocol="sqs", Endpoint=arn)
        except (ClientError, BotoCoreError) as error:
            return Check(name, Status.FAILED, f"could not subscribe a queue to {self.target.topic_arn}: "
                         f"{aws_error(error)}", "allow sqs:CreateQueue, sqs:SetQueueAttributes and sns:Subscribe "
                         "for these credentials")
        return Check(name, Status.PASSED, f"queue {self.verify_run.queue_name} subscribed to {self.target.topic_arn}")

    def upload(self) -> Check:
        from training.data.upload import upload_dataset

        name = "dataset upload"
        bucket = self.target.launch.dataset_bucket
        try:
            written = upload_dataset(self.client("s3"), self.data_dir, bucket, self.verify_run.dataset)
        except (ClientError, BotoCoreError) as error:
            return Check(name, Status.FAILED, f"PutObject to s3://{bucket}: {aws_error(error)}",
                         "allow s3:PutObject on the dataset bucket (and kms:GenerateDataKey on the data key)")
        return Check(name, Status.PASSED, f"{len(written)} objects to s3://{bucket}/datasets/{self.verify_run.dataset}/")

    def launch(self) -> Check:
        from training.demo.recipe import overfit_prone_recipe
        from training.launcher.launch import LaunchError, plan_launch, submit

        name = "attempt 1"
        tags = dict(self.verify_run.tags)
        if self.best_epoch_artifact:
            tags[TAG_BEST_EPOCH_ARTIFACT] = "true"
        try:
            launch = plan_launch(
                self.session, deployment=self.target.deployment, lineage=self.verify_run.lineage,
                dataset=self.verify_run.dataset, layers=[(VERIFY_LAYER, overfit_prone_recipe(self.dims, self.epochs))],
                instance_type=self.plan.training_instance_type, volume_size_gb=5,
                max_runtime_seconds=MAX_RUNTIME_SECONDS, stack=self.target.launch, tags=tags)
            submit(self.session, launch)
        except (ClientError, BotoCoreError, LaunchError) as error:
            text = aws_error(error) if isinstance(error, (ClientError, BotoCoreError)) else str(error)
            return Check(name, Status.FAILED, f"CreateTrainingJob: {text}",
                         f"check the training quota for {self.plan.training_instance_type} "
                         "(`o2v preflight`) and the training role")
        self.seen.first_job = launch.job_name
        self.enc_dim = int(launch.hyperparameters["enc_dim"])
        return Check(name, Status.PASSED, f"{launch.job_name} on {launch.instance_type}, dropout "
                     f"{launch.hyperparameters['dropout']}, {launch.hyperparameters['epochs']} epochs (overfits fast)")

    # -- 2. wait for the loop to settle

    def _drain(self) -> None:
        sqs = self.client("sqs")
        answer = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                envelope = json.loads(message["Body"])
                event = json.loads(envelope["Message"])
                self.seen.announcements.append(event)
                self.progress(f"announcement on the operators' topic: {event.get('detail-type')}")
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _read_jobs(self) -> None:
        sagemaker = self.client("sagemaker")
        for page in sagemaker.get_paginator("list_training_jobs").paginate(NameContains=self.verify_run.lineage):
            for item in page["TrainingJobSummaries"]:
                job = item["TrainingJobName"]
                if not is_verify_job(self.target.deployment, job):
                    continue
                before = self.seen.jobs.get(job, {}).get("TrainingJobStatus")
                described = sagemaker.describe_training_job(TrainingJobName=job)
                self.seen.jobs[job] = described
                if described["TrainingJobStatus"] != before:
                    self.last_change = time.monotonic()
                    self.progress(f"{job}: {described['TrainingJobStatus']} (dropout "
                                  f"{described['HyperParameters'].get('dropout', '?')})")
                    self.seen.tags[job] = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(
                        ResourceArn=described["TrainingJobArn"])["Tags"]}

    def _endpoint_status(self) -> str | None:
        try:
            return str(self.client("sagemaker").describe_endpoint(EndpointName=self.target.endpoint_name)[
                "EndpointStatus"])
        except ClientError:
            return None

    def wait(self) -> Check:
        """Until no job runs, no endpoint update is under way and the lineage reached an end: an
        announcement says so (ModelPromoted, RetrainingExhausted, TrainingFailed), or nothing changed
        for ``idle_seconds`` (so a broken announcement path costs minutes, not the whole timeout)."""
        name = "the loop settles"
        deadline = time.monotonic() + self.timeout
        quiet = 0
        while time.monotonic() < deadline:
            self._drain()
            self._read_jobs()
            running = [job for job in self.seen.jobs.values() if job["TrainingJobStatus"] in SETTLING]
            ended = bool(self.seen.kinds() & {MODEL_PROMOTED, RETRAINING_EXHAUSTED, TRAINING_FAILED})
            idle = time.monotonic() - self.last_change > self.idle_seconds
            busy = self._endpoint_status() in ENDPOINT_BUSY
            quiet = quiet + 1 if (self.seen.jobs and not running and not busy and (ended or idle)) else 0
            if quiet >= 3:
                self.seen.settled = True
                return Check(name, Status.PASSED, f"{len(self.seen.jobs)} attempt(s), announcements: "
                             f"{', '.join(sorted(self.seen.kinds()))}")
            time.sleep(self.poll_seconds)
        states = ", ".join(f"{job}: {item['TrainingJobStatus']}" for job, item in self.seen.jobs.items()) or "none"
        return Check(name, Status.FAILED, f"not settled within {self.timeout:.0f} s (jobs {states}; announcements "
                     f"{', '.join(sorted(self.seen.kinds())) or 'none'})",
                     "look at the control plane's log groups (/o2v/<deployment>/...) and its dead-letter queues")
