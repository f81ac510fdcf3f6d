"""Make moto 5.2.5's fake SageMaker behave like AWS where our code depends on it.

These patch the *fake AWS* (moto's backend), never our code. Each one says what moto does by
itself, what AWS does, and where AWS documents it:

* **StopTrainingJob** is not implemented in moto (NotImplementedError). AWS stops an
  ``InProgress`` job (``Stopping`` -> ``Stopped``) and answers ``ValidationException`` for a job
  that is not in progress. The fake goes straight to ``Stopped``.
* **Duplicate job names**: moto's CreateTrainingJob silently *replaces* an existing job of the
  same name. AWS refuses: training job names are unique per account and region, and a duplicate
  gets ``ResourceInUse``. The fake enforces that atomically (a lock), as AWS does server-side.
  ``UNIQUE_NAMES.enabled = False`` shows moto's own behaviour (see the test that documents it).
* **The request contract**: moto checks almost none of SageMaker's constraints. Every SageMaker
  request is checked first against SageMaker's contract, the one the local SageMaker API applies
  (``training.local_cloud.sagemaker_contract``: the whole service model, and section 10a's refusal
  of caller-supplied MetricDefinitions for a built-in image).
* **MetricDefinitions**: moto overwrites the request's ``AlgorithmSpecification.MetricDefinitions``
  with its own ``test:dcg`` example. AWS (shared/reference/object2vec.md section 10a) answers
  DescribeTrainingJob of a built-in image's job with the algorithm's own definitions, and stores
  what was asked for other images; so does the fake.
* **InProgress**: moto completes every job at once. :func:`set_status` puts a job into the state
  AWS shows while it trains (only the status fields change).
* **Faults**: :data:`FAULTS` makes the next CreateTrainingJob calls fail with an AWS error code
  (``ThrottlingException``, ``ResourceLimitExceeded``), lets a "concurrent caller" create the same
  job name just before the next CreateTrainingJob (the race a DescribeTrainingJob check cannot
  close), or makes the next PutEvents entries come back failed (``FailedEntryCount`` > 0).

The ``cloud`` fixture installs the patches for one test and removes them afterwards (the moto
server runs in this process, so the patched classes are the ones serving HTTP requests).
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.events.models import EventsBackend
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from tests.moto_sagemaker_contract import contract_checked
from training.local_cloud.sagemaker_contract import described_algorithm_specification

ACCOUNT = "123456789012"
REGION = "us-east-1"


class ThrottlingException(ServiceException):
    code = "ThrottlingException"
    message = "Rate exceeded"


class ResourceLimitExceeded(ServiceException):
    code = "ResourceLimitExceeded"
    message = "The account-level service limit 'ml.p3.2xlarge for training job usage' is 1 Instances"


@dataclass
class UniqueNames:
    enabled: bool = True


@dataclass
class Faults:
    """Armed faults, consumed one per call."""

    create_training_job: list[type[ServiceException]] = field(default_factory=list)
    put_events_failures: int = 0
    # The next CreateTrainingJob loses a race: a concurrent caller creates the same name just before.
    lose_create_race: bool = False


UNIQUE_NAMES = UniqueNames()
FAULTS = Faults()
CALLS: Counter[str] = Counter()  # server-side count of CreateTrainingJob / StopTrainingJob calls
_lock = threading.Lock()
_installed: list[Callable[[], None]] = []


def reset() -> None:
    UNIQUE_NAMES.enabled = True
    FAULTS.create_training_job.clear()
    FAULTS.put_events_failures = 0
    FAULTS.lose_create_race = False
    CALLS.clear()


def backend() -> SageMakerModelBackend:
    return sagemaker_backends[ACCOUNT][REGION]


def training_job(name: str) -> FakeTrainingJob:
    return backend().training_jobs[name]


def set_status(name: str, status: str, secondary: str | None = None, failure_reason: str | None = None) -> None:
    job = training_job(name)
    job.training_job_status = status
    job.secondary_status = secondary or {"InProgress": "Training"}.get(status, status)
    job.last_modified_time = utcnow()
    if failure_reason is not None:
        # a new attribute of the fake job becomes DescribeTrainingJob's FailureReason
        job.failure_reason = failure_reason  # type: ignore[attr-defined]


def _create_training_job(original: Callable[..., FakeTrainingJob]) -> Callable[..., FakeTrainingJob]:
    def create(self: SageMakerModelBackend, **kwargs: Any) -> FakeTrainingJob:
        name = kwargs["training_job_name"]
        with _lock:
            CALLS["CreateTrainingJob"] += 1
            if FAULTS.create_training_job:
                raise FAULTS.create_training_job.pop(0)()
            if FAULTS.lose_create_race:
                FAULTS.lose_create_race = False
                original(self, **copy.deepcopy(kwargs))  # the concurrent caller's job
            if UNIQUE_NAMES.enabled and name in self.training_jobs:
                arn = self.training_jobs[name].arn
                raise ResourceInUseException(
                    "Training job names must be unique within an AWS account and region, and a training job "
                    f"with this name already exists ({arn})"
                )
            # The contract (tests/moto_sagemaker_contract.py) has refused a built-in image with
            # MetricDefinitions already; Describe answers as SageMaker does (section 10a).
            requested = copy.deepcopy(kwargs["algorithm_specification"] or {})
            job = original(self, **kwargs)
            job.algorithm_specification.pop("MetricDefinitions", None)
            job.algorithm_specification.update(described_algorithm_specification(requested))
            return job

    return create


def _stop_training_job(self: SageMakerModelBackend, training_job_name: str) -> None:
    with _lock:
        CALLS["StopTrainingJob"] += 1
        job = self.training_jobs.get(training_job_name)
        if job is None:
            raise ValidationError(message=f"Could not find training job '{training_job_name}'.")
        if job.training_job_status != "InProgress":
            raise ValidationError(
                message=f"The request was rejected because the training job is in status {job.training_job_status}."
            )
        job.training_job_status = "Stopped"
        job.secondary_status = "Stopped"
        job.last_modified_time = job.training_end_time = utcnow()


def _stop_training_job_response(self: SageMakerResponse) -> ActionResult:
    _stop_training_job(self.sagemaker_backend, self._get_param("TrainingJobName"))
    return ActionResult({})


def _put_events(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with _lock:
            if FAULTS.put_events_failures:
                FAULTS.put_events_failures -= 1
                return [
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "injected by the test"} for _ in events
                ]
        return original(self, events)

    return put_events


def install() -> None:
    """Patch moto's classes (idempotent); :func:`uninstall` restores them."""
    if _installed:
        return
    patches: list[tuple[type[Any], str, Any]] = [
        (SageMakerModelBackend, "create_training_job",
         _create_training_job(SageMakerModelBackend.create_training_job)),
        (SageMakerModelBackend, "stop_training_job", _stop_training_job),
        (SageMakerResponse, "stop_training_job", _stop_training_job_response),
        (SageMakerResponse, "call_action", contract_checked(SageMakerResponse.call_action)),
        (EventsBackend, "put_events", _put_events(EventsBackend.put_events)),
    ]
    missing = object()
    for owner, name, replacement in patches:
        before = owner.__dict__.get(name, missing)
        setattr(owner, name, replacement)

        def restore(
            owner: type[Any] = owner, name: str = name, before: object = before, missing: object = missing
        ) -> None:
            if before is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, before)

        _installed.append(restore)


def uninstall() -> None:
    while _installed:
        _installed.pop()()


@contextmanager
def moto_duplicate_names() -> Iterator[None]:
    """Within the block, CreateTrainingJob behaves as moto 5.2.5 does by itself."""
    UNIQUE_NAMES.enabled = False
    try:
        yield
    finally:
        UNIQUE_NAMES.enabled = True
