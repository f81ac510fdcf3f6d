"""Batch transform jobs of the local SageMaker API: the local inference server over objects in local S3.

CreateTransformJob, DescribeTransformJob, StopTransformJob and ListTransformJobs. Each request has
passed the service model's contract first (:mod:`local_aws.sagemaker.contract`, in
:meth:`LocalSageMaker.call <local_aws.sagemaker.api.LocalSageMaker.call>`). What the service checks
beyond the model, and what a running job does, with the source of each rule:

* **Names and models.** "The name must be unique within an Amazon Web Services Region in an Amazon
  Web Services account" and "ModelName must be the name of an existing Amazon SageMaker model"
  (CreateTransformJob's documentation in botocore's service model): a duplicate is
  ``ResourceInUse``, a missing model ``ValidationException`` with the wording the fake's
  DescribeModel uses (one of the operation's modelled errors would do as well; no source says
  which the service answers).
* **Payload.** ``MaxPayloadInMB`` defaults to 6, "cannot be greater than 100 MB", and
  ``MaxConcurrentTransforms * MaxPayloadInMB`` "also cannot exceed 100 MB"; "To enable the batch
  strategy, you must set the SplitType property to Line, RecordIO, or TFRecord" (the members'
  documentation in the service model): broken rules are refused at creation. A record larger than
  ``MaxPayloadInMB`` fails its object ("The value in MaxPayloadInMB must be greater than, or equal
  to, the size of a single record"). ``MaxConcurrentTransforms`` 0 or unset: 1, the documented
  default when the container has no execution-parameters endpoint (ours has none).
* **Records and mini-batches.** ``SplitType`` ``Line`` splits each object into lines;
  ``SingleRecord`` sends one line per request, ``MultiRecord`` "as many records in a mini-batch as
  can fit within the MaxPayloadInMB limit" (BatchStrategy's documentation); SageMaker "processes each
  input file separately. It doesn't combine mini-batches from different input files" (developer
  guide, batch-transform.html). ``SplitType`` ``None`` sends each object whole. Each request carries
  the job's ``ContentType`` and ``Accept``. Empty lines are not sent (no source says what the
  service does with one; our inputs have none).
* **Output.** "For every S3 object used as input ... batch transform stores the transformed data
  with an .out suffix in a corresponding subfolder in the location in the output prefix", it
  "doesn't upload partially processed objects", "uploads only the output for successfully
  processed objects" and "if any object fails ... marks the job as failed" (TransformOutput's
  S3OutputPath documentation); "When you stop a batch transform job before it is completed, Amazon
  SageMaker doesn't store the job's output in Amazon S3" (StopTransformJob's documentation). So the
  fake keeps each object's output until the job ends: all of it on success, the finished objects'
  on failure, none when stopped. The output key is the input key relative to the ``S3Uri`` prefix,
  under ``S3OutputPath``, plus ``.out`` (the documented example's own folder names do not settle
  nested keys; a flat prefix, which is all the project writes, reads the same either way).
  ``AssembleWith`` ``Line`` adds a newline after each response that does not already end with one
  ("To add a newline character at the end of every transformed record, specify Line"; whether the
  service doubles a newline the container already wrote has no source, so readers skip blank lines).
* **Instances.** "Batch Transform partitions the Amazon S3 objects in the input by key and maps
  Amazon S3 objects to instances ... If you have one input file but initialize multiple compute
  instances, only one instance processes the input file" (batch-transform.html). The fake starts
  one server per instance that has objects and deals the keys, sorted, round-robin; the exact
  mapping is not documented and no caller may depend on it.
* **States.** ``InProgress`` -> ``Completed`` | ``Failed``; StopTransformJob: ``Stopping`` ->
  ``Stopped`` (TransformJobStatus and StopTransformJob's documentation). StopTransformJob on a
  finished job: ``ValidationException`` (no source; the training job's rule). Every change is put
  on the local default bus as "SageMaker Transform Job State Change"
  (:mod:`local_aws.sagemaker.transform_job_record`).
* **Failure.** A request the container answers with an error fails its object and the job;
  ``FailureReason`` is "ClientError: See job logs for more information" (the wording real failed
  transform jobs report; no AWS page states it), and the job's data log (stream
  ``<job>/<instance>/data-log`` in ``/aws/sagemaker/TransformJobs``) names the object, the status and
  the container's message in the ``<bucket>/<key>: ClientError: <status>`` shape of the data log
  quoted in aws/amazon-sagemaker-examples#1620, which also shows its first line
  (``MaxConcurrentTransforms=1, MaxPayloadInMB=6, BatchStrategy=MULTI_RECORD``).

Not emulated (refused at creation by the local runner, so never run differently): Gzip input,
``RecordIO``/``TFRecord`` splits, ``AugmentedManifestFile``, ``DataProcessing`` filters. The output
is not encrypted with ``TransformOutput.KmsKeyId`` (moto's objects are not).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from o2v_core.resource_names import TRANSFORM_JOB_LOG_GROUP

from local_aws import procs
from local_aws.clients import ApiError, Clients, LogForwarder, select_jobs, split_s3_uri
from local_aws.sagemaker.inference_servers import Server, ServerCommand, start_server
from local_aws.sagemaker.transform_job_record import TransformJob

MEGABYTE = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6  # MaxPayloadInMB's documented default
MAX_PAYLOAD_MB = 100  # "cannot be greater than 100 MB", also for MaxConcurrentTransforms * MaxPayloadInMB
FAILURE_REASON = "ClientError: See job logs for more information"  # see the module docstring


class TransformRunner(Protocol):
    """What moves a transform job: the local servers (:class:`TransformJobRunner`) or a test's script."""

    job: TransformJob

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float) -> None: ...


