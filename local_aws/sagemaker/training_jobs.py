"""Training jobs of the local SageMaker API: the local trainer as a subprocess, SageMaker-style.

A job follows SageMaker's lifecycle and container contract:

* ``InProgress/Starting`` -> ``Downloading``: every S3 input channel is copied from the local S3
  into ``<job>/opt_ml/input/data/<channel>/``; ``input/config/hyperparameters.json``,
  ``inputdataconfig.json`` and ``resourceconfig.json`` are written as SageMaker writes them.
* ``Training``: ``python -m training.trainer`` runs with that directory as its ``/opt/ml`` root.
  Every stdout/stderr line goes to the local CloudWatch Logs group ``/aws/sagemaker/TrainingJobs``
  (stream ``<job>/algo-1-<epoch>``); metric lines become CloudWatch metrics in namespace
  ``/aws/sagemaker/TrainingJobs`` (dimension ``TrainingJobName``) and ``FinalMetricDataList``.
* ``Uploading`` -> ``Completed``: ``/opt/ml/model`` is packed into ``model.tar.gz`` and put at
  ``<S3OutputPath>/<job>/output/model.tar.gz``. A non-zero exit is ``Failed`` with the text of
  ``/opt/ml/output/failure``. ``StopTrainingJob`` sends SIGTERM, waits a grace period, then
  SIGKILL; a stopped job uploads whatever model it saved, as SageMaker does.

Every status or secondary-status change is put on the local default event bus as a
"SageMaker Training Job State Change" event with source ``aws.sagemaker``, in the documented
shape (times as epoch-millisecond strings, tags as a map). The job as SageMaker describes it
(:class:`TrainingJob`, the event's entry) is :mod:`local_aws.sagemaker.training_job_record`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from o2v_core.metric_lines import parse_line
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP, TRAINING_JOB_METRICS_NAMESPACE

from local_aws import procs
from local_aws.clients import ApiError, Clients, LogForwarder, split_s3_uri
from local_aws.sagemaker.contract import described_algorithm_specification
from local_aws.sagemaker.training_job_record import TrainingJob

HOST = "algo-1"


@dataclass
class MetricDefinition:
    name: str
    regex: re.Pattern[str]


TrainerCommand = Callable[[Path], list[str]]


def trainer_command(threads: int) -> TrainerCommand:
    """The local trainer, as SageMaker starts the algorithm container, on ``threads`` CPU threads."""

    def command(root: Path) -> list[str]:
        return [sys.executable, "-u", "-m", "training.trainer", "--opt-ml", str(root), "--threads", str(threads)]

    return command


class Runner(Protocol):
    """What moves a training job: the local trainer (:class:`JobRunner`) or a test's script."""

    job: TrainingJob

    def start(self) -> None: ...

    def stop(self, reason: str = "Stopped") -> None: ...

    def join(self, timeout: float) -> None: ...


