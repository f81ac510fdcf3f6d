"""The run's tag and names, and the clean-up of everything a verify run created.

Every resource a run creates carries the run in its name (``verify-<time>``, after the
deployment's prefix) and, where the service takes tags, the tag ``o2v:verify-run``: the training
jobs (attempt 1 gets it from the launcher; the retrain launcher copies it to every later attempt,
``control_plane/logic/retrain.py`` ``child_tags``), the subscriber queue. The clean-up finds
resources by that name prefix rather than by the run's own list, so a run after an interrupted
one removes the leftovers too. What it removes, in this order (so that nothing recreates what was
removed): the training jobs still running (StopTrainingJob), the SNS subscription and its queue,
the dataset and the jobs' artifacts in S3, and, unless ``--keep``, the served-model record, the
endpoint, its endpoint config and model when they serve a verify job; then every other model and
endpoint config the promoter made for a verify job (a replaced attempt's, the rollback check's
rejected candidate's). Curve-store items expire on
their own (``o2v_core.curve_store.RETENTION_DAYS``, DynamoDB time to live).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core import s3_layout
from o2v_core.naming import TAG_VERIFY_RUN, job_prefix

from training.verify.target import Target, served_record

VERIFY_PREFIX = "verify-"


@dataclass(frozen=True)
class VerifyRun:
    """One run: its id names its lineage, dataset and subscriber queue, and tags its resources."""

    run_id: str
    deployment: str

    @classmethod
    def new(cls, deployment: str, now: datetime | None = None) -> VerifyRun:
        stamp = (now or datetime.now(UTC)).strftime("%m%d%H%M%S")
        return cls(f"{VERIFY_PREFIX}{stamp}", deployment)

    @property
    def lineage(self) -> str:
        return self.run_id

    @property
    def dataset(self) -> str:
        return self.run_id

    @property
    def queue_name(self) -> str:
        return f"{self.deployment}-{self.run_id}"

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_VERIFY_RUN: self.run_id}


def verify_job_marker(deployment: str) -> str:
    """What every verify job's name contains: ``<deployment>--verify-`` (``o2v_core.naming.job_name``)."""
    return f"{job_prefix(deployment)}{VERIFY_PREFIX}"


def is_verify_job(deployment: str, name: str | None) -> bool:
    return bool(name) and str(name).startswith(verify_job_marker(deployment))