OnChange = Callable[[TransformJob], None]


def check_request(params: dict[str, Any]) -> None:
    """The service's documented rules beyond the service model (module docstring, "Payload")."""
    payload = params.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
    concurrent = params.get("MaxConcurrentTransforms") or 1
    if payload > MAX_PAYLOAD_MB:
        raise ApiError("ValidationException", f"MaxPayloadInMB {payload} cannot be greater than {MAX_PAYLOAD_MB} MB.")
    if "MaxConcurrentTransforms" in params and concurrent * payload > MAX_PAYLOAD_MB:
        raise ApiError("ValidationException",
                       f"MaxConcurrentTransforms * MaxPayloadInMB ({concurrent} * {payload}) cannot exceed "
                       f"{MAX_PAYLOAD_MB} MB.")
    split = params["TransformInput"].get("SplitType", "None")
    if "BatchStrategy" in params and split == "None":
        raise ApiError("ValidationException",
                       "BatchStrategy requires TransformInput.SplitType Line, RecordIO or TFRecord.")


def check_runnable(params: dict[str, Any]) -> None:
    """Refuse a request whose settings the local runner would not honour (module docstring)."""
    transform_input = params["TransformInput"]
    unsupported = []
    data_type = transform_input["DataSource"]["S3DataSource"]["S3DataType"]
    if data_type not in ("S3Prefix", "ManifestFile"):
        unsupported.append(f"TransformInput.DataSource.S3DataSource.S3DataType {data_type} (S3Prefix, ManifestFile)")
    if transform_input.get("CompressionType", "None") != "None":
        unsupported.append(f"TransformInput.CompressionType {transform_input['CompressionType']} (only None)")
    if transform_input.get("SplitType", "None") not in ("None", "Line"):
        unsupported.append(f"TransformInput.SplitType {transform_input['SplitType']} (None, Line)")
    if params.get("DataProcessing"):
        unsupported.append("DataProcessing (not emulated)")
    if unsupported:
        raise ApiError("ValidationException", "the local SageMaker API cannot run " + "; ".join(unsupported))