class JobRunner:
    """Runs one :class:`TrainingJob` in a thread; see the module docstring for the lifecycle."""

    def __init__(
        self,
        job: TrainingJob,
        clients: Clients,
        *,
        on_change: Callable[[TrainingJob], None],
        trainer_command: TrainerCommand,
        stop_grace_seconds: float = 20.0,
        lock: threading.Lock,
    ) -> None:
        self.job = job
        self.clients = clients
        self.on_change = on_change
        self.trainer_command = trainer_command
        self.stop_grace_seconds = stop_grace_seconds
        self.lock = lock
        self.thread = threading.Thread(target=self._run, name=f"job:{job.name}", daemon=True)

    # -- state

    def _set(self, status: str, secondary: str, message: str) -> None:
        now = time.time()
        with self.lock:
            job = self.job
            if job.transitions and job.transitions[-1].get("EndTime") is None:
                job.transitions[-1]["EndTime"] = now
            job.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
            job.status, job.secondary, job.modified = status, secondary, now
            if status != "InProgress" and status != "Stopping":
                job.transitions[-1]["EndTime"] = now
        self.on_change(self.job)

    def start(self) -> None:
        self._set("InProgress", "Starting", "Preparing the instances for training")
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout=timeout)

    def stop(self, reason: str = "Stopped") -> None:
        with self.lock:
            if self.job.status != "InProgress":
                return
            self.job.stop_reason = reason
            self.job.stop_requested.set()
        self._set("Stopping", "Stopping", "Stopping the training job")
        process = self.job.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()

    # -- the job

    def _run(self) -> None:
        job = self.job
        try:
            self._download()
            if job.stop_requested.is_set():
                return self._finish_stopped()
            code = self._train()
            if job.stop_requested.is_set():
                return self._finish_stopped()
            if code == 0:
                self._set("InProgress", "Uploading", "Uploading generated training model")
                self._upload_model(required=True)
                job.ended = time.time()
                self._set("Completed", "Completed", "Training job completed")
            else:
                job.failure_reason = self._failure_reason(code)
                job.ended = time.time()
                self._set("Failed", "Failed", job.failure_reason)
        except ApiError as error:
            job.failure_reason = f"ClientError: {error.message}"
            job.ended = time.time()
            self._set("Failed", "Failed", job.failure_reason)
        except Exception as error:
            job.failure_reason = f"InternalServerError: {type(error).__name__}: {error}"
            job.ended = time.time()
            self._set("Failed", "Failed", job.failure_reason)

    def _finish_stopped(self) -> None:
        job = self.job
        with contextlib.suppress(Exception):
            self._upload_model(required=False)
        job.ended = time.time()
        if job.stop_reason == "MaxRuntimeExceeded":
            job.failure_reason = None
            self._set("Stopped", "MaxRuntimeExceeded", "Training job reached the maximum runtime")
        else:
            self._set("Stopped", "Stopped", "Training job stopped")

    def _download(self) -> None:
        job = self.job
        self._set("InProgress", "Downloading", "Downloading input data")
        config = job.root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (job.root / "model").mkdir(parents=True, exist_ok=True)
        (job.root / "output" / "data").mkdir(parents=True, exist_ok=True)
        channels: dict[str, Any] = {}
        for channel in job.request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                raise ApiError("ValidationException", f"channel {name!r}: only S3DataSource is supported locally")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise ApiError("ValidationException",
                               f"channel {name!r}: only S3DataType S3Prefix is supported locally")
            target = job.root / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            self._copy_prefix(source["S3Uri"], target)
            channels[name] = {
                "ContentType": channel.get("ContentType", ""),
                "TrainingInputMode": channel.get("InputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        hyperparameters = {str(key): str(value) for key, value in job.request.get("HyperParameters", {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        (config / "inputdataconfig.json").write_text(json.dumps(channels, indent=2))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": HOST, "hosts": [HOST], "network_interface_name": "lo"})
        )

    def _copy_prefix(self, uri: str, target: Path) -> None:
        bucket, prefix = split_s3_uri(uri)
        paginator = self.clients.s3.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                self.clients.s3.download_file(bucket, key, str(destination))
                count += 1
        if count == 0:
            raise ApiError("ValidationException", f"no objects found under {uri}")

    def _metric_definitions(self) -> list[MetricDefinition]:
        # A built-in image's own definitions (section 10a), as SageMaker publishes its metrics with.
        spec = described_algorithm_specification(self.job.request.get("AlgorithmSpecification", {}))
        return [MetricDefinition(item["Name"], re.compile(item["Regex"])) for item in spec.get("MetricDefinitions", [])]

    def _train(self) -> int:
        job = self.job
        stream = f"{job.name}/{HOST}-{int(time.time())}"
        forwarder = LogForwarder(self.clients, TRAINING_JOB_LOG_GROUP, stream)
        definitions = self._metric_definitions()
        command = self.trainer_command(job.root)
        env = {**os.environ, **job.request.get("Environment", {}), "PYTHONUNBUFFERED": "1"}
        for key in [key for key in env if key.startswith("AWS_")]:
            del env[key]  # the algorithm container has no business calling the local control plane
        log_file = (job.root.parent / "trainer.log").open("ab")
        job.started = time.time()
        self._set("InProgress", "Training", "Training image download completed. Training in progress.")
        runtime = float(job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        timer = threading.Timer(runtime, self.stop, kwargs={"reason": "MaxRuntimeExceeded"})
        timer.daemon = True
        timer.start()
        try:
            process = procs.spawn_in_group(command, env=env, cwd=job.root, stdout=subprocess.PIPE)
            with self.lock:
                job.process = process
            if job.stop_requested.is_set():
                process.terminate()
            assert process.stdout is not None
            killer = threading.Thread(target=self._kill_after_grace, args=(process,), daemon=True)
            killer.start()
            for raw in process.stdout:
                log_file.write(raw)
                log_file.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                forwarder.add(line)
                self._record_metrics(line, definitions)
            code = process.wait()
        finally:
            timer.cancel()
            log_file.close()
            forwarder.close()
        return code

    def _kill_after_grace(self, process: subprocess.Popen[bytes]) -> None:
        while not self.job.stop_requested.wait(0.5):
            if process.poll() is not None:
                return
        try:
            process.wait(timeout=self.stop_grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def _record_metrics(self, line: str, definitions: list[MetricDefinition]) -> None:
        now = time.time()
        found: list[tuple[str, float]] = []
        if definitions:
            for definition in definitions:
                match = definition.regex.search(line)
                if match:
                    with contextlib.suppress(ValueError, IndexError):
                        found.append((definition.name, float(match.group(1))))
        else:  # a built-in algorithm: SageMaker knows its metric lines
            try:
                parsed = parse_line(line)
            except ValueError:
                parsed = None
            if parsed is not None:
                found.append((parsed.sagemaker_name, parsed.value))
        if not found:
            return
        with self.lock:
            for name, value in found:
                self.job.final_metrics[name] = (value, now)
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "TrainingJobName", "Value": self.job.name}],
                "Timestamp": now,
                "Value": value,
            }
            for name, value in found
            if value == value and abs(value) != float("inf")  # CloudWatch rejects NaN and infinity
        ]
        if data:
            try:
                self.clients.cloudwatch.put_metric_data(Namespace=TRAINING_JOB_METRICS_NAMESPACE, MetricData=data)  # type: ignore[arg-type]
            except Exception as error:
                print(f"local cloudwatch: could not put metrics of {self.job.name}: {error}", file=sys.stderr)

    def _upload_model(self, *, required: bool) -> None:
        job = self.job
        model_dir = job.root / "model"
        files = [path for path in model_dir.rglob("*") if path.is_file()] if model_dir.exists() else []
        if not files:
            if required:
                raise ApiError("ValidationException", "the algorithm wrote nothing to /opt/ml/model")
            return
        archive = job.root.parent / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(files):
                tar.add(path, arcname=str(path.relative_to(model_dir)))
        bucket, prefix = split_s3_uri(job.request["OutputDataConfig"]["S3OutputPath"])
        key = "/".join(part for part in (prefix.rstrip("/"), job.name, "output", "model.tar.gz") if part)
        self.clients.s3.upload_file(str(archive), bucket, key)
        job.model_artifact = f"s3://{bucket}/{key}"

    def _failure_reason(self, code: int) -> str:
        failure = self.job.root / "output" / "failure"
        text = failure.read_text(errors="replace").strip() if failure.exists() else ""
        if not text:
            text = f"the algorithm exited with status {code} and wrote no failure reason"
        if not text.startswith(("AlgorithmError", "ClientError")):
            text = f"AlgorithmError: {text}"
        return text[:1024]
