"""The metric-line judge: judge the one job whose ``#quality_metric`` lines CloudWatch Logs delivered.

A subscription filter on SageMaker's training log group (pattern
:data:`o2v_core.metric_lines.FILTER_PATTERN`) hands each batch of matching lines of one log stream
to this function within seconds of the line. Streams are named ``<TrainingJobName>/algo-<n>-<epoch
seconds>``, so the batch names its job; the work is then per metric line, not jobs times ticks:

* a batch of another deployment's job (the log group is the account's, shared) is dropped without
  a single AWS call, so one deployment's load costs another nothing but the invocation;
* a batch without a per-epoch validation line (train lines, final test metrics) is dropped too;
* otherwise :func:`control_plane.logic.monitor.judge_job` judges that job.

``CONTROL_MESSAGE`` deliveries (CloudWatch Logs checking the destination) are acknowledged. Any error
propagates: the asynchronous invocation is retried and then lands in the on-failure queue, alarmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger
from o2v_core.log_subscription import DATA_MESSAGE, LogBatch
from o2v_core.metric_lines import parse_line
from o2v_core.naming import job_prefix

from control_plane.logic.monitor import Judge, Verdict, judge_job

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
            return True  # a garbled metric line: let the judge read the log and report it
        if line is not None and line.channel == "validation" and line.epoch is not None:
            return True
    return False


def judge_batch(judge: Judge, batch: LogBatch) -> JudgeResult:
    job = job_of_stream(batch.log_stream)
    if batch.message_type != DATA_MESSAGE:
        return JudgeResult(job, "control_message")
    if not job.startswith(job_prefix(judge.deployment)):
        return JudgeResult(job, "other_deployment")
    if not has_validation_epoch(batch):
        return JudgeResult(job, "no_validation_line")
    choices: list[str] = []
    verdict = judge_job(judge, job, on_choice=lambda _, choice: choices.append(choice.summary))
    logger.info("judged training job", extra={"job": job, "verdict": verdict, "lines": len(batch.log_events)})
    return JudgeResult(job, verdict, "".join(choices))
