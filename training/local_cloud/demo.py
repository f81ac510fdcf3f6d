"""``o2v demo``: the whole retraining loop on this machine, with local stand-ins for AWS.

1. Prepare STS-B (``--data DIR``, else ``../shared/data/stsbenchmark`` beside the repo when it
   exists, else the official download) into ``runs/<timestamp>/data``.
2. Start the local services (:mod:`training.local_cloud.services`) and the event pump
   (:mod:`training.local_cloud.pump`); create what the stacks would (buckets, roles, the project
   bus, the SNS topic, the rules). Nothing is deployed anywhere.
3. Launch attempt 1 with a configuration that is prone to overfit (dropout 0), through the
   launcher of ``o2v launch`` (:func:`training.launcher.launch.plan_launch` and ``submit``, the
   SageMaker Python SDK), given the outputs the stacks would have instead of reading them.
4. Watch: epochs as they reach the local CloudWatch Logs, the monitor detecting divergence and
   stopping the job, the rule firing, the launcher starting the next attempt with more dropout,
   and the promoter deploying the best attempt to the local endpoint.
5. Embed the STS-B test sentences through the endpoint (``sagemaker-runtime`` InvokeEndpoint)
   and report the Spearman correlation of the cosine similarities with the gold scores.

The handlers, the rules, the launcher and the boto3 calls are the ones the stacks deploy and
``o2v launch`` runs; only the endpoints differ (``AWS_ENDPOINT_URL*``). Settings come from
``cdk.json`` (environment ``dev`` by default) through :func:`o2v_core.settings.load_settings`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from o2v_core import resource_names, s3_layout
from o2v_core.events import (
    MODEL_PROMOTED,
    PROMOTION_SKIPPED,
    RETRAINING_EXHAUSTED,
    SAGEMAKER_SOURCE,
    SOURCE,
    TRAINING_FAILED,
    TRAINING_JOB_STATE_CHANGE,
    TRAINING_SUCCEEDED,
    VALIDATION_LOSS_DIVERGED,
)
from o2v_core.metric_lines import parse_line
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT, Lineage, job_prefix, tag_dict
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP
from o2v_core.runtime_config import ControlPlaneConfig
from o2v_core.settings import Settings, settings_from_cdk_json

from training.launcher.launch import plan_launch, submit, training_image
from training.launcher.stack import StackOutputs
from training.local_cloud import procs
from training.local_cloud.interruption import guarded_signals, how_interrupted, write_interrupted_report
from training.local_cloud.pump import SCHEDULE, SUBSCRIPTION, Delivery, EventPump
from training.local_cloud.report import Attempt, RunSummary, write_report
from training.local_cloud.sagemaker_api import make_clients
from training.local_cloud.services import LocalServices

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_STSB = REPO_ROOT.parent / "shared" / "data" / "stsbenchmark"
LINEAGE = "stsb-demo"
EXAMPLE_SENTENCES = ("A man is playing a guitar.", "A man plays the guitar.")
DATASET_NAME = "stsb-demo"


class DemoError(ValueError):
    """The demo cannot go on; the message says why and where to look."""


# ---------------------------------------------------------------------------------------------
# Sizes and the overfit-prone first attempt


@dataclass(frozen=True)
class Size:
    """How big a run is: how much data, how many epochs, how wide the model."""

    name: str
    train_rows: int | None  # None: the whole STS-B training split
    test_rows: int | None  # None: every test pair
    epochs: int
    dims: int
    description: str


SIZES: dict[str, Size] = {
    "quick": Size("quick", 2000, 400, 10, 64,
                  "64-d, 10 epochs, 2,000 training pairs, scored on 400 test pairs (about a minute)"),
    "standard": Size("standard", None, None, 10, 64, "64-d, 10 epochs, scored on all 1,379 test pairs"),
    "large": Size("large", None, None, 12, 128, "128-d, 12 epochs (more prone to overfit: more attempts)"),
}


OVERFIT_LAYER = "the demo's overfit-prone first attempt"


def overfit_prone_recipe(dims: int, epochs: int, *, network: str = "pooled_embedding",
                         dropout: float = 0.0) -> dict[str, object]:
    """The overfit-prone recipe, defined once: the demo's attempt 1 and the bench's recorded curves.

    No dropout, a pooled-embedding encoder whose token embeddings are its only encoder weights
    (Object2Vec's pooled_embedding has no projection, reference section 10e), one tanh MLP layer,
    small batches and a fast learning rate (0.003): on a 2,000-pair sample of STS-B the validation
    loss turns up within a few epochs and stays up, so the monitor sees a rise before Object2Vec's
    own early stopping (patience 5 below) ends the job. With the slower 0.001 and the whole
    training split the curve only wobbled around its minimum, which the detector rightly leaves
    alone.
    """
    return {
        "enc0_network": network,
        "enc1_network": "enc0",
        "enc0_token_embedding_dim": dims,
        "enc_dim": dims,
        "mlp_dim": dims,
        "mlp_layers": 1,
        "mlp_activation": "tanh",
        "learning_rate": 0.003,
        "mini_batch_size": 32,
        "epochs": epochs,
        "dropout": dropout,
        "early_stopping_patience": 5,
    }


def overfit_prone_hyperparameters(size: Size, epochs: int | None) -> dict[str, object]:
    """Attempt 1's layer over the settings' and the dataset's hyperparameters: prone to overfit.

    The launcher validates the merged result.
    """
    return overfit_prone_recipe(size.dims, epochs or size.epochs)


# ---------------------------------------------------------------------------------------------
# Options and console


@dataclass
class DemoOptions:
    runs_dir: Path = REPO_ROOT / "runs"
    data: Path | None = None
    cache_dir: Path = Path.home() / ".cache" / "o2v"
    size: str = "standard"
    train_rows: int | None = None
    epochs: int | None = None
    env_name: str = "dev"
    keep_endpoint: bool = False
    minute_seconds: float = 1.0  # local seconds per minute of the schedules
    timeout: float = 900.0
    verbose: bool = False
    region: str = "us-east-1"


class Console:
    """Timestamped progress lines, safe to call from any thread."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def line(self, tag: str, message: str) -> None:
        with self._lock:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:6.1f}s] {tag:<9} {message}", file=self.stream, flush=True)

    def plain(self, message: str = "") -> None:
        with self._lock:
            print(message, file=self.stream, flush=True)


