"""The run's summary: every attempt as SageMaker and the logs tell it, what is served, the outcome."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from o2v_core.hyperparameters import DEFAULT_OUTPUT_LAYER
from o2v_core.naming import Lineage, tag_dict
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from training.demo.console import Console
from training.demo.options import LINEAGE
from training.demo.report import Attempt, RunSummary
from training.demo.watcher import Watcher

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


def served_record(serving_parameter: str) -> tuple[str | None, float | None]:
    """The served-model record's training job and value, or ``(None, None)`` before any promotion."""
    ssm = boto3.client("ssm")
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        record = json.loads(ssm.get_parameter(Name=serving_parameter)["Parameter"]["Value"])
        return record.get("trainingJobName"), record.get("metricValue")
    return None, None


def endpoint_status(sagemaker: SageMakerClient, endpoint: str) -> str | None:
    with contextlib.suppress(sagemaker.exceptions.ClientError):
        return str(sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"])
    return None


def attempts(sagemaker: SageMakerClient, logs: Any, watcher: Watcher, run_dir: Path) -> list[Attempt]:
    """Every attempt of the demo's lineage, oldest first, with its curve and who launched it."""
    from o2v_core.metric_series import loss_metric_for, series_from_lines

    callers = launched_by(run_dir / "services" / "sagemaker" / "api-calls.jsonl")
    found = []
    summaries = sagemaker.list_training_jobs(NameContains=LINEAGE, MaxResults=100, SortBy="CreationTime",
                                             SortOrder="Ascending")["TrainingJobSummaries"]
    for item in summaries:
        name = item["TrainingJobName"]
        job = sagemaker.describe_training_job(TrainingJobName=name)
        tags = tag_dict([{"Key": tag["Key"], "Value": tag["Value"]}
                         for tag in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])])
        lineage = Lineage.from_tags(tags)
        hps = dict(job.get("HyperParameters", {}))
        metric = loss_metric_for(hps.get("output_layer", DEFAULT_OUTPUT_LAYER))
        series = series_from_lines(job_log_lines(logs, name), metric=metric)
        validation = list(series.validation)
        best = min(validation, key=lambda point: point[1]) if validation else None
        diverged = watcher.diverged.get(name)
        end, begin = job.get("TrainingEndTime"), job.get("TrainingStartTime")
        found.append(Attempt(
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
    return found


def job_log_lines(logs: Any, job_name: str) -> list[str]:
    """Every line of the job's streams (``<job>/algo-<n>-<epoch seconds>``), stream by stream, in time order.

    The demo is a client of the local services like any other: it reads the training log group
    through the Logs API (``series_from_lines`` keeps the ``#quality_metric`` lines), not through
    the Lambda code's reader.
    """
    try:
        streams = logs.describe_log_streams(logGroupName=TRAINING_JOB_LOG_GROUP,
                                            logStreamNamePrefix=f"{job_name}/")["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []  # the job never logged
    lines: list[str] = []
    for stream_name in sorted(stream["logStreamName"] for stream in streams):
        token: str | None = None
        while True:
            request: dict[str, Any] = {"logGroupName": TRAINING_JOB_LOG_GROUP, "logStreamName": stream_name,
                                       "startFromHead": True}
            if token is not None:
                request["nextToken"] = token
            answer = logs.get_log_events(**request)
            events = answer.get("events", [])
            lines.extend(str(event.get("message", "")) for event in events)
            if not events or answer.get("nextForwardToken") == token:
                break
            token = answer.get("nextForwardToken")
    return lines


def launched_by(path: Path) -> dict[str, str]:
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


def print_summary(console: Console, summary: RunSummary, paths: dict[str, Path]) -> None:
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
        console.plain(f"Served: {summary.promoted_job} on endpoint {summary.endpoint_name}; STS-B test Spearman "
                      f"{summary.spearman:.3f} ({summary.test_pairs} pairs, {summary.embedding_dim}-d embeddings)")
    console.plain(f"Outcome: {summary.outcome}. Wall time {summary.wall_seconds:.0f} s.")
    console.plain(f"Report: {paths['report']}  (plot: {paths['plot'].name}, data: {paths['run'].name})")
