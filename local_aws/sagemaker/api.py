"""A local SageMaker API: the operations this project uses, over SageMaker's own wire protocols.

boto3 reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``;
callers (the control-plane handlers, the launcher, ``o2v embed``) need no local branch.

* ``sagemaker`` (JSON 1.1, ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``):
  CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob, AddTags, ListTags,
  DeleteTags, CreateModel, DescribeModel, DeleteModel, CreateEndpointConfig,
  DescribeEndpointConfig, DeleteEndpointConfig, CreateEndpoint, UpdateEndpoint,
  DescribeEndpoint, ListEndpoints, DeleteEndpoint. Every request is checked first against
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

Training jobs are in :mod:`local_aws.sagemaker.training_jobs`, endpoints in
:mod:`local_aws.sagemaker.endpoints`. Every call is appended to ``api-calls.jsonl`` in the state
directory (operation, resource, time, the caller's user agent), a local stand-in for CloudTrail.

Run as ``python -m local_aws.sagemaker.api --state-dir DIR --ready-file PATH``, with
``AWS_ENDPOINT_URL`` pointing at the local moto server (S3, Logs, CloudWatch, EventBridge).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.session
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from local_aws import procs
from local_aws.clients import ApiError, Clients, page, tags_dict
from local_aws.sagemaker.contract import ContractViolation, check_request
from local_aws.sagemaker.endpoints import EndpointManager, server_command
from local_aws.sagemaker.scripted import SageMakerControl, ScriptedRunner
from local_aws.sagemaker.training_jobs import (
    JobRunner,
    TrainingJob,
    state_change_entry,
    trainer_command,
)

INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")


class LocalSageMaker:
    """The state and operations behind the local SageMaker API."""

    def __init__(self, clients: Clients, state_dir: Path, *, stop_grace_seconds: float = 20.0,
                 threads: int = 1, scripted: bool = False, emit_events: bool = True) -> None:
        """``scripted``: train and serve nothing; jobs and endpoints move only when a test says so
        (:mod:`local_aws.sagemaker.scripted`, :attr:`control`). ``emit_events``: put
        SageMaker's state-change events on the default bus (tests that script jobs put their own)."""
        self.clients = clients
        self.scripted = scripted
        self.emit_events = emit_events
        self.control = SageMakerControl(self)
        self.state_dir = state_dir
        self.lock = threading.Lock()
        self.jobs: dict[str, TrainingJob] = {}
        self.runners: dict[str, JobRunner | ScriptedRunner] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.stop_grace_seconds = stop_grace_seconds
        self.trainer_command = trainer_command(threads)
        self.endpoints = EndpointManager(clients, state_dir, lock=self.lock, server_command=server_command(threads),
                                         deploy=not scripted)
        self.model = botocore.session.get_session().get_service_model("sagemaker")
        self._audit_lock = threading.Lock()
        self._audit = (state_dir / "api-calls.jsonl").open("a", encoding="utf-8")
        if not scripted:  # its jobs write there; a scripted job writes nothing (the test writes its logs)
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
            "CreateEndpointConfig": self._tagged(self.endpoints.create_endpoint_config, "EndpointConfigArn"),
            "DescribeEndpointConfig": lambda p: self.endpoints.describe_endpoint_config(p["EndpointConfigName"]),
            "DeleteEndpointConfig": lambda p: self.endpoints.delete_endpoint_config(p["EndpointConfigName"]),
            "CreateEndpoint": self._tagged(self.endpoints.create_endpoint, "EndpointArn"),
            "UpdateEndpoint": self.endpoints.update_endpoint,
            "DescribeEndpoint": lambda p: self.endpoints.describe_endpoint(p["EndpointName"]),
            "ListEndpoints": self.endpoints.list_endpoints,
            "DeleteEndpoint": lambda p: self.endpoints.delete_endpoint(p["EndpointName"]),
        }

    # -- dispatch

    def call(self, operation: str, params: dict[str, Any], user_agent: str = "") -> dict[str, Any]:
        handler = self.operations.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException",
                           f"local SageMaker does not implement {operation}; it implements "
                           + ", ".join(sorted(self.operations)))
        error: ApiError | None = None
        self.control.calls[operation] += 1
        try:
            try:
                check_request(operation, params)
            except ContractViolation as violation:
                raise ApiError(violation.code, violation.message) from None
            result = handler(params)
            self.control.serving_log.record(operation, params)
            return result
        except ApiError as caught:
            error = caught
            raise
        finally:
            self.audit(operation, params, user_agent, error)

    def audit(self, operation: str, params: dict[str, Any], user_agent: str, error: ApiError | None) -> None:
        resource = next((str(params[key]) for key in ("TrainingJobName", "EndpointName", "ModelName",
                                                      "EndpointConfigName", "ResourceArn") if key in params), "")
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
        if not self.scripted:  # a scripted job runs nothing, so any host settings will do
            _check_runnable(params)
        arn = f"arn:aws:sagemaker:{self.clients.region}:{self.clients.account}:training-job/{name.lower()}"
        root = self.state_dir / "jobs" / name / "opt_ml"
        faults = self.control.faults
        with self.lock:
            if faults.create_training_job:
                raise faults.create_training_job.pop(0).error()
            if faults.lose_create_race:  # a concurrent caller's request for the same name wins
                faults.lose_create_race = False
                winner = self._new_job(params, arn, root)
                threading.Thread(target=winner.start, daemon=True).start()  # once this call lets go of the lock
            # "Training job names must be unique within an AWS account and region" (CreateTrainingJob's
            # TrainingJobName in botocore's service model); a duplicate is ResourceInUse, one of the
            # operation's modelled errors. The check and the insert hold one lock, as the service's do.
            if name in self.jobs:
                raise ApiError("ResourceInUse", f"Training job names must be unique within an AWS account and "
                                                f"region, and a training job with this name already exists ({arn})")
            runner = self._new_job(params, arn, root)
        runner.start()
        return {"TrainingJobArn": arn}

    def _new_job(self, params: dict[str, Any], arn: str, root: Path) -> JobRunner | ScriptedRunner:
        """Record a new job and its runner (the caller holds the lock and starts the runner)."""
        job = TrainingJob(request=json.loads(json.dumps(params)), arn=arn, root=root,
                          tags=tags_dict(params.get("Tags")))
        self.jobs[job.name] = job
        self.tags[arn] = dict(job.tags)
        on_change = self._emit if self.emit_events else _unobserved
        runner: JobRunner | ScriptedRunner
        if self.scripted:
            runner = ScriptedRunner(job, lock=self.lock, on_change=on_change)
        else:
            runner = JobRunner(job, self.clients, on_change=on_change, lock=self.lock,
                               trainer_command=self.trainer_command, stop_grace_seconds=self.stop_grace_seconds)
        self.runners[job.name] = runner
        return runner

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            jobs = list(self.jobs.values())
        if "StatusEquals" in params:
            jobs = [job for job in jobs if job.status == params["StatusEquals"]]
        if "NameContains" in params:
            jobs = [job for job in jobs if params["NameContains"].lower() in job.name.lower()]
        for key, attribute, after in (("CreationTimeAfter", "created", True), ("CreationTimeBefore", "created", False),
                                      ("LastModifiedTimeAfter", "modified", True),
                                      ("LastModifiedTimeBefore", "modified", False)):
            if key in params:
                bound = _timestamp(params[key])
                jobs = [job for job in jobs if (getattr(job, attribute) > bound) == after]
        sort_by = params.get("SortBy", "CreationTime")
        keys: dict[str, Callable[[TrainingJob], Any]] = {
            "Name": lambda job: job.name, "CreationTime": lambda job: job.created, "Status": lambda job: job.status}
        descending = params.get("SortOrder", "Ascending") != "Ascending"
        jobs.sort(key=keys.get(sort_by, keys["CreationTime"]), reverse=descending)
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
        try:
            result = self.clients.events.put_events(Entries=[entry])  # type: ignore[list-item]
            if result.get("FailedEntryCount"):
                print(f"local SageMaker: state-change event of {job.name} rejected: {result['Entries']}",
                      file=sys.stderr)
        except Exception as error:
            print(f"local SageMaker: could not put the state-change event of {job.name}: {error}", file=sys.stderr)

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
        self.endpoints.shutdown()

    def reset(self) -> None:
        """Forget every job, tag and serving resource (the test control's reset)."""
        self._stop_jobs()
        with self.lock:
            self.jobs.clear()
            self.runners.clear()
            self.tags.clear()
        self.endpoints.reset()

    def shutdown(self) -> None:
        self._stop_jobs()
        with self._audit_lock:
            self._audit.close()


