"""The metric-line judge: judge the one job whose ``#quality_metric`` lines CloudWatch Logs delivered.

A subscription filter on SageMaker's training log group (pattern
:data:`o2v_core.metric_lines.FILTER_PATTERN`) hands each batch of matching lines of one log stream
to this function within seconds of the line. Streams are named ``<TrainingJobName>/algo-<n>-<epoch
seconds>``, so the batch names its job; the work is then per metric line, not jobs times ticks:

* a batch of another deployment's job (the log group is the account's, shared) is dropped without
  a single AWS call, so one deployment's load costs another nothing but the invocation;
* a batch without any per-epoch metric line (final test metrics only) is dropped too;
* a batch of per-epoch train lines without a validation line is stored (the generalization-gap
  rule compares each epoch's train and validation loss, and the two often arrive in separate
  batches), and judged only when the detector uses that rule: a train line changes no other rule;
* otherwise the batch's metric lines go into the job's item in the curve store
  (:mod:`control_plane.aws.curve_store`, one UpdateItem that returns the whole item) and the job
  is judged on the stored curve: no CloudWatch Logs call at all. SageMaker is asked only on the
  job's first line (DescribeTrainingJob and ListTags: its owner, ARN and hyperparameters, then
  kept in the item) and when the curve diverges or a reported job's stop falls due: then
  :func:`control_plane.logic.monitor.judge_job` decides on fresh state, with the stored curve.

Duplicate deliveries set the same attributes again and judge the same curve again: the report is
at most once through the ``o2v:diverged`` tag and the item's ``reported`` mark. A batch with
several epochs is judged once on all of them; lines that arrive out of order fill in the curve.

``CONTROL_MESSAGE`` deliveries (CloudWatch Logs checking the destination) are acknowledged. Any error
propagates: the asynchronous invocation is retried and then lands in the on-failure queue, alarmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from o2v_core.curve_store import JUDGED_HYPERPARAMETERS, JobMeta, JobRecord, StoredLine, trimmed
from o2v_core.early_stopping import StopChoice
from o2v_core.log_subscription import DATA_MESSAGE, LogBatch
from o2v_core.metric_lines import parse_line
from o2v_core.metric_series import decide_series
from o2v_core.naming import TAG_DEPLOYMENT, job_prefix

from control_plane.aws.training_jobs import IN_PROGRESS, TrainingJob
from control_plane.logic.jobs import TAG_DIVERGED, curve_of
from control_plane.logic.monitor import Judge, Verdict, judge_job, stop_choice

logger = Logger(child=True)


@dataclass(frozen=True)
class JudgeResult:
    job: str
    verdict: Verdict | str
    # A diverged job's stop-or-finish choice (o2v_core.early_stopping.choose_stop): "stopped, <n>
    # epochs saved" or "left to finish: <why>"; empty when no choice was made.
    choice: str = ""

    def as_dict(self) -> dict[str, str]:
        data = {"job": self.job, "verdict": self.verdict}
        if self.choice:
            data["choice"] = self.choice
        return data


def job_of_stream(log_stream: str) -> str:
    """The training job a SageMaker log stream belongs to (``<job>/algo-1-1700000000`` -> ``<job>``)."""
    return log_stream.split("/", 1)[0]


def has_validation_epoch(batch: LogBatch) -> bool:
    for event in batch.log_events:
        try:
            line = parse_line(event.message)
        except ValueError:
            return True  # a garbled metric line: store it, the curve names it as skipped
        if line is not None and line.channel == "validation" and line.epoch is not None:
            return True
    return False


def decides(judge: Judge, batch: LogBatch) -> bool:
    """Whether the batch's lines can change the verdict: a validation epoch always; train epochs
    only under the generalization-gap rule (the only rule that reads the train loss)."""
    return has_validation_epoch(batch) or judge.detector.use_generalization_gap


def curve_lines(batch: LogBatch) -> list[StoredLine]:
    """The batch's per-epoch metric lines (and garbled ones, which the curve reports), to store."""
    kept = []
    for event in batch.log_events:
        try:
            line = parse_line(event.message)
        except ValueError:
            line = None  # garbled: kept, so the judge's curve names it
        else:
            if line is None or line.epoch is None:
                continue  # not a metric line, or a final test metric
        kept.append(StoredLine(event.timestamp, batch.log_stream, trimmed(event.message)))
    return kept


def judge_batch(judge: Judge, batch: LogBatch) -> JudgeResult:
    job = job_of_stream(batch.log_stream)
    if batch.message_type != DATA_MESSAGE:
        return JudgeResult(job, "control_message")
    if not job.startswith(job_prefix(judge.deployment)):
        return JudgeResult(job, "other_deployment")
    lines = curve_lines(batch)
    if not lines:
        return JudgeResult(job, "no_epoch_line")
    record = judge.store.add_lines(job, lines)
    if not decides(judge, batch):
        return JudgeResult(job, "stored_train_lines")  # read with the epoch's validation line
    choices: list[str] = []
    verdict = judge_record(judge, record, on_choice=lambda _, choice: choices.append(choice.summary))
    logger.info("judged training job", extra={"job": job, "verdict": verdict, "lines": len(batch.log_events),
                                              "storedLines": len(record.lines)})
    return JudgeResult(job, verdict, "".join(choices))


def judge_record(
    judge: Judge, record: JobRecord, *, on_choice: Callable[[str, StopChoice], None] | None = None
) -> Verdict:
    """Judge a job on its stored curve; SageMaker only when needed (see the module doc)."""
    name = record.job
    meta = record.meta
    if meta is None:  # the job's first line here: learn once what judging needs
        description = judge.jobs.describe(name)
        if description is None:
            return "gone"
        arn = str(description["TrainingJobArn"])
        given = {str(k): str(v) for k, v in (description.get("HyperParameters") or {}).items()}
        meta = JobMeta(arn, judge.jobs.tags(arn), {k: given[k] for k in JUDGED_HYPERPARAMETERS if k in given})
        judge.store.remember(name, meta)
        if description.get("TrainingJobStatus") != IN_PROGRESS:
            return "not_running"
    if meta.tags.get(TAG_DEPLOYMENT) != judge.deployment:
        return "skipped"  # the prefix matched, but the job is not ours (remembered: no call next time)
    job = TrainingJob(name, meta.arn, {"HyperParameters": dict(meta.hyperparameters)}, meta.tags)
    series = curve_of(job, record.messages, source=f"curve store of {name}")
    if record.reported or TAG_DIVERGED in meta.tags:
        if judge.finish_within is None or not stop_choice(job, series, judge.finish_within).stop:
            return "already_reported"
    elif not decide_series(series, judge.detector).diverged:
        return "checked"
    # Diverged, or a reported job's stop is due: decide on SageMaker's state now, with this curve.
    verdict = judge_job(judge, name, meta.arn, series=series, on_choice=on_choice)
    if verdict in ("diverged", "already_reported", "stopped_again"):
        judge.store.mark_reported(name, verdict)
    return verdict
