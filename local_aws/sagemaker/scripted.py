"""Scripted mode: the local SageMaker API wrapped for tests, which script what SageMaker itself decides.

:class:`ScriptedSageMaker` wraps :class:`~local_aws.sagemaker.api.LocalSageMaker` (the API stays
the same; the wrapper chooses its job runner, keeps its endpoints from deploying, and listens to its
calls). None of its controls is a SageMaker operation, and none is reachable over HTTP: a test (or
the bench) that runs the API in its own process (``tests/support/sagemaker_fake.py``, ``bench/scale.py``)
calls them directly, while the code under test talks to the API over HTTP (:func:`serving`), as to
AWS. In scripted mode the API trains and serves nothing:

* a training job is created ``InProgress`` (``Starting``), as CreateTrainingJob leaves it, and stays
  there until :meth:`ScriptedSageMaker.set_status` moves it (SageMaker decides when a job finishes,
  so a test does). ``ModelArtifacts.S3ModelArtifacts``, a required member of DescribeTrainingJob's
  answer (reference 10d: so its presence proves nothing), is
  ``<S3OutputPath>/<job>/output/model.tar.gz`` (the API reference's OutputDataConfig says only that
  "SageMaker creates subfolders for model artifacts"; this layout is the one real jobs show,
  docs/events.md, and the one the local runner uploads to).
  StopTrainingJob goes ``Stopping`` -> ``Stopped`` at once ("When it receives a StopTrainingJob
  request, SageMaker changes the status of the job to Stopping. After SageMaker stops the job, it
  sets the status to Stopped": the StopTrainingJob documentation in botocore's service model).
* a transform job is created ``InProgress`` and stays there until
  :meth:`ScriptedSageMaker.set_transform_status` moves it (to ``Completed``, or ``Failed`` with a
  ``FailureReason``: SageMaker decides, so a test does); StopTransformJob goes ``Stopping`` ->
  ``Stopped`` at once ("When Amazon SageMaker receives a StopTransformJob request, the status of the
  job changes to Stopping. After Amazon SageMaker stops the job, the status is set to Stopped":
  StopTransformJob's documentation in botocore's service model). The request is still checked in
  full (the service model, and the documented payload rules of
  :func:`local_aws.sagemaker.transform_jobs.check_request`), and the model must exist.
* an endpoint stays ``Creating`` / ``Updating`` (with ``PendingDeploymentSummary``) until
  :meth:`ScriptedSageMaker.settle` ("When SageMaker receives the request, it sets the endpoint status
  to Creating. After it creates the endpoint, it sets the status to InService": CreateEndpoint's
  documentation, likewise UpdateEndpoint's with ``Updating``). :meth:`ScriptedSageMaker.roll_back` is
  a blue/green deployment whose alarm tripped: SageMaker "initiates a complete rollback to the old
  endpoint" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html),
  which serves its former config, InService.
* :attr:`ScriptedSageMaker.faults` makes the next CreateTrainingJob calls fail with an AWS error code
  (:data:`THROTTLING`, :data:`RESOURCE_LIMIT_EXCEEDED`) or lets a concurrent caller create the same
  name just before the next one (the race no DescribeTrainingJob check can close).
* :attr:`ScriptedSageMaker.calls` counts every operation the API received (server side, so SDK retries
  count); :attr:`ScriptedSageMaker.serving_log` records what CreateEndpoint and UpdateEndpoint accepted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from local_aws import procs
from local_aws.clients import ApiError, Clients
from local_aws.sagemaker.api import LocalSageMaker
from local_aws.sagemaker.training_job_record import TrainingJob
from local_aws.sagemaker.transform_job_record import TransformJob
from local_aws.sagemaker.wire import make_handler

ACCOUNT = "123456789012"  # what moto's STS answers, so the scripted API's ARNs are moto's account
REGION = "us-east-1"


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

    def __init__(self, job: TrainingJob, *, lock: threading.Lock,
                 on_change: Callable[[TrainingJob], None]) -> None:
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


class ScriptedTransformRunner:
    """A transform job that runs nothing: it stays where the test puts it."""

    def __init__(self, job: TransformJob, *, lock: threading.Lock,
                 on_change: Callable[[TransformJob], None]) -> None:
        self.job = job
        self.lock = lock
        self.on_change = on_change

    def set(self, status: str, failure_reason: str | None = None) -> None:
        now = time.time()
        with self.lock:
            job = self.job
            job.status, job.modified = status, now
            if job.started is None:
                job.started = now
            if job.finished:
                job.ended = now
            if failure_reason is not None:
                job.failure_reason = failure_reason
        self.on_change(job)

    def start(self) -> None:
        self.on_change(self.job)

    def stop(self) -> None:
        with self.lock:
            if self.job.status != "InProgress":
                return
            self.job.stop_requested.set()
        self.set("Stopping")
        self.set("Stopped")

    def join(self, timeout: float) -> None:
        return


class ScriptedSageMaker:
    """The local SageMaker API in scripted mode: the API itself, wrapped with the test's controls.

    The wrapped :class:`LocalSageMaker` runs each job with a :class:`ScriptedRunner`, starts no
    inference server, and tells :meth:`_on_call` about every call; CreateTrainingJob goes through
    :meth:`_create_training_job` first, which applies the armed :attr:`faults`.
    """

    def __init__(self, clients: Clients, state_dir: Path, *, emit_events: bool = False,
                 faults: Faults | None = None, calls: Counter[str] | None = None,
                 serving_log: ServingLog | None = None) -> None:
        self.faults = Faults() if faults is None else faults
        self.calls: Counter[str] = Counter() if calls is None else calls
        self.serving_log = ServingLog() if serving_log is None else serving_log
        self.api = LocalSageMaker(clients, state_dir, runner_factory=_scripted_runner, deploy=False,
                                  emit_events=emit_events, transform_runner_factory=_scripted_transform_runner)
        self.api.listeners.append(self._on_call)
        self._create = self.api.operations["CreateTrainingJob"]
        self.api.operations["CreateTrainingJob"] = self._create_training_job

    def _on_call(self, operation: str, params: dict[str, Any], error: ApiError | None) -> None:
        self.calls[operation] += 1  # server side, so SDK retries count
        if error is None:
            self.serving_log.record(operation, params)

    def _create_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.api.lock:
            if self.faults.create_training_job:
                raise self.faults.create_training_job.pop(0).error()
            lose_race, self.faults.lose_create_race = self.faults.lose_create_race, False
        if lose_race:  # a concurrent caller's request for the same name wins, just before this one
            self._create(params)
        return self._create(params)

    def set_status(self, name: str, status: str, secondary: str | None = None,
                   failure_reason: str | None = None) -> None:
        """Move a scripted training job to ``status`` (``secondary`` defaults as SageMaker pairs them)."""
        with self.api.lock:
            runner = self.api.runners.get(name)
        if not isinstance(runner, ScriptedRunner):
            raise KeyError(f"no scripted training job {name!r}")
        runner.set(status, secondary, failure_reason)

    def set_transform_status(self, name: str, status: str, failure_reason: str | None = None) -> None:
        """Move a scripted transform job to ``status`` (``Completed``, ``Failed``, ...)."""
        with self.api.lock:
            runner = self.api.transforms.runners.get(name)
        if not isinstance(runner, ScriptedTransformRunner):
            raise KeyError(f"no scripted transform job {name!r}")
        runner.set(status, failure_reason)

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

    def shutdown(self) -> None:
        self.api.shutdown()


def _scripted_runner(job: TrainingJob, lock: threading.Lock,
                     on_change: Callable[[TrainingJob], None]) -> ScriptedRunner:
    return ScriptedRunner(job, lock=lock, on_change=on_change)


def _scripted_transform_runner(job: TransformJob, model: dict[str, Any], lock: threading.Lock,
                               on_change: Callable[[TransformJob], None]) -> ScriptedTransformRunner:
    return ScriptedTransformRunner(job, lock=lock, on_change=on_change)


@contextlib.contextmanager
def serving(scripted: ScriptedSageMaker) -> Iterator[str]:
    """Serve ``scripted`` over HTTP on a free loopback port for the block; its URL."""
    server = ThreadingHTTPServer((procs.LOOPBACK, 0), make_handler(scripted.api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        scripted.shutdown()
        server.server_close()


def moto_clients(moto_endpoint: str | None) -> Clients:
    """Clients of the moto services at ``moto_endpoint`` (None: boto3's default, e.g. under mock_aws)."""
    kwargs = {"endpoint_url": moto_endpoint, "region_name": REGION, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
    return Clients(s3=boto3.client("s3", **kwargs), logs=boto3.client("logs", **kwargs),  # type: ignore[call-overload]
                   cloudwatch=boto3.client("cloudwatch", **kwargs),  # type: ignore[call-overload]
                   events=boto3.client("events", **kwargs), account=ACCOUNT, region=REGION)  # type: ignore[call-overload]