def new_run_dir(runs_dir: Path) -> Path:
    """``runs/<timestamp>/``; a second run in the same second gets a suffix."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    for suffix in ("", *(f"-{index}" for index in range(2, 100))):
        candidate = runs_dir / f"{stamp}{suffix}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise DemoError(f"cannot create a new run directory under {runs_dir}")


def short(job_name: str) -> str:
    """``o2v-dev-stsb-demo-a2`` -> ``a2``."""
    return job_name.rsplit("-", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class DataChoice:
    directory: Path
    description: str
    prepared: bool  # a dataset written by `o2v prepare` (manifest.json), else the raw STS-B files


def find_data(options: DemoOptions, console: Console) -> DataChoice:
    """``--data DIR`` (raw STS-B or a prepared dataset), else the shared copy, else the download."""
    from training.data import stsb

    if options.data is not None:
        if (options.data / "manifest.json").is_file():
            return DataChoice(options.data, f"dataset prepared by o2v prepare in {options.data}", True)
        try:
            stsb.split_files(options.data)
        except FileNotFoundError as error:
            raise DemoError(f"--data {options.data}: neither STS-B ({error}) nor a dataset written by "
                            "`o2v prepare` (no manifest.json)") from None
        return DataChoice(options.data, f"STS-B from {options.data}", False)
    if (SHARED_STSB / "sts-train.csv").is_file():
        return DataChoice(SHARED_STSB, "STS-B from ../shared/data/stsbenchmark", False)
    console.line("data", f"downloading STS-B from {stsb.STSB_URL} into {options.cache_dir} ...")
    try:
        return DataChoice(stsb.download(options.cache_dir), f"STS-B downloaded into {options.cache_dir}", False)
    except OSError as error:
        raise DemoError(f"no STS-B data: pass --data DIR (holding sts-train.csv, sts-dev.csv, sts-test.csv); "
                        f"the download failed: {error}") from None


def use_prepared(choice: DataChoice, out: Path) -> dict[str, Any]:
    """Copy a prepared dataset into the run; it needs a validation split (the detector reads it)."""
    import shutil

    from training.data.prepare import load_manifest

    manifest = load_manifest(choice.directory)
    if "validation" not in manifest.get("splits", {}):
        raise DemoError(f"{choice.directory} has no validation split, which the divergence detector needs; "
                        "prepare it with --validation FILE or --validation-fraction 0.1")
    shutil.copytree(choice.directory, out)
    return manifest


def prepare_data(directory: Path, out: Path, train_rows: int | None) -> dict[str, Any]:
    """``o2v prepare`` of STS-B into ``out``; ``train_rows`` keeps a deterministic sample of train."""
    import zlib

    from training.data import readers, stsb
    from training.data.labels import LabelSpec
    from training.data.prepare import PrepareConfig, Source, prepare

    splits = stsb.split_files(directory)
    train_path = splits["train"][0]
    keep: set[int] | None = None
    if train_rows is not None:
        lines = [row.line for row in readers.read_stsb(train_path) if isinstance(row, readers.Pair)]
        if train_rows < len(lines):
            ranked = sorted(lines, key=lambda line: zlib.crc32(f"o2v-demo:{line}".encode()))
            keep = set(ranked[:train_rows])

    def reader(path: Path) -> Iterator[readers.Row]:
        for row in readers.read_stsb(path):
            if keep is None or path != train_path or not isinstance(row, readers.Pair) or row.line in keep:
                yield row

    return prepare(Source("STS Benchmark", reader, splits, LabelSpec("regression")), out, PrepareConfig())


# ---------------------------------------------------------------------------------------------
# The local "deployment": what the stacks would create


@dataclass(frozen=True)
class LocalNames:
    """Names of what the stacks would create, as the stacks name them.

    The bus, endpoint and SSM parameter names come from ``o2v_core.resource_names``, as in the
    stacks. Buckets and the topic get local names.
    """

    deployment: str

    @property
    def event_bus(self) -> str:
        return resource_names.event_bus_name(self.deployment)

    @property
    def dataset_bucket(self) -> str:
        return f"{self.deployment}-datasets-local"

    @property
    def artifact_bucket(self) -> str:
        return f"{self.deployment}-artifacts-local"

    @property
    def endpoint(self) -> str:
        return resource_names.endpoint_name(self.deployment)

    @property
    def serving_parameter(self) -> str:
        return resource_names.serving_model_parameter(self.deployment)

    @property
    def serving_url_parameter(self) -> str:
        return resource_names.serving_model_data_url_parameter(self.deployment)

    @property
    def topic(self) -> str:
        return f"{self.deployment}-notifications"

    def stack_outputs(self, settings: Settings, training_role_arn: str) -> StackOutputs:
        """What ``o2v launch`` would read from the data and training stacks' outputs."""
        return StackOutputs(
            deployment=self.deployment,
            training_role_arn=training_role_arn,
            dataset_bucket=self.dataset_bucket,
            artifact_bucket=self.artifact_bucket,
            training_output_uri=s3_layout.s3_uri(self.artifact_bucket, s3_layout.TRAINING_OUTPUT_PREFIX),
            kms_key_arn=None,  # the local buckets have no KMS key
            instance_type=settings.training.instance_type,
            first_attempt_hyperparameters=json.loads(settings.hyperparameters_json),
            event_bus_name=self.event_bus,
            origin=f"the local stand-in for stack {resource_names.training_stack_name(self.deployment)}",
        )


