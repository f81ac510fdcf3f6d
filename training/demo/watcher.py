"""Prints the run's progress from what the local services publish: state changes and project events
(through an observer rule beside the project's own), the training logs, the endpoint, and every
delivery the event pump makes (rules, the Logs subscription, the schedules, the dead-letter queue)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

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
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from local_aws.events.pump import SCHEDULE, SUBSCRIPTION, Delivery
from training.demo.console import Console, short
from training.demo.deployment import LocalNames


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
