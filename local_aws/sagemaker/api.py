"""A local SageMaker API: the operations this project uses, over SageMaker's own wire protocols.

boto3 reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``;
callers (the control-plane handlers, the launcher, ``o2v embed``) need no local branch.

* ``sagemaker`` (JSON 1.1, ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``):
  CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob, AddTags, ListTags,
  DeleteTags, CreateModel, DescribeModel, DeleteModel, ListModels, CreateEndpointConfig,
  DescribeEndpointConfig, DeleteEndpointConfig, ListEndpointConfigs, CreateEndpoint, UpdateEndpoint,
  DescribeEndpoint, ListEndpoints, DeleteEndpoint, CreateTransformJob, DescribeTransformJob,
  StopTransformJob, ListTransformJobs. Every request is checked first against
  SageMaker's contract (:mod:`local_aws.sagemaker.contract`: the whole botocore service
  model, and section 10a's built-in-algorithm rules), the same check the tests' moto server
  applies; errors use SageMaker's codes (``ValidationException``, ``ResourceInUse``,
  ``ResourceNotFound``).
* CreateTrainingJob runs what one local host can: ``File`` input mode (the algorithm's and each
  channel's ``InputMode``, as the SageMaker Python SDK sends it), ``InstanceCount`` 1 and a
  ``GZIP`` model artifact (``OutputDataConfig.CompressionType``, the SDK's default). A request
  for anything else (Pipe or FastFile input, several instances, an uncompressed artifact) is
  refused up front, not run differently. DescribeTrainingJob echoes the request's members.
* ``sagemaker-runtime`` (REST-JSON, ``POST /endpoints/<name>/invocations``): InvokeEndpoint.

Training jobs are in :mod:`local_aws.sagemaker.training_jobs` (and ``training_job_record``),
batch transform jobs in :mod:`local_aws.sagemaker.transform_jobs` (and ``transform_job_record``),
endpoints in :mod:`local_aws.sagemaker.endpoints`, the HTTP side of both protocols in
:mod:`local_aws.sagemaker.wire`. Every call is appended to ``api-calls.jsonl`` in the state
directory (operation, resource, time, the caller's user agent), a local stand-in for CloudTrail.

Run as ``python -m local_aws.sagemaker.api --state-dir DIR --ready-file PATH``, with
``AWS_ENDPOINT_URL`` pointing at the local moto server (S3, Logs, CloudWatch, EventBridge).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.session
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from local_aws import procs
from local_aws.clients import ApiError, Clients, page, select_jobs, tags_dict
from local_aws.sagemaker.contract import ContractViolation, check_request
from local_aws.sagemaker.endpoints import EndpointManager
from local_aws.sagemaker.inference_servers import server_command
from local_aws.sagemaker.training_job_record import TrainingJob, state_change_entry
from local_aws.sagemaker.training_jobs import JobRunner, Runner, trainer_command
from local_aws.sagemaker.transform_job_record import TransformJob
from local_aws.sagemaker.transform_job_record import state_change_entry as transform_state_change_entry
from local_aws.sagemaker.transform_jobs import TransformJobRunner, TransformJobs, TransformRunner
from local_aws.sagemaker.wire import make_handler

# A runner factory: (the job, the API's lock, the state-change callback) -> the job's runner.
RunnerFactory = Callable[[TrainingJob, threading.Lock, Callable[[TrainingJob], None]], Runner]
# A call listener: (operation, request, the error it answered or None), after every known operation.
CallListener = Callable[[str, dict[str, Any], "ApiError | None"], None]
# A transform runner factory: (the job, its model's container, the API's lock, the state-change callback).
TransformRunnerFactory = Callable[[TransformJob, dict[str, Any], threading.Lock, Callable[[TransformJob], None]],
                                  TransformRunner]


class LocalSageMaker:
    """The state and operations behind the local SageMaker API."""

    def __init__(self, clients: Clients, state_dir: Path, *, stop_grace_seconds: float = 20.0,
                 threads: int = 1, runner_factory: RunnerFactory | None = None, deploy: bool = True,
                 emit_events: bool = True, transform_runner_factory: TransformRunnerFactory | None = None) -> None:
        """``runner_factory``: what runs a training job (default: the local trainer, as a subprocess);
        ``deploy``: start an inference server for each endpoint (else deployments wait for
        ``endpoints.settle``); both are how the tests' scripted mode (:mod:`local_aws.sagemaker.scripted`)
        wraps this API. ``emit_events``: put SageMaker's state-change events on the default bus."""
        self.clients = clients
        self.runs_jobs = runner_factory is None  # the local trainer runs them: the host must honour the request
        self.runner_factory = runner_factory
        self.emit_events = emit_events
        self.listeners: list[CallListener] = []
        self.state_dir = state_dir
        self.lock = threading.Lock()
        self.jobs: dict[str, TrainingJob] = {}
        self.runners: dict[str, Runner] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.stop_grace_seconds = stop_grace_seconds
        self.trainer_command = trainer_command(threads)
        self.endpoints = EndpointManager(clients, state_dir, lock=self.lock, server_command=server_command(threads),
                                         deploy=deploy)
        self.model = botocore.session.get_session().get_service_model("sagemaker")
        self._server_command = server_command(threads)
        self._transform_runner_factory = transform_runner_factory
        self.transforms = TransformJobs(clients, lock=self.lock, describe_model=self.endpoints.describe_model,
                                        runner_factory=self._new_transform_runner,
                                        runs_jobs=transform_runner_factory is None)
        self._audit_lock = threading.Lock()
        self._audit = (state_dir / "api-calls.jsonl").open("a", encoding="utf-8")
        if self.runs_jobs:  # its jobs write there; a scripted job writes nothing (the test writes its logs)
            with contextlib.suppress(clients.logs.exceptions.ResourceAlreadyExistsException):
                clients.logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateTrainingJob": self.create_training_job,
            "DescribeTrainingJob": lambda p: self._job(p["TrainingJobName"]).describe(),
            "ListTrainingJobs": self.list_training_jobs,
            "StopTrainingJob": self.stop_training_job,
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
            "DeleteTags": self.delete_tags,
            "CreateModel": self._tagged(self.endpoints.create_model, "ModelArn"),
            "DescribeModel": lambda p: self.endpoints.describe_model(p["ModelName"]),
            "DeleteModel": lambda p: self.endpoints.delete_model(p["ModelName"]),
            "ListModels": self.endpoints.list_models,
            "CreateEndpointConfig": self._tagged(self.endpoints.create_endpoint_config, "EndpointConfigArn"),
            "DescribeEndpointConfig": lambda p: self.endpoints.describe_endpoint_config(p["EndpointConfigName"]),
            "DeleteEndpointConfig": lambda p: self.endpoints.delete_endpoint_config(p["EndpointConfigName"]),
            "ListEndpointConfigs": self.endpoints.list_endpoint_configs,
            "CreateEndpoint": self._tagged(self.endpoints.create_endpoint, "EndpointArn"),
            "UpdateEndpoint": self.endpoints.update_endpoint,
            "DescribeEndpoint": lambda p: self.endpoints.describe_endpoint(p["EndpointName"]),
            "ListEndpoints": self.endpoints.list_endpoints,
            "DeleteEndpoint": lambda p: self.endpoints.delete_endpoint(p["EndpointName"]),
            "CreateTransformJob": self._tagged(self.transforms.create, "TransformJobArn"),
            "DescribeTransformJob": self.transforms.describe,
            "StopTransformJob": self.transforms.stop,
            # "The default value is 10" (ListTransformJobs' MaxResults).
            "ListTransformJobs": lambda p: page(self.transforms.list(p), p, "TransformJobSummaries", 10),
        }

    # -- dispatch

    def call(self, operation: str, params: dict[str, Any], user_agent: str = "") -> dict[str, Any]:
        handler = self.operations.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException",
                           f"local SageMaker does not implement {operation}; it implements "
                           + ", ".join(sorted(self.operations)))
        error: ApiError | None = None
        try:
            try:
                check_request(operation, params)
            except ContractViolation as violation:
                raise ApiError(violation.code, violation.message) from None
            return handler(params)
        except ApiError as caught:
            error = caught
            raise
        finally:
            self.audit(operation, params, user_agent, error)
            for listener in self.listeners:
                listener(operation, params, error)

    def audit(self, operation: str, params: dict[str, Any], user_agent: str, error: ApiError | None) -> None:
        resource = next((str(params[key]) for key in ("TrainingJobName", "TransformJobName", "EndpointName",
                                                      "ModelName", "EndpointConfigName", "ResourceArn")
                         if key in params), "")
        record = {"time": time.time(), "operation": operation, "resource": resource, "userAgent": user_agent,
                  "error": error.code if error else None}
        if operation == "CreateTrainingJob":
            record["hyperParameters"] = params.get("HyperParameters", {})
        with self._audit_lock:
            self._audit.write(json.dumps(record) + "\n")
            self._audit.flush()

    def _tagged(self, create: Callable[[dict[str, Any]], dict[str, Any]],
                arn_key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def wrapped(params: dict[str, Any]) -> dict[str, Any]:
            result = create(params)
            with self.lock:  # a resource created without tags has none (ListTags: an empty list)
                self.tags.setdefault(result[arn_key], {}).update(tags_dict(params.get("Tags")))
            return result

        return wrapped

    # -- training jobs

    def _job(self, name: str) -> TrainingJob:
        with self.lock:
            job = self.jobs.get(name)
        if job is None:
            raise ApiError("ValidationException", "Requested resource not found.")
        return job

    def create_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]  # its pattern and length: checked by the contract already
        if self.runs_jobs:  # a scripted job runs nothing, so any host settings will do
            _check_runnable(params)
        arn = f"arn:aws:sagemaker:{self.clients.region}:{self.clients.account}:training-job/{name.lower()}"
        root = self.state_dir / "jobs" / name / "opt_ml"
        with self.lock:
            # "Training job names must be unique within an AWS account and region" (CreateTrainingJob's
            # TrainingJobName in botocore's service model); a duplicate is ResourceInUse, one of the
            # operation's modelled errors. The check and the insert hold one lock, as the service's do.
            if name in self.jobs:
                raise ApiError("ResourceInUse", f"Training job names must be unique within an AWS account and "
                                                f"region, and a training job with this name already exists ({arn})")
            runner = self._new_job(params, arn, root)
        runner.start()
        return {"TrainingJobArn": arn}

    def _new_job(self, params: dict[str, Any], arn: str, root: Path) -> Runner:
        """Record a new job and its runner (the caller holds the lock and starts the runner)."""
        job = TrainingJob(request=json.loads(json.dumps(params)), arn=arn, root=root,
                          tags=tags_dict(params.get("Tags")))
        self.jobs[job.name] = job
        self.tags[arn] = dict(job.tags)
        on_change = self._emit if self.emit_events else _unobserved
        runner: Runner
        if self.runner_factory is not None:
            runner = self.runner_factory(job, self.lock, on_change)
        else:
            runner = JobRunner(job, self.clients, on_change=on_change, lock=self.lock,
                               trainer_command=self.trainer_command, stop_grace_seconds=self.stop_grace_seconds)
        self.runners[job.name] = runner
        return runner

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            jobs = list(self.jobs.values())
        jobs = select_jobs(jobs, params, default_order="Ascending")
        with self.lock:
            summaries = [job.summary() for job in jobs]
        return page(summaries, params, "TrainingJobSummaries", 10)

    def stop_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]
        self._job(name)
        with self.lock:
            runner = self.runners[name]
            status = runner.job.status
        if status not in ("InProgress", "Stopping"):
            raise ApiError("ValidationException",
                           f"The request was rejected because the training job is in status {status}.")
        runner.stop()
        return {}

    def _emit(self, job: TrainingJob) -> None:
        """Send SageMaker's state-change event for ``job`` to the local default bus."""
        with self.lock:
            entry = state_change_entry(job, self.clients.region)
        self._put(entry, job.name)

    # -- transform jobs

    def _new_transform_runner(self, job: TransformJob, model: dict[str, Any]) -> TransformRunner:
        on_change = self._emit_transform if self.emit_events else _unobserved_transform
        if self._transform_runner_factory is not None:
            return self._transform_runner_factory(job, model, self.lock, on_change)
        return TransformJobRunner(job, self.clients, container=model["PrimaryContainer"], lock=self.lock,
                                  on_change=on_change, server_command=self._server_command, state_dir=self.state_dir)

    def _emit_transform(self, job: TransformJob) -> None:
        """Send SageMaker's transform job state-change event for ``job`` to the local default bus."""
        with self.lock:
            entry = transform_state_change_entry(job)
        self._put(entry, job.name)

    def _put(self, entry: dict[str, Any], name: str) -> None:
        try:
            result = self.clients.events.put_events(Entries=[entry])  # type: ignore[list-item]
            if result.get("FailedEntryCount"):
                print(f"local SageMaker: state-change event of {name} rejected: {result['Entries']}",
                      file=sys.stderr)
        except Exception as error:
            print(f"local SageMaker: could not put the state-change event of {name}: {error}", file=sys.stderr)

    # -- tags

    def _resource_exists(self, arn: str) -> bool:
        return arn in self.tags

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.tags.setdefault(params["ResourceArn"], {}).update(tags_dict(params["Tags"]))
            job = next((job for job in self.jobs.values() if job.arn == params["ResourceArn"]), None)
            if job is not None:
                job.tags.update(tags_dict(params["Tags"]))
        return {"Tags": params["Tags"]}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            tags = self.tags.get(params["ResourceArn"])
        if tags is None:
            raise ApiError("ValidationException", f"Resource {params['ResourceArn']} not found.")
        items = [{"Key": key, "Value": value} for key, value in tags.items()]
        return page(items, params, "Tags", 50)  # ListTags' MaxResults has min 50 (service model)

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            tags = self.tags.get(params["ResourceArn"], {})
            for key in params["TagKeys"]:
                tags.pop(key, None)
        return {}

    # -- lifecycle

    def _stop_jobs(self) -> None:
        """Stop every running job (SIGTERM, grace, SIGKILL) and every inference server."""
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            process = runner.job.process
            if process is not None:
                procs.stop_process(process, grace_seconds=5)
        for runner in runners:
            runner.join(timeout=10)
        self.transforms.shutdown()
        self.endpoints.shutdown()

    def reset(self) -> None:
        """Forget every job, tag and serving resource (the scripted mode's reset)."""
        self._stop_jobs()
        with self.lock:
            self.jobs.clear()
            self.runners.clear()
            self.tags.clear()
        self.transforms.reset()
        self.endpoints.reset()

    def shutdown(self) -> None:
        self._stop_jobs()
        with self._audit_lock:
            self._audit.close()