def load_settings(env_name: str) -> Settings:
    return settings_from_cdk_json(REPO_ROOT / "cdk.json", env_name)


def _as_json(value: object) -> str:
    """A settings value (a config object with ``to_json`` or a mapping) as a JSON document."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return str(to_json())
    return json.dumps(value, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Watching the run


@dataclass
class JobView:
    status: str = ""
    secondary: str = ""
    printed_epochs: set[int] = field(default_factory=set)
    log_tokens: dict[str, str] = field(default_factory=dict)
    train: dict[int, float] = field(default_factory=dict)
    best: float | None = None
    log_done: bool = False


class Watcher:
    """Prints progress from what the local services publish (events, logs, deliveries)."""

    def __init__(self, console: Console, names: LocalNames, deployment: str, verbose: bool) -> None:
        self.console = console
        self.names = names
        self.deployment = deployment
        self.verbose = verbose
        self.jobs: dict[str, JobView] = {}
        self.diverged: dict[str, dict[str, Any]] = {}
        self.epochs_saved: dict[str, int] = {}  # diverged jobs the monitor stopped: epochs saved, at least
        self.project_events: list[dict[str, Any]] = []
        self.notifications: list[str] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.observer_queue = ""
        self.endpoint_status = ""
        self._lock = threading.Lock()

    # observer rules: the demo's own listener, beside (never instead of) the project's rules
    def setup(self, sqs: Any, events: Any) -> None:
        self.observer_queue = sqs.create_queue(QueueName=f"{self.deployment}-local-demo-observer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.observer_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        for bus, pattern in (("default", {"source": [SAGEMAKER_SOURCE], "detail-type": [TRAINING_JOB_STATE_CHANGE]}),
                             (self.names.event_bus, {"source": [SOURCE]})):
            name = f"{self.deployment}-local-demo-observer"
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])

    def drain(self, sqs: Any) -> None:
        answer = sqs.receive_message(QueueUrl=self.observer_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            event = json.loads(message["Body"])
            sqs.delete_message(QueueUrl=self.observer_queue, ReceiptHandle=message["ReceiptHandle"])
            if event.get("source") == SAGEMAKER_SOURCE:
                self._state_change(event.get("detail", {}))
            else:
                self._project_event(event)

    def _state_change(self, detail: dict[str, Any]) -> None:
        name = str(detail.get("TrainingJobName", ""))
        view = self.jobs.setdefault(name, JobView())
        status, secondary = str(detail.get("TrainingJobStatus")), str(detail.get("SecondaryStatus"))
        if (status, secondary) == (view.status, view.secondary):
            return
        view.status, view.secondary = status, secondary
        hps = detail.get("HyperParameters", {})
        if secondary == "Starting":
            self.console.line(short(name), f"{name} created (dropout {hps.get('dropout', '?')})")
        elif secondary == "Training":
            self.console.line(short(name), "training (local trainer subprocess)")
        elif status in ("Stopping", "Stopped", "Completed", "Failed"):
            extra = f": {detail.get('FailureReason')}" if status == "Failed" else ""
            self.console.line(short(name), f"{status}{extra}")

    def _project_event(self, event: dict[str, Any]) -> None:
        kind, detail = event.get("detail-type"), event.get("detail", {})
        self.project_events.append(event)
        if kind == VALIDATION_LOSS_DIVERGED:
            name = str(detail.get("trainingJobName", ""))
            decision = detail.get("decision", {})
            self.diverged.setdefault(name, {**decision, "stoppedJob": detail.get("stoppedJob")})
            best = decision.get("best_value")
            best_text = f"best {best:.4f} at epoch {decision.get('best_epoch')}" if best is not None else "no best"
            stopped = (f"job stopped, at least {detail.get('epochsSaved', 0)} epochs saved" if detail.get("stoppedJob")
                       else "job not stopped")
            self.console.line("event", f"{VALIDATION_LOSS_DIVERGED} {short(name)}: {decision.get('reason')} at "
                                       f"epoch {decision.get('detected_at_epoch')} ({best_text}; {stopped})")
        elif kind == TRAINING_SUCCEEDED:
            overfitted = " (overfitted, ended on its own: a candidate too)" if detail.get("diverged") else ""
            self.console.line("event", f"{TRAINING_SUCCEEDED} {short(detail.get('trainingJobName', ''))}: best "
                                       f"{detail.get('bestValue'):.4f} at epoch {detail.get('bestEpoch')}{overfitted}")
        elif kind in (RETRAINING_EXHAUSTED, TRAINING_FAILED):  # ModelPromoted: see the promoter's line
            summary = {key: value for key, value in detail.items() if key != "deployment"}
            self.console.line("event", f"{kind} {json.dumps(summary, default=str)[:200]}")

    def watch_endpoint(self, sagemaker: Any) -> None:
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=self.names.endpoint)
        except sagemaker.exceptions.ClientError:
            return
        status = str(endpoint["EndpointStatus"])
        if status != self.endpoint_status:
            self.endpoint_status = status
            pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
            config = pending or endpoint.get("EndpointConfigName")
            reason = f": {endpoint['FailureReason']}" if endpoint.get("FailureReason") else ""
            self.console.line("endpoint", f"{self.names.endpoint} {status} (endpoint config {config}; local inference "
                                          f"server){reason}")

    def tail_logs(self, logs: Any) -> None:
        """Print each epoch's losses as they reach the local CloudWatch Logs."""
        for name, view in list(self.jobs.items()):
            if view.secondary in ("Starting", "Downloading") or view.log_done:
                continue
            # One last read after the job ended (its lines are flushed before the final status).
            view.log_done = view.status in ("Completed", "Stopped", "Failed")
            try:
                streams = logs.describe_log_streams(logGroupName=TRAINING_JOB_LOG_GROUP,
                                                    logStreamNamePrefix=f"{name}/")["logStreams"]
            except Exception:
                continue
            for stream in streams:
                stream_name = stream["logStreamName"]
                kwargs: dict[str, Any] = {"logGroupName": TRAINING_JOB_LOG_GROUP,
                                          "logStreamName": stream_name, "startFromHead": True}
                if stream_name in view.log_tokens:
                    kwargs["nextToken"] = view.log_tokens[stream_name]
                answer = logs.get_log_events(**kwargs)
                view.log_tokens[stream_name] = answer["nextForwardToken"]
                for item in answer.get("events", []):
                    self._metric(name, view, str(item.get("message", "")))

    def _metric(self, name: str, view: JobView, message: str) -> None:
        try:
            metric = parse_line(message)
        except ValueError:
            return
        if metric is None or metric.epoch is None:
            return
        if metric.channel == "train":
            view.train[metric.epoch] = metric.value
            return
        if metric.channel != "validation" or metric.epoch in view.printed_epochs:
            return
        view.printed_epochs.add(metric.epoch)
        mark = ""
        if view.best is None or metric.value < view.best:
            view.best, mark = metric.value, "  (best so far)"
        train = view.train.get(metric.epoch)
        train_text = f", train {train:.4f}" if train is not None else ""
        self.console.line(short(name), f"epoch {metric.epoch:>2}: {metric.sagemaker_name} "
                                       f"{metric.value:.4f}{train_text}{mark}")

    def _stop_choice(self, who: str, job: str, choice: str, where: str) -> None:
        """A diverged job's stop-or-finish choice (StopChoice.summary), as the judge or monitor reported it."""
        if choice.startswith("stopped, "):
            epochs = int(choice.split()[1])
            with self._lock:
                self.epochs_saved[job] = epochs
            self.console.line(who, f"divergence in {short(job)} {where}: StopTrainingJob {job} (it would have "
                                   f"paid at least {epochs} more epochs); next attempt launched now")
        else:
            self.console.line(who, f"divergence in {short(job)} {where}: {choice or 'reported'}; next attempt "
                                   "launched now")

    def on_delivery(self, delivery: Delivery) -> None:
        result = delivery.result if isinstance(delivery.result, dict) else {}
        if delivery.dead_lettered:
            with self._lock:
                self.dead_letters.append(delivery.as_dict())
            self.console.line("DLQ", f"{delivery.rule_id} -> {delivery.target} failed {delivery.attempts} time(s), "
                                     f"moved to the dead-letter queue: {delivery.error}")
            return
        if delivery.rule_id == SUBSCRIPTION:
            if result.get("verdict") in ("diverged", "stopped_again"):
                job = str(result.get("job", ""))
                self._stop_choice("judge", job, str(result.get("choice", "")), "on its epoch line")
            return
        if delivery.rule_id == SCHEDULE:
            for entry in [*result.get("epochs_saved", []), *result.get("left_to_finish", [])]:  # "<job>: <choice>"
                job, _, choice = str(entry).partition(": ")
                self._stop_choice("monitor", job, choice, "on the safety net's run")
            repairs = [*result.get("judged", []), *result.get("continued", []), *result.get("decided", []),
                       *result.get("deferred_decided", [])]
            if result.get("record") in ("announced", "rolled_back"):
                repairs.append(f"served-model record {result['record']}")
            for repair in repairs:
                self.console.line("reconciler", f"repaired: {repair}")
            return
        target = f"rule {delivery.rule_id} -> {delivery.target}"
        if delivery.target == "retrain_launcher":
            action = result.get("action")
            if action == "launched":
                text = f"launched {result.get('child')} ({result.get('detail')})"
            else:
                text = f"{action}: {result.get('detail')}"
        elif delivery.target == "finished_job_evaluator":
            text = f"{short(str(result.get('job', '')))} {result.get('action')} ({result.get('detail')})"
        elif delivery.target == "promoter":
            text = _promotion_text(result)
        elif delivery.target == "notifications":
            detail = {key: value for key, value in delivery.event.get("detail", {}).items() if key != "deployment"}
            note = f"{delivery.event.get('detail-type')}: {json.dumps(detail, default=str)}"
            with self._lock:
                self.notifications.append(note)
            text = f"published to SNS topic {self.names.topic}: {note[:150]}"
        else:
            text = json.dumps(result, default=str)[:200]
        retried = f" (after {delivery.attempts} attempts)" if delivery.attempts > 1 else ""
        self.console.line("rule", f"{target}: {text}{retried}")

    def on_handler_log(self, function_id: str, line: str) -> None:
        if self.verbose:
            self.console.line("lambda", f"{function_id}: {line[:300]}")