@dataclass
class Cleanup:
    """What a clean-up removed, and what it could not (each with the AWS error)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attempt(self, what: str, action: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            action(*args, **kwargs)
        except (ClientError, BotoCoreError) as error:
            self.failed.append(f"{what}: {error}")
            return False
        self.removed.append(what)
        return True


def _verify_jobs(sagemaker: Any, deployment: str, status: str | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"NameContains": verify_job_marker(deployment)}
    if status:
        kwargs["StatusEquals"] = status
    names = []
    for page in sagemaker.get_paginator("list_training_jobs").paginate(**kwargs):
        names += [item["TrainingJobName"] for item in page["TrainingJobSummaries"]
                  if is_verify_job(deployment, item["TrainingJobName"])]
    return names


def _stop_jobs(session: Any, target: Target, done: Cleanup) -> None:
    sagemaker = session.client("sagemaker")
    for name in _verify_jobs(sagemaker, target.deployment, "InProgress"):
        done.attempt(f"training job {name} (stopped)", sagemaker.stop_training_job, TrainingJobName=name)


def _remove_subscriber(session: Any, target: Target, done: Cleanup) -> None:
    sns, sqs = session.client("sns"), session.client("sqs")
    marker = f":{target.deployment}-{VERIFY_PREFIX}"
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=target.topic_arn):
        for item in page.get("Subscriptions", []):
            if marker in str(item.get("Endpoint", "")) and str(item.get("SubscriptionArn", "")).startswith("arn:"):
                done.attempt(f"SNS subscription {item['SubscriptionArn']}", sns.unsubscribe,
                             SubscriptionArn=item["SubscriptionArn"])
    for url in sqs.list_queues(QueueNamePrefix=f"{target.deployment}-{VERIFY_PREFIX}").get("QueueUrls", []):
        done.attempt(f"SQS queue {url}", sqs.delete_queue, QueueUrl=url)


def _remove_objects(session: Any, bucket: str, prefix: str, done: Cleanup) -> None:
    s3 = session.client("s3")
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys (S3 API reference)
        batch = keys[start:start + 1000]
        done.attempt(f"{len(batch)} object(s) under s3://{bucket}/{prefix}", s3.delete_objects, Bucket=bucket,
                     Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})


def _remove_serving(session: Any, target: Target, keep_endpoint: bool, done: Cleanup) -> None:
    sagemaker, ssm = session.client("sagemaker"), session.client("ssm")
    served = (served_record(ssm, target.serving_parameter) or {}).get("trainingJobName")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=target.endpoint_name)
    except ClientError:
        endpoint = None
    configs = [] if endpoint is None else [
        name for name in (endpoint.get("EndpointConfigName"),
                          endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")) if name]
    if not is_verify_job(target.deployment, served) and not any(VERIFY_PREFIX in name for name in configs):
        return  # nothing of ours is served
    if keep_endpoint:
        done.kept.append(f"endpoint {target.endpoint_name} serving {served} (--keep; delete it with "
                         f"`aws sagemaker delete-endpoint --endpoint-name {target.endpoint_name}`)")
        return
    # The record first: the reconciler rebuilds an endpoint from the record, never the reverse here.
    done.attempt(f"served-model record {target.serving_parameter}", ssm.delete_parameter, Name=target.serving_parameter)
    models: list[str] = []
    for config in configs:
        with contextlib.suppress(ClientError):
            variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
            models += [variant["ModelName"] for variant in variants]
    if endpoint is not None:
        done.attempt(f"endpoint {target.endpoint_name}", sagemaker.delete_endpoint, EndpointName=target.endpoint_name)
    for config in configs:
        done.attempt(f"endpoint config {config}", sagemaker.delete_endpoint_config, EndpointConfigName=config)
    for model in dict.fromkeys(models):
        done.attempt(f"model {model}", sagemaker.delete_model, ModelName=model)


def _remove_unserved(session: Any, target: Target, done: Cleanup) -> None:
    """The promoter's models and endpoint configs of verify jobs that the endpoint no longer serves:
    a model replaced by a better attempt, and the rollback check's rejected candidate. Their names
    are ``<prefix>c-verify-...`` / ``<prefix>m-verify-...`` (``serving_resources.serving_name``)."""
    sagemaker = session.client("sagemaker")
    serving: set[str] = set()
    with contextlib.suppress(ClientError):  # no endpoint (deleted above, or never created)
        endpoint = sagemaker.describe_endpoint(EndpointName=target.endpoint_name)
        for config in (endpoint.get("EndpointConfigName"),
                       endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")):
            if config:
                serving.add(config)
                serving.update(variant["ModelName"] for variant in sagemaker.describe_endpoint_config(
                    EndpointConfigName=config)["ProductionVariants"])
    prefix = job_prefix(target.deployment)
    for page in sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=f"{prefix}c-{VERIFY_PREFIX}"):
        for item in page["EndpointConfigs"]:
            name = item["EndpointConfigName"]
            if name.startswith(f"{prefix}c-{VERIFY_PREFIX}") and name not in serving:
                done.attempt(f"endpoint config {name}", sagemaker.delete_endpoint_config, EndpointConfigName=name)
    for page in sagemaker.get_paginator("list_models").paginate(NameContains=f"{prefix}m-{VERIFY_PREFIX}"):
        for item in page["Models"]:
            name = item["ModelName"]
            if name.startswith(f"{prefix}m-{VERIFY_PREFIX}") and name not in serving:
                done.attempt(f"model {name}", sagemaker.delete_model, ModelName=name)


def clean_up(session: Any, target: Target, *, keep_endpoint: bool = False) -> Cleanup:
    """Remove every verify resource of this deployment (this run's and any earlier run's)."""
    done = Cleanup()
    steps: list[Callable[[], None]] = [
        functools.partial(_stop_jobs, session, target, done),
        functools.partial(_remove_subscriber, session, target, done),
        functools.partial(_remove_objects, session, target.launch.dataset_bucket,
                          f"{s3_layout.DATASET_PREFIX}{VERIFY_PREFIX}", done),
        functools.partial(_remove_objects, session, target.launch.artifact_bucket,
                          f"{s3_layout.TRAINING_OUTPUT_PREFIX}{verify_job_marker(target.deployment)}", done),
        functools.partial(_remove_serving, session, target, keep_endpoint, done),
        functools.partial(_remove_unserved, session, target, done),
    ]
    for step in steps:
        try:
            step()
        except (ClientError, BotoCoreError) as error:  # a listing denied: say so, go on with the rest
            done.failed.append(str(error))
    return done