def _unobserved(job: TrainingJob) -> None:
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


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def make_handler(api: LocalSageMaker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LocalSageMaker/1"
        disable_nagle_algorithm = procs.NO_NAGLE  # headers and body in two writes: no 40 ms wait

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the audit log records calls
            return

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", os.urandom(16).hex())
            self.end_headers()
            self.wfile.write(body)

        def _error(self, error: ApiError, *, json_type: str) -> None:
            body = json.dumps({"__type": error.code, "message": error.message, "Message": error.message,
                               **error.fields})
            self._send(error.status, body.encode(), {"Content-Type": json_type, "x-amzn-ErrorType": error.code})

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(200, b"{}", {"Content-Type": "application/json"})
            else:
                self._error(ApiError("UnknownOperationException", f"GET {self.path}", 404),
                            json_type="application/json")

        def do_POST(self) -> None:
            body = self._body()
            match = INVOCATIONS.match(self.path.split("?", 1)[0])
            if match:
                try:
                    api.audit("InvokeEndpoint", {"EndpointName": unquote(match.group(1))},
                              self.headers.get("User-Agent", ""), None)
                    status, payload, headers = api.endpoints.invoke(
                        unquote(match.group(1)), body, self.headers.get("Content-Type"), self.headers.get("Accept"))
                    self._send(status, payload, headers)
                except ApiError as error:
                    self._error(error, json_type="application/json")
                return
            target = self.headers.get("X-Amz-Target", "")
            json_type = "application/x-amz-json-1.1"
            if not target.startswith("SageMaker."):
                self._error(ApiError("UnknownOperationException", f"no X-Amz-Target SageMaker.* in POST {self.path}"),
                            json_type=json_type)
                return
            try:
                params = json.loads(body or b"{}")
                result = api.call(target.split(".", 1)[1], params, self.headers.get("User-Agent", ""))
                self._send(200, json.dumps(result).encode(), {"Content-Type": json_type})
            except ApiError as error:
                self._error(error, json_type=json_type)
            except json.JSONDecodeError as decode_error:
                self._error(ApiError("SerializationException", str(decode_error)), json_type=json_type)
            except Exception as unexpected:  # a bug here must reach the caller, not vanish
                self._error(ApiError("InternalFailure", f"{type(unexpected).__name__}: {unexpected}", 500),
                            json_type=json_type)

    return Handler


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