def _unobserved(job: TrainingJob) -> None:
    return


def _unobserved_transform(job: TransformJob) -> None:
    return


def _check_runnable(params: dict[str, Any]) -> None:
    """Refuse a CreateTrainingJob request whose settings the local host would not honour."""
    unsupported: list[str] = []
    modes = {"AlgorithmSpecification.TrainingInputMode": params.get("AlgorithmSpecification", {}).get(
        "TrainingInputMode", "File")}
    modes.update({f"InputDataConfig[{channel.get('ChannelName')}].InputMode": channel.get("InputMode", "File")
                  for channel in params.get("InputDataConfig", [])})
    unsupported += [f"{where} {mode} (only File)" for where, mode in modes.items() if mode != "File"]
    count = params.get("ResourceConfig", {}).get("InstanceCount", 1)
    if count != 1:
        unsupported.append(f"ResourceConfig.InstanceCount {count} (only 1)")
    compression = params.get("OutputDataConfig", {}).get("CompressionType", "GZIP")
    if compression != "GZIP":
        unsupported.append(f"OutputDataConfig.CompressionType {compression} (only GZIP)")
    if unsupported:
        raise ApiError("ValidationException", "the local SageMaker API cannot run " + "; ".join(unsupported))


def make_clients() -> Clients:
    """boto3 clients for the local moto services (from ``AWS_ENDPOINT_URL``)."""
    session = boto3.session.Session()
    region = session.region_name or "us-east-1"
    account = session.client("sts").get_caller_identity()["Account"]
    return Clients(
        s3=session.client("s3"),
        logs=session.client("logs"),
        cloudwatch=session.client("cloudwatch"),
        events=session.client("events"),
        account=account,
        region=region,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.sagemaker.api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, required=True, help="jobs, endpoints and logs go here")
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write the URL once listening")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--stop-grace-seconds", type=float, default=20.0,
                        help="StopTrainingJob: seconds between SIGTERM and SIGKILL (SageMaker: 120)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each training job and inference server (default: 1)")
    args = parser.parse_args(argv)

    args.state_dir.mkdir(parents=True, exist_ok=True)
    api = LocalSageMaker(make_clients(), args.state_dir, stop_grace_seconds=args.stop_grace_seconds,
                         threads=args.threads)
    server = ThreadingHTTPServer((procs.LOOPBACK, args.port), make_handler(api))
    server.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    procs.write_ready_file(args.ready_file, {"url": f"http://{host!s}:{port}", "pid": os.getpid()})
    stop.wait()
    server.shutdown()
    api.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
