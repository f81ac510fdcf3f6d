"""Test control of the local SageMaker API: what a test scripts that SageMaker itself decides.

None of this is a SageMaker operation, and nothing here is reachable over HTTP: a test that runs
the API in its own process (``tests/sagemaker_fake.py``) calls it directly, while the code under
test talks to the API over HTTP, as to AWS. In *scripted* mode the API trains and serves nothing:

* a training job is created ``InProgress`` (``Starting``), as CreateTrainingJob leaves it, and stays
  there until :meth:`SageMakerControl.set_status` moves it (SageMaker decides when a job finishes,
  so a test does). ``ModelArtifacts.S3ModelArtifacts``, a required member of DescribeTrainingJob's
  answer (reference 10d: so its presence proves nothing), is
  ``<S3OutputPath>/<job>/output/model.tar.gz`` (the API reference's OutputDataConfig says only that
  "SageMaker creates subfolders for model artifacts"; this layout is the one real jobs show,
  docs/events.md, and the one the local runner uploads to).
  StopTrainingJob goes ``Stopping`` -> ``Stopped`` at once ("When it receives a StopTrainingJob
  request, SageMaker changes the status of the job to Stopping. After SageMaker stops the job, it
  sets the status to Stopped": the StopTrainingJob documentation in botocore's service model).
* an endpoint stays ``Creating`` / ``Updating`` (with ``PendingDeploymentSummary``) until
  :meth:`SageMakerControl.settle` ("When SageMaker receives the request, it sets the endpoint status
  to Creating. After it creates the endpoint, it sets the status to InService": CreateEndpoint's
  documentation, likewise UpdateEndpoint's with ``Updating``). :meth:`SageMakerControl.roll_back` is
  a blue/green deployment whose alarm tripped: SageMaker "initiates a complete rollback to the old
  endpoint" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html),
  which serves its former config, InService.
* :attr:`SageMakerControl.faults` makes the next CreateTrainingJob calls fail with an AWS error code
  (:data:`THROTTLING`, :data:`RESOURCE_LIMIT_EXCEEDED`) or lets a concurrent caller create the same
  name just before the next one (the race no DescribeTrainingJob check can close).
* :attr:`SageMakerControl.calls` counts every operation the API received (server side, so SDK retries
  count); :attr:`SageMakerControl.serving_log` records what CreateEndpoint and UpdateEndpoint accepted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_aws.clients import ApiError
from local_aws.sagemaker.training_jobs import TrainingJob

if TYPE_CHECKING:
    from local_aws.sagemaker.api import LocalSageMaker


@dataclass(frozen=True)
class Fault:
    """An AWS error a test makes the next CreateTrainingJob answer with."""

    code: str
    message: str
    status: int = 400

    def error(self) -> ApiError:
        return ApiError(self.code, self.message, self.status)


# "ThrottlingException: The request was denied due to request throttling. HTTP Status Code: 400"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html). The message is
# the one AWS's JSON services send ("Rate exceeded"); tests match the code, never the sentence.
THROTTLING = Fault("ThrottlingException", "Rate exceeded")
# ResourceLimitExceeded is one of CreateTrainingJob's modelled errors in botocore's service model
# ("You have exceeded an SageMaker resource limit"); the wording of its message has no source.
RESOURCE_LIMIT_EXCEEDED = Fault(
    "ResourceLimitExceeded", "The account-level service limit 'ml.p3.2xlarge for training job usage' is 1 Instances"
)


@dataclass
class Faults:
    """Armed faults, consumed one per CreateTrainingJob call."""

    create_training_job: list[Fault] = field(default_factory=list)
    # The next CreateTrainingJob loses a race: a concurrent caller creates the same name just before.
    lose_create_race: bool = False

    def clear(self) -> None:
        self.create_training_job.clear()
        self.lose_create_race = False


@dataclass
class ServingLog:
    """What CreateEndpoint and UpdateEndpoint accepted, for assertions."""

    endpoint_creates: list[tuple[str, str]] = field(default_factory=list)
    endpoint_updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    retained_variant_properties: list[bool] = field(default_factory=list)

    def record(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "CreateEndpoint":
            self.endpoint_creates.append((params["EndpointName"], params["EndpointConfigName"]))
        elif operation == "UpdateEndpoint":
            self.endpoint_updates.append(
                (params["EndpointName"], params["EndpointConfigName"], dict(params.get("DeploymentConfig") or {}))
            )
            self.retained_variant_properties.append(bool(params.get("RetainAllVariantProperties")))

    def clear(self) -> None:
        self.endpoint_creates.clear()
        self.endpoint_updates.clear()
        self.retained_variant_properties.clear()


SECONDARY = {"InProgress": "Training", "Stopping": "Stopping"}


class ScriptedRunner:
    """A training job that runs nothing: it stays where the test puts it."""

    def __init__(self, job: TrainingJob, *, lock: threading.Lock, on_change: Any) -> None:
        self.job = job
        self.lock = lock
        self.on_change = on_change

    def set(self, status: str, secondary: str | None = None, failure_reason: str | None = None) -> None:
        now = time.time()
        with self.lock:
            job = self.job
            secondary = secondary or SECONDARY.get(status, status)
            if job.transitions and job.transitions[-1].get("EndTime") is None:
                job.transitions[-1]["EndTime"] = now
            job.transitions.append({"Status": secondary, "StartTime": now,
                                    "StatusMessage": f"set by the test: {status}"})
            job.status, job.secondary, job.modified = status, secondary, now
            if status == "InProgress" and job.started is None and secondary != "Starting":
                job.started = now
            if status not in ("InProgress", "Stopping"):
                job.transitions[-1]["EndTime"] = now
                job.ended = now
                job.started = job.started or now
            if failure_reason is not None:
                job.failure_reason = failure_reason
            if job.model_artifact is None:  # a required member of DescribeTrainingJob's answer (10d)
                output = str(job.request["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
                job.model_artifact = f"{output}/{job.name}/output/model.tar.gz"
        self.on_change(job)

    def start(self) -> None:
        self.set("InProgress", "Starting")

    def stop(self, reason: str = "Stopped") -> None:
        with self.lock:
            if self.job.status != "InProgress":
                return
        self.set("Stopping")
        self.set("Stopped", reason if reason == "MaxRuntimeExceeded" else "Stopped")

    def join(self, timeout: float) -> None:
        return


class SageMakerControl:
    """The test-control surface of one scripted :class:`LocalSageMaker`."""

    def __init__(self, api: LocalSageMaker) -> None:
        self.api = api
        self.faults = Faults()
        self.calls: Counter[str] = Counter()
        self.serving_log = ServingLog()

    def set_status(self, name: str, status: str, secondary: str | None = None,
                   failure_reason: str | None = None) -> None:
        """Move a scripted training job to ``status`` (``secondary`` defaults as SageMaker pairs them)."""
        with self.api.lock:
            runner = self.api.runners.get(name)
        if not isinstance(runner, ScriptedRunner):
            raise KeyError(f"no scripted training job {name!r}")
        runner.set(status, secondary, failure_reason)

    def settle(self) -> None:
        """Finish every endpoint creation and update: the pending config becomes the served one."""
        self.api.endpoints.settle()

    def roll_back(self) -> None:
        """Every updating endpoint's alarm tripped during the bake: back to its former config."""
        self.api.endpoints.roll_back()

    def reset(self) -> None:
        """Forget every job, tag, model, config and endpoint, and every fault, count and log entry."""
        self.api.reset()
        self.faults.clear()
        self.calls.clear()
        self.serving_log.clear()