# ---------------------------------------------------------------------------------------------
# The demo


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        if options.size not in SIZES:
            raise DemoError(f"--size {options.size!r}: allowed {', '.join(SIZES)}")
        self.options = options
        self.size = SIZES[options.size]
        self.console = console or Console()
        self.services: LocalServices | None = None
        self.pump: EventPump | None = None
        self.run_dir: Path | None = None
        self.data_choice: DataChoice | None = None
        self._example: tuple[list[str], Path, subprocess.Popen[str]] | None = None
        self._stopped = False
        self.stage = "start-up (reading cdk.json)"  # where an interruption finds the run
        self.started = time.monotonic()

    # -- lifecycle

    def run(self) -> int:
        options = self.options
        settings = load_settings(options.env_name)
        deployment = settings.deployment
        job_prefix(deployment)
        names = LocalNames(deployment)
        run_dir = self.run_dir = new_run_dir(options.runs_dir)
        started_at = datetime.now().isoformat(timespec="seconds")
        console = self.console
        console.plain(f"o2v demo: local mode, no AWS account. Run directory: {run_dir}")
        console.plain(f"          size {self.size.name}: {self.size.description}; settings: cdk.json "
                      f"environment {settings.env_name!r} (deployment {deployment!r})")

        # 1. data
        self.stage = "1. data (o2v prepare)"
        choice = self.data_choice = find_data(options, console)
        data_text = choice.description
        train_rows = options.train_rows if options.train_rows is not None else self.size.train_rows
        if choice.prepared:
            if options.train_rows is not None:
                raise DemoError("--train-rows applies to raw STS-B; sample a prepared dataset with o2v prepare")
            manifest = use_prepared(choice, run_dir / "data")
        else:
            manifest = prepare_data(choice.directory, run_dir / "data", train_rows)
        counts = {name: split["records"] for name, split in manifest["splits"].items()}
        data_text += (f": train {counts.get('train')}, validation {counts.get('validation')}, "
                      f"test {counts.get('test')} pairs; vocabulary {manifest['vocab_size']}")
        console.line("data", data_text)

        # 2. services
        self.stage = "2. starting the local services"
        self.services = LocalServices(run_dir / "services", region=options.region)
        endpoints = self.services.start()
        os.environ.update(self.services.environment())
        console.line("services", f"moto server {endpoints.moto} (S3, EventBridge, SQS, CloudWatch, Logs, SNS, SSM, "
                                 f"IAM, STS); local SageMaker API {endpoints.sagemaker}")
        session = boto3.session.Session()
        sqs, events, sns = session.client("sqs"), session.client("events"), session.client("sns")
        s3, iam, sagemaker = session.client("s3"), session.client("iam"), session.client("sagemaker")
        logs = session.client("logs")
        for bucket in (names.dataset_bucket, names.artifact_bucket):
            s3.create_bucket(Bucket=bucket)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        training_role, model_role = (
            iam.create_role(RoleName=f"{deployment}-{kind}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            for kind in ("training", "model")
        )
        topic = sns.create_topic(Name=names.topic)["TopicArn"]
        image = training_image(options.region)
        config = ControlPlaneConfig(
            deployment=deployment,
            event_bus_name=names.event_bus,
            notification_topic_arn=topic,
            training_role_arn=training_role,
            detector_config=_as_json(settings.detector),
            retrain_policy=_as_json(settings.retrain_policy),
            stop_on_divergence=settings.stop_on_divergence,
            finish_diverged_within_epochs=settings.finish_diverged_within_epochs,
            endpoint_name=names.endpoint,
            serving_model_parameter=names.serving_parameter,
            model_role_arn=model_role,
            image_uri=image,
            promotion_margin=settings.promotion_margin,
            endpoint_instance_type=settings.serving.instance_type,
            artifact_bucket=names.artifact_bucket,
            serving_model_data_url_parameter=names.serving_url_parameter,
        )

        watcher = Watcher(console, names, deployment, options.verbose)
        self.pump = EventPump(config, env=self.services.environment(), clients=make_clients(), sqs=sqs,
                              events=events, sns=sns, run_dir=run_dir, minute_seconds=options.minute_seconds,
                              on_delivery=watcher.on_delivery, on_handler_log=watcher.on_handler_log)
        self.pump.setup()
        watcher.setup(sqs, events)
        self.pump.start()
        rule_text = ", ".join(f"{route.spec.rule_id} ({route.spec.bus})" for route in self.pump.routes)
        console.line("rules", f"{rule_text} -> {len(self.pump.functions)} Lambda handlers; the metric-line judge "
                              "gets each #quality_metric line from the local Logs' subscription delivery; the "
                              f"safety-net monitor runs every {options.minute_seconds * 10:g} s (rate(10 minutes) "
                              "in the cloud)")

        # 3. data in S3, attempt 1: o2v launch's launcher, given the stacks' outputs
        self.stage = "3. upload and attempt 1"
        from training.data.upload import upload_dataset

        upload_dataset(s3, run_dir / "data", names.dataset_bucket, DATASET_NAME)
        plan = plan_launch(
            session, deployment=deployment, lineage=LINEAGE, dataset=DATASET_NAME,
            layers=[(OVERFIT_LAYER, overfit_prone_hyperparameters(self.size, options.epochs))],
            volume_size_gb=settings.training.volume_size_gb,
            max_runtime_seconds=settings.training.max_runtime_seconds,
            stack=names.stack_outputs(settings, training_role),
            # The local trainer saves the best epoch's weights (the promoter reads this tag).
            tags={TAG_BEST_EPOCH_ARTIFACT: "true"},
        )
        submit(session, plan)
        hyperparameters = plan.hyperparameters
        console.line("launch", f"attempt 1 {plan.job_name} (o2v launch's launcher, SageMaker SDK): dropout "
                               f"{hyperparameters['dropout']}, {hyperparameters['enc0_network']} enc_dim "
                               f"{hyperparameters['enc_dim']}, lr {hyperparameters['learning_rate']}, up to "
                               f"{hyperparameters['epochs']} epochs (prone to overfit)")

        # 4. watch until the loop settles
        self.stage = "4. watching the retraining loop"
        self._watch(watcher, sagemaker, sqs, logs, names)

        # 5. evaluate the served model, report
        self.stage = "5. evaluating the served model"
        self._start_embed_example(names)
        summary = self._summarize(settings, names, watcher, sagemaker, logs, run_dir, started_at, data_text,
                                  int(hyperparameters["enc_dim"]))
        paths = write_report(summary, run_dir)
        self.stage = "after the report"
        self._print_summary(summary, paths, names)
        if summary.outcome != "ok":
            return 1
        if options.keep_endpoint:
            self.stage = "serving (--keep-endpoint, after the report)"
            self._serve_until_interrupted(names, run_dir)
        return 0

    def _watch(self, watcher: Watcher, sagemaker: SageMakerClient, sqs: Any, logs: Any, names: LocalNames) -> None:
        assert self.pump is not None
        deadline = time.monotonic() + self.options.timeout
        settled_checks = 0
        while True:
            watcher.drain(sqs)
            watcher.tail_logs(logs)
            watcher.watch_endpoint(sagemaker)
            if self._settled(sagemaker, names, watcher):
                settled_checks += 1
                if settled_checks >= 3:
                    return
            else:
                settled_checks = 0
            if time.monotonic() > deadline:
                raise DemoError(f"the loop did not settle within {self.options.timeout:.0f} s (--timeout); "
                                f"see {self.run_dir}")
            time.sleep(0.25)

    def _settled(self, sagemaker: SageMakerClient, names: LocalNames, watcher: Watcher) -> bool:
        """Nothing is running, queued or deploying, and the lineage reached an end."""
        assert self.pump is not None
        jobs = sagemaker.list_training_jobs(NameContains=LINEAGE, MaxResults=100)["TrainingJobSummaries"]
        if not jobs or any(job["TrainingJobStatus"] in ("InProgress", "Stopping") for job in jobs):
            return False
        kinds = {event.get("detail-type") for event in watcher.project_events}
        ended = kinds & {MODEL_PROMOTED, PROMOTION_SKIPPED, RETRAINING_EXHAUSTED, TRAINING_FAILED}
        if not ended and not watcher.dead_letters:
            return False
        with contextlib.suppress(sagemaker.exceptions.ClientError):
            status = sagemaker.describe_endpoint(EndpointName=names.endpoint)["EndpointStatus"]
            if status in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
                return False
        return self.pump.idle()

    # -- results

    def _summarize(self, settings: Settings, names: LocalNames, watcher: Watcher, sagemaker: SageMakerClient,
                   logs: Any, run_dir: Path, started_at: str, data_text: str, enc_dim: int) -> RunSummary:
        assert self.pump is not None and self.services is not None
        attempts = self._attempts(sagemaker, logs, watcher, run_dir)
        promoted_job: str | None = None
        promoted_value: float | None = None
        ssm = boto3.client("ssm")
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            record = json.loads(ssm.get_parameter(Name=names.serving_parameter)["Parameter"]["Value"])
            promoted_job, promoted_value = record.get("trainingJobName"), record.get("metricValue")
        endpoint_status: str | None = None
        with contextlib.suppress(sagemaker.exceptions.ClientError):
            endpoint_status = sagemaker.describe_endpoint(EndpointName=names.endpoint)["EndpointStatus"]
        spearman: float | None = None
        embedding_dim: int | None = None
        pairs = 0
        outcome = "ok"
        if promoted_job and endpoint_status == "InService":
            evaluation = self._evaluate(names)
            if evaluation is None:
                self.console.line("eval", "no regression test split to correlate with; skipped the Spearman score")
            else:
                spearman, embedding_dim, pairs = evaluation
                self.console.line("eval", f"test Spearman {spearman:.3f} over {pairs} pairs (cosine of the in0 "
                                          f"embeddings from InvokeEndpoint {names.endpoint}, {embedding_dim} values "
                                          "each)")
        elif not promoted_job:
            outcome = "no model was promoted (see the events above and the report)"
        else:
            outcome = f"endpoint {names.endpoint} is {endpoint_status}, not InService"
        if watcher.dead_letters:
            outcome = f"{len(watcher.dead_letters)} event(s) ended in the dead-letter queue"
        deliveries = []
        start = self.pump.deliveries()[0].started if self.pump.deliveries() else time.time()
        for delivery in self.pump.deliveries():
            item = delivery.as_dict()
            item["offset"] = delivery.started - start
            deliveries.append(item)
        assert self.services.endpoints is not None
        return RunSummary(
            run_dir=str(run_dir), started_at=started_at, wall_seconds=time.monotonic() - self.console.started,
            environment=settings.env_name, deployment=settings.deployment, data=data_text,
            endpoint_name=names.endpoint, attempts=attempts, promoted_job=promoted_job,
            promoted_value=promoted_value, endpoint_status=endpoint_status, enc_dim=enc_dim,
            embedding_dim=embedding_dim, spearman=spearman, test_pairs=pairs, deliveries=deliveries,
            dead_letters=watcher.dead_letters, notifications=watcher.notifications, outcome=outcome,
            services={"moto": self.services.endpoints.moto, "sagemaker": self.services.endpoints.sagemaker},
            process_groups=self.process_groups(),
        )

    def _attempts(self, sagemaker: SageMakerClient, logs: Any, watcher: Watcher, run_dir: Path) -> list[Attempt]:
        from control_plane.aws.training_logs import TrainingLogs
        from o2v_core.metric_series import loss_metric_for, series_from_lines

        callers = _callers(run_dir / "services" / "sagemaker" / "api-calls.jsonl")
        reader = TrainingLogs(logs)
        attempts = []
        summaries = sagemaker.list_training_jobs(NameContains=LINEAGE, MaxResults=100, SortBy="CreationTime",
                                                 SortOrder="Ascending")["TrainingJobSummaries"]
        for item in summaries:
            name = item["TrainingJobName"]
            job = sagemaker.describe_training_job(TrainingJobName=name)
            tags = tag_dict([{"Key": tag["Key"], "Value": tag["Value"]}
                             for tag in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])])
            lineage = Lineage.from_tags(tags)
            hps = dict(job.get("HyperParameters", {}))
            metric = loss_metric_for(hps.get("output_layer", "softmax"))
            series = series_from_lines(reader.metric_lines(name), metric=metric)
            validation = list(series.validation)
            best = min(validation, key=lambda point: point[1]) if validation else None
            diverged = watcher.diverged.get(name)
            end, begin = job.get("TrainingEndTime"), job.get("TrainingStartTime")
            attempts.append(Attempt(
                name=name, attempt=lineage.attempt, parent=lineage.parent, hyperparameters=hps,
                status=job["TrainingJobStatus"], secondary_status=job["SecondaryStatus"],
                failure_reason=job.get("FailureReason"), metric=metric, validation=validation,
                train=list(series.train), best_epoch=best[0] if best else None,
                best_value=best[1] if best else None, diverged=diverged is not None,
                divergence_reason=diverged.get("reason") if diverged else None,
                detected_at_epoch=diverged.get("detected_at_epoch") if diverged else None,
                stopped_by_monitor=bool(diverged and diverged.get("stoppedJob")) or name in watcher.epochs_saved,
                epochs_saved=watcher.epochs_saved.get(name, 0),
                launched_by=callers.get(name, "unknown"),
                seconds=(end - begin).total_seconds() if end and begin else None,
                model_artifact=job.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
            ))
        return attempts

    def _evaluate(self, names: LocalNames) -> tuple[float, int, int] | None:
        """Test Spearman of the served embeddings: cosine of the in0 embeddings of both sentences.

        Raw STS-B: the test sentences are tokenized by ``o2v embed``'s client, exactly as the
        training data was. A prepared dataset: its ``test.jsonl`` token ids, when its labels are
        scores (regression). None when there is nothing to correlate with.
        """
        from scipy.stats import spearmanr

        from training.serving.client import SageMakerInvoker

        assert self.run_dir is not None and self.data_choice is not None
        data = self.run_dir / "data"
        manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
        invoker = SageMakerInvoker(boto3.client("sagemaker-runtime"), names.endpoint)
        limit = self.size.test_rows
        if self.data_choice.prepared:
            test = data / "test" / "test.jsonl"
            if manifest.get("label", {}).get("kind") != "regression" or not test.is_file():
                return None
            rows = [json.loads(line) for line in test.read_text(encoding="utf-8").splitlines() if line.strip()]
            rows = rows[:limit] if limit is not None else rows
            first = _embed_ids(invoker, [row["in0"] for row in rows])
            second = _embed_ids(invoker, [row["in1"] for row in rows])
            gold = [float(row["label"]) for row in rows]
        else:
            from training.data import readers, stsb
            from training.data.tokenizer import Tokenizer
            from training.serving.client import SentenceEncoder
            from training.serving.endpoint_assets import endpoint_assets

            pairs = [row for row in readers.read_stsb(stsb.split_files(self.data_choice.directory)["test"][0])
                     if isinstance(row, readers.Pair) and row.label is not None]
            pairs = pairs[:limit] if limit is not None else pairs
            # What `o2v embed --endpoint NAME` does: the vocabulary from the endpoint name alone.
            served = endpoint_assets(boto3.client("sagemaker"), boto3.client("s3"), names.endpoint)
            self.console.line("endpoint", f"vocabulary of {names.endpoint}: {served.vocab_uri} "
                                          f"(job {short(served.training_job)})")
            vocab_size, max_seq_len = served.encoder_limits("in0")
            encoder = SentenceEncoder(served.tokenizer or Tokenizer(), served.vocab,
                                      vocab_size=vocab_size, max_seq_len=max_seq_len)
            first = encoder.embed(invoker, [pair.text0 for pair in pairs])
            second = encoder.embed(invoker, [pair.text1 for pair in pairs])
            gold = [float(pair.label) for pair in pairs if pair.label is not None]
        scores = [_cosine(a, b) for a, b in zip(first, second, strict=True)]
        rho = float(spearmanr(scores, gold).statistic)
        return rho, len(first[0]) if first else 0, len(gold)

    def _print_summary(self, summary: RunSummary, paths: dict[str, Path], names: LocalNames) -> None:
        console = self.console
        console.plain()
        console.plain("Attempts:")
        for attempt in summary.attempts:
            best = f"{attempt.best_value:.4f} @ epoch {attempt.best_epoch}" if attempt.best_value is not None else "n/a"
            diverged = (f"diverged at epoch {attempt.detected_at_epoch} ({attempt.divergence_reason}; "
                        + (f"stopped, >= {attempt.epochs_saved} epochs saved)" if attempt.stopped_by_monitor
                           else "left to finish)")
                        if attempt.diverged else "healthy")
            promoted = "  <- promoted" if attempt.name == summary.promoted_job else ""
            console.plain(f"  {attempt.attempt}. {attempt.name}  dropout {attempt.dropout:<5} {attempt.status:<9} "
                          f"best {best:<22} {diverged}; launched by {attempt.launched_by}{promoted}")
        if summary.spearman is not None:
            console.plain(f"Served: {summary.promoted_job} on endpoint {names.endpoint}; STS-B test Spearman "
                          f"{summary.spearman:.3f} ({summary.test_pairs} pairs, {summary.embedding_dim}-d embeddings)")
        console.plain(f"Outcome: {summary.outcome}. Wall time {summary.wall_seconds:.0f} s.")
        console.plain(f"Report: {paths['report']}  (plot: {paths['plot'].name}, data: {paths['run'].name})")
        self._finish_embed_example()

    def _start_embed_example(self, names: LocalNames) -> None:
        """Start ``o2v embed`` against the local endpoint (it loads torch: let it run meanwhile)."""
        assert self.services is not None
        sagemaker = boto3.client("sagemaker")
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=names.endpoint)
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        except sagemaker.exceptions.ClientError:
            return
        if endpoint["EndpointStatus"] != "InService":
            return
        path = self._download_model(model["PrimaryContainer"]["ModelDataUrl"])
        arguments = ["embed", *EXAMPLE_SENTENCES, "--endpoint", names.endpoint, "--region", self.options.region,
                     "--model", str(path)]
        process = subprocess.Popen([sys.executable, "-m", "training.cli", *arguments], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=self.services.environment())
        self._example = (arguments, path, process)

    def _finish_embed_example(self) -> None:
        """Show the ``o2v embed`` example's answer, and how to run it yourself."""
        if self._example is None or self.services is None:
            return
        arguments, model, process = self._example
        console = self.console
        console.plain("o2v embed, through the local endpoint (sagemaker-runtime InvokeEndpoint):")
        console.plain("  $ o2v " + shlex.join(arguments))
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            console.plain("  (no answer within 120 s)")
            return
        for line in (stdout.splitlines() if process.returncode == 0 else stderr.splitlines())[:4]:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                item = json.loads(line)
                values = ", ".join(f"{value:.4f}" for value in item["embedding"][:4])
                line = (f'{{"sentence": {json.dumps(item["sentence"])}, "embedding": [{values}, ...]}}  '
                        f"({len(item['embedding'])} values)")
            console.plain(f"  {line}")
        env = self.services.environment({})
        if self.options.keep_endpoint:
            console.plain("The endpoint stays up until Ctrl-C; from another shell:")
            console.plain(f"  $ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={env['AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME']} "
                          "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\")
            console.plain("      o2v " + shlex.join(arguments))
        else:
            console.plain("After the demo (it stops the endpoint; --keep-endpoint keeps it), serve the model yourself:")
            console.plain(f"  $ o2v serve --model {model} --port 8080 &")
            console.plain("  $ o2v " + shlex.join(["embed", *EXAMPLE_SENTENCES, "--model", str(model)]))

    def _download_model(self, uri: str) -> Path:
        assert self.run_dir is not None
        target = self.run_dir / "model.tar.gz"
        bucket, key = uri[len("s3://"):].split("/", 1)
        boto3.client("s3").download_file(bucket, key, str(target))
        return target

    def _serve_until_interrupted(self, names: LocalNames, run_dir: Path) -> None:
        assert self.services is not None
        ready = {"endpoint": names.endpoint, "serving_parameter": names.serving_parameter,
                 "environment": self.services.environment({}),
                 "process_groups": self.process_groups(), "pid": os.getpid()}
        procs.write_ready_file(run_dir / "serving.json", ready)
        self.console.line("serving", f"endpoint {names.endpoint} stays up until Ctrl-C "
                                     f"(connection details in {run_dir / 'serving.json'})")
        while True:
            time.sleep(3600)

    # -- cleanup

    def process_groups(self) -> list[int]:
        groups = list(self.services.process_groups()) if self.services is not None else []
        if self.pump is not None:
            groups += self.pump.process_groups()
        return groups

    def stop(self) -> list[int]:
        """Stop the pump's workers and the services; returns any process group still alive."""
        if self._stopped:
            return []
        self._stopped = True
        if self._example is not None and self._example[2].poll() is None:
            self._example[2].kill()
            self._example[2].wait()
        groups = self.process_groups()
        if self.pump is not None:
            self.pump.stop()
        if self.services is not None:
            self.services.stop()
        return [group for group in groups if procs.group_alive(group)]


def _callers(path: Path) -> dict[str, str]:
    """Who created each training job, from the local SageMaker API's call log (user agent)."""
    callers: dict[str, str] = {}
    if not path.exists():
        return callers
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("operation") != "CreateTrainingJob" or record.get("error"):
            continue
        agent = str(record.get("userAgent", ""))
        app = next((part.split("/", 1)[1] for part in agent.split() if part.startswith("app/")), None)
        callers[str(record.get("resource"))] = f"{app} (Lambda)" if app else "o2v demo (launcher)"
    return callers


def _promotion_text(result: dict[str, Any]) -> str:
    outcome = result.get("outcome", "?")
    job = short(str(result.get("trainingJobName", "")))
    candidate = result.get("candidateValue")
    candidate_text = f"{candidate:.4f}" if isinstance(candidate, (int, float)) else "n/a"
    if outcome == MODEL_PROMOTED:
        previous = result.get("previousValue")
        previous_text = f"{previous:.4f}" if isinstance(previous, (int, float)) else "nothing served yet"
        return (f"{outcome}: {job} ({result.get('metricName')} {candidate_text}; before: {previous_text}) -> "
                f"model {result.get('modelName')} on endpoint {result.get('endpointName')}")
    if outcome == PROMOTION_SKIPPED:
        return f"{outcome}: {job} ({candidate_text}): {result.get('reason')}"
    return json.dumps(result, default=str)[:200]


def _embed_ids(invoker: Any, sequences: list[list[int]], batch_size: int = 100) -> list[list[float]]:
    embeddings: list[list[float]] = []
    for start in range(0, len(sequences), batch_size):
        body = json.dumps({"instances": [{"in0": ids} for ids in sequences[start:start + batch_size]]}).encode()
        embeddings.extend(item["embeddings"] for item in json.loads(invoker.invoke(body))["predictions"])
    return embeddings


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def run_demo(options: DemoOptions, demo: Demo | None = None) -> int:
    """Run the demo; stop every local process on return, on error, on Ctrl-C and on SIGTERM/SIGHUP.

    A signal during the run stops it (exit 130) and leaves a partial report; one during the
    clean-up is noted and the clean-up finishes (see :mod:`training.local_cloud.interruption`)."""
    demo = demo or Demo(options)
    with guarded_signals() as guard:
        try:
            code = demo.run()
            guard.cleaning_up()
        except KeyboardInterrupt as error:
            guard.cleaning_up()
            how = how_interrupted(error)
            demo.console.plain(f"\no2v demo: interrupted by {how} during {demo.stage}; stopping the local "
                               "services ...")
            code = 130
            if demo.run_dir is not None:
                report = write_interrupted_report(demo.run_dir, how=how, stage=demo.stage, started=demo.started)
                if report is not None:
                    demo.console.plain(f"o2v demo: partial report (interrupted): {report}")
        finally:
            guard.cleaning_up()
            left = demo.stop()
            if guard.noted:
                demo.console.plain(f"o2v demo: {', '.join(guard.noted)} during the clean-up: finished it first")
            if left:
                demo.console.plain(f"o2v demo: process group(s) {left} did not stop")
            else:
                demo.console.plain("o2v demo: every local process stopped.")
    return code