class ObjectFailed(Exception):
    """One input object could not be transformed; ``lines`` go to the data log."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class TransformJobRunner:
    """Runs one :class:`TransformJob` in a thread over the local S3 (module docstring)."""

    def __init__(self, job: TransformJob, clients: Clients, *, container: dict[str, Any], lock: threading.Lock,
                 on_change: OnChange, server_command: ServerCommand, state_dir: Path,
                 ready_timeout: float = 120.0) -> None:
        self.job = job
        self.clients = clients
        self.container = {**container, "Environment": {**container.get("Environment", {}),
                                                       **job.request.get("Environment", {})}}
        self.lock = lock
        self.on_change = on_change
        self.server_command = server_command
        self.directory = state_dir / "transform-jobs" / job.name
        self.ready_timeout = ready_timeout
        self.thread = threading.Thread(target=self._run, name=f"transform:{job.name}", daemon=True)
        self.servers: list[Server] = []

    def _set(self, status: str, failure_reason: str | None = None) -> None:
        now = time.time()
        with self.lock:
            self.job.status, self.job.modified = status, now
            if failure_reason is not None:
                self.job.failure_reason = failure_reason
            if self.job.finished:
                self.job.ended = now
        self.on_change(self.job)

    def start(self) -> None:
        self.on_change(self.job)  # created InProgress
        self.thread.start()

    def stop(self) -> None:
        with self.lock:
            if self.job.status != "InProgress":
                return
            self.job.stop_requested.set()
        self._set("Stopping")

    def join(self, timeout: float) -> None:
        self.thread.join(timeout=timeout)

    # -- the job

    def _run(self) -> None:
        request = self.job.request
        outputs: dict[str, bytes] = {}
        failures: list[str] = []
        try:
            keys = self._input_keys()
            count = int(request["TransformResources"]["InstanceCount"])
            shards = [shard for shard in (keys[index::count] for index in range(count)) if shard]
            with self.lock:
                self.job.started = time.time()
            threads = [threading.Thread(target=self._instance, args=(number, shard, outputs, failures), daemon=True)
                       for number, shard in enumerate(shards, start=1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if self.job.stop_requested.is_set():
                self._set("Stopped")
                return
            for key, body in sorted(outputs.items()):
                bucket, out_key = split_s3_uri(key)
                self.clients.s3.put_object(Bucket=bucket, Key=out_key, Body=body)
            if failures:
                self._set("Failed", FAILURE_REASON)
            else:
                self._set("Completed")
        except ApiError as error:
            self._set("Failed", f"ClientError: {error.message}"[:1024])
        except Exception as error:
            self._set("Failed", f"InternalServerError: {type(error).__name__}: {error}"[:1024])
        finally:
            for server in self.servers:
                server.stop()

    def _input_keys(self) -> list[tuple[str, str, str]]:
        """(bucket, key, key relative to the input prefix) of every input object, sorted by key."""
        source = self.job.request["TransformInput"]["DataSource"]["S3DataSource"]
        bucket, prefix = split_s3_uri(source["S3Uri"])
        if source["S3DataType"] == "ManifestFile":
            manifest = json.loads(self.clients.s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
            base_bucket, base = split_s3_uri(manifest[0]["prefix"])
            return sorted((base_bucket, base + str(item), str(item)) for item in manifest[1:])
        base = prefix[: prefix.rfind("/") + 1]  # the "folder" of the prefix: keys are named relative to it
        keys = []
        for page in self.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [(bucket, item["Key"], item["Key"][len(base):]) for item in page.get("Contents", [])
                     if not item["Key"].endswith("/")]
        if not keys:
            raise ApiError("ValidationException", f"No S3 objects found under S3 URL \"{source['S3Uri']}\" given "
                                                  "in input data source.")
        return sorted(keys)

    def _instance(self, number: int, shard: list[tuple[str, str, str]], outputs: dict[str, bytes],
                  failures: list[str]) -> None:
        request = self.job.request
        stream = f"{self.job.name}/i-local{number:04d}-{int(time.time())}"
        data_log = LogForwarder(self.clients, TRANSFORM_JOB_LOG_GROUP, f"{stream}/data-log")
        try:
            try:
                server = start_server(self.clients, self.container, self.directory / f"instance-{number}",
                                      self.server_command, LogForwarder(self.clients, TRANSFORM_JOB_LOG_GROUP, stream),
                                      config_name=self.job.name, ready_timeout=self.ready_timeout)
            except ApiError as error:
                data_log.add(f"instance {number}: {error.message}")
                with self.lock:
                    failures.append(error.message)
                return
            with self.lock:
                self.servers.append(server)
            strategy = "MULTI_RECORD" if request.get("BatchStrategy") == "MultiRecord" else "SINGLE_RECORD"
            data_log.add(f"[sagemaker logs]: MaxConcurrentTransforms={self._concurrency()}, "
                         f"MaxPayloadInMB={self._payload_mb()}, BatchStrategy={strategy}")
            for bucket, key, relative in shard:
                if self.job.stop_requested.is_set():
                    return
                try:
                    body = self._transform(server, bucket, key)
                except ObjectFailed as failed:
                    for line in failed.lines:
                        data_log.add(f"[sagemaker logs]: {bucket}/{key}: {line}")
                    with self.lock:
                        failures.append(f"s3://{bucket}/{key}")
                    continue
                with self.lock:
                    outputs[self._output_uri(relative)] = body
        finally:
            data_log.close()

    def _concurrency(self) -> int:
        return int(self.job.request.get("MaxConcurrentTransforms") or 1)

    def _payload_mb(self) -> int:
        return int(self.job.request.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB))

    def _output_uri(self, relative: str) -> str:
        output = self.job.request["TransformOutput"]["S3OutputPath"]
        return f"{output.rstrip('/')}/{relative}.out"

    def _transform(self, server: Server, bucket: str, key: str) -> bytes:
        body: bytes = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        batches = list(self._batches(body))
        with ThreadPoolExecutor(max_workers=self._concurrency()) as pool:
            answers = list(pool.map(lambda batch: self._invoke(server, batch), batches))
        line = self.job.request["TransformOutput"].get("AssembleWith", "None") == "Line"
        return b"".join(answer + b"\n" if line and not answer.endswith(b"\n") else answer for answer in answers)

    def _batches(self, body: bytes) -> Iterator[bytes]:
        request = self.job.request
        limit = self._payload_mb() * MEGABYTE or None  # 0: no limit (chunked encoding)
        if request["TransformInput"].get("SplitType", "None") == "None":
            if limit is not None and len(body) > limit:
                raise ObjectFailed([f"ClientError: the object of {len(body)} bytes exceeds MaxPayloadInMB "
                                    f"{self._payload_mb()}"])
            yield body
            return
        records = [line + b"\n" for line in body.splitlines() if line.strip()]
        single = request.get("BatchStrategy", "MultiRecord") == "SingleRecord"
        batch: list[bytes] = []
        size = 0
        for number, record in enumerate(records, start=1):
            if limit is not None and len(record) > limit:
                raise ObjectFailed([f"ClientError: record {number} of {len(record)} bytes exceeds MaxPayloadInMB "
                                    f"{self._payload_mb()}"])
            if batch and (single or (limit is not None and size + len(record) > limit)):
                yield b"".join(batch)
                batch, size = [], 0
            batch.append(record)
            size += len(record)
        if batch:
            yield b"".join(batch)

    def _invoke(self, server: Server, payload: bytes) -> bytes:
        if self.job.stop_requested.is_set():
            return b""
        transform_input, transform_output = self.job.request["TransformInput"], self.job.request["TransformOutput"]
        headers = {name: value for name, value in (("Content-Type", transform_input.get("ContentType")),
                                                    ("Accept", transform_output.get("Accept"))) if value}
        connection = http.client.HTTPConnection(procs.LOOPBACK, server.port, timeout=600)
        try:
            connection.request("POST", "/invocations", body=payload, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except OSError as error:
            raise ObjectFailed([f"ServerError: {error}"]) from None
        finally:
            connection.close()
        if response.status >= 300:
            kind = "ClientError" if response.status < 500 else "ServerError"
            raise ObjectFailed([f"{kind}: {response.status}", "", "Message:",
                                answer.decode("utf-8", errors="replace")[:1000]])
        return answer


class TransformJobs:
    """The transform jobs of one local SageMaker API and the four operations on them."""

    def __init__(self, clients: Clients, *, lock: threading.Lock, describe_model: Callable[[str], dict[str, Any]],
                 runner_factory: Callable[[TransformJob, dict[str, Any]], TransformRunner], runs_jobs: bool) -> None:
        self.clients = clients
        self.lock = lock
        self.describe_model = describe_model
        self.runner_factory = runner_factory
        self.runs_jobs = runs_jobs
        self.jobs: dict[str, TransformJob] = {}
        self.runners: dict[str, TransformRunner] = {}

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.clients.region}:{self.clients.account}:transform-job/{name.lower()}"

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TransformJobName"]
        check_request(params)
        if self.runs_jobs:
            check_runnable(params)
        model = self.describe_model(params["ModelName"])  # ValidationException when it does not exist
        arn = self.arn(name)
        with self.lock:
            if name in self.jobs:
                raise ApiError("ResourceInUse", f"Job name must be unique within an AWS account and region, and a "
                                                f"job with this name already exists ({arn})")
            job = TransformJob(request=json.loads(json.dumps(params)), arn=arn,
                               tags={tag["Key"]: tag["Value"] for tag in params.get("Tags", [])})
            self.jobs[name] = job
            runner = self.runner_factory(job, model)
            self.runners[name] = runner
        runner.start()
        return {"TransformJobArn": arn}

    def _job(self, name: str) -> TransformJob:
        with self.lock:
            job = self.jobs.get(name)
        if job is None:
            # No source for the wording; DescribeTransformJob's modelled error is ResourceNotFound, which
            # SageMaker's training and endpoint calls answer as ValidationException as well (the fake's rule).
            raise ApiError("ValidationException", f"Could not find job to update with name {name}")
        return job

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["TransformJobName"])
        with self.lock:
            return job.describe()

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job(params["TransformJobName"])
        with self.lock:
            status, runner = job.status, self.runners[job.name]
        if status not in ("InProgress", "Stopping"):
            raise ApiError("ValidationException",
                           f"The request was rejected because the transform job is in status {status}.")
        runner.stop()
        return {}

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The summaries, filtered and sorted as ListTransformJobs' request says (the caller pages)."""
        with self.lock:
            jobs = list(self.jobs.values())
        # "The default is CreationTime", "The default is Descending" (ListTransformJobs' SortBy, SortOrder).
        jobs = select_jobs(jobs, params, default_order="Descending")
        with self.lock:
            return [job.summary() for job in jobs]

    def shutdown(self) -> None:
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            with contextlib.suppress(Exception):
                runner.stop()
        for runner in runners:
            runner.join(timeout=30)

    def reset(self) -> None:
        self.shutdown()
        with self.lock:
            self.jobs.clear()
            self.runners.clear()
