"""The control plane's Lambda functions, defined once for the stacks and for local mode.

The training and serving stacks create one function per spec; local mode's event pump
imports ``handler`` by the same dotted path and calls it with a Lambda-shaped event.
"""

from __future__ import annotations

from dataclasses import dataclass

from o2v_core import events
from o2v_core.function_settings import (
    EvaluatorSettings,
    FromDeployment,
    JudgeSettings,
    LauncherSettings,
    PromoterSettings,
    ReconcilerSettings,
    function_environment,
)
from o2v_core.metric_lines import FILTER_PATTERN
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP
from o2v_core.runtime_config import ControlPlaneConfig


@dataclass(frozen=True)
class LogSubscription:
    """A CloudWatch Logs subscription filter that invokes the function with matching lines.

    The stacks deploy it (``AWS::Logs::SubscriptionFilter`` named :meth:`filter_name`) and local
    mode's Logs delivers it (``local_aws.logs.subscription``), in the format of
    :mod:`o2v_core.log_subscription`.
    """

    log_group: str
    filter_pattern: str

    def filter_name(self, deployment: str, function_id: str) -> str:
        return f"{deployment}-{function_id.replace('_', '-')}"


@dataclass(frozen=True)
class FunctionSpec:
    function_id: str
    handler: str  # dotted path inside the asset directory `lambdas/`
    description: str
    timeout_seconds: int
    # Its own typed settings: its environment holds exactly these fields (function_environment).
    settings: type[FromDeployment]
    schedule: str | None = None  # EventBridge schedule expression, when it runs on a timer
    subscription: LogSubscription | None = None  # when CloudWatch Logs invokes it with log lines
    # The detail types it puts on the project bus (always with source events.SOURCE); the stacks
    # allow its events:PutEvents for exactly these (events:source / events:detail-type keys).
    emits: tuple[str, ...] = ()

    def environment(self, config: ControlPlaneConfig) -> dict[str, str]:
        """Its ``O2V_*`` variables, from the deployment's values (the stacks and local mode call this)."""
        return function_environment(self.settings, config)

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


DIVERGENCE_MONITOR = FunctionSpec(
    "divergence_monitor",
    "control_plane.handlers.divergence_monitor.handler",
    "Safety net every 10 minutes: check in-progress jobs' validation curves, stop diverged jobs, "
    "emit ValidationLossDiverged",
    # Its CloudWatch Logs calls are paced (about 1 s per swept job) and it takes new jobs for 40% of
    # this (control_plane.logic.monitor.RUN_SHARE): about 110 jobs a run. Mostly waiting, at 256 MB.
    timeout_seconds=300,
    settings=JudgeSettings,
    # The metric-line judge reacts to each line within seconds; this sweep only catches what a lost
    # or failed delivery missed, so it runs rarely (docs/scale.md sizes it against the quotas).
    schedule="rate(10 minutes)",
    emits=(events.VALIDATION_LOSS_DIVERGED,),
)
METRIC_LINE_JUDGE = FunctionSpec(
    "metric_line_judge",
    "control_plane.handlers.metric_line_judge.handler",
    "On a #quality_metric line (CloudWatch Logs subscription): judge that job's curve, stop it and emit "
    "ValidationLossDiverged when it diverged",
    timeout_seconds=60,
    settings=JudgeSettings,
    subscription=LogSubscription(TRAINING_JOB_LOG_GROUP, FILTER_PATTERN),
    emits=(events.VALIDATION_LOSS_DIVERGED,),
)
FINISHED_JOB_EVALUATOR = FunctionSpec(
    "finished_job_evaluator",
    "control_plane.handlers.finished_job_evaluator.handler",
    "On a finished training job: evaluate its whole curve, emit ValidationLossDiverged/TrainingSucceeded",
    timeout_seconds=60,
    settings=EvaluatorSettings,
    emits=(events.VALIDATION_LOSS_DIVERGED, events.TRAINING_SUCCEEDED, events.TRAINING_FAILED),
)
RETRAIN_LAUNCHER = FunctionSpec(
    "retrain_launcher",
    "control_plane.handlers.retrain_launcher.handler",
    "On ValidationLossDiverged: launch the next attempt with more dropout, or emit RetrainingExhausted",
    timeout_seconds=60,
    settings=LauncherSettings,
    emits=(events.RETRAINING_EXHAUSTED,),
)
PROMOTER = FunctionSpec(
    "promoter",
    "control_plane.handlers.promoter.handler",
    "On TrainingSucceeded: promote the model to the endpoint when it beats the served one",
    timeout_seconds=120,
    settings=PromoterSettings,
    emits=(events.MODEL_PROMOTED, events.PROMOTION_SKIPPED),
)
RECONCILER = FunctionSpec(
    "reconciler",
    "control_plane.handlers.reconciler.handler",
    "Every 5 minutes: repair what lost events left undone (next attempts, verdicts, promotion decisions, "
    "the served-model record after a rollback)",
    timeout_seconds=300,
    settings=ReconcilerSettings,
    schedule="rate(5 minutes)",
    # It redoes the others' steps (a lost verdict, a lost decision), so it emits their events too.
    emits=(
        events.VALIDATION_LOSS_DIVERGED,
        events.TRAINING_SUCCEEDED,
        events.TRAINING_FAILED,
        events.RETRAINING_EXHAUSTED,
        events.MODEL_PROMOTED,
        events.PROMOTION_SKIPPED,
        events.MODEL_ROLLED_BACK,
    ),
)
FUNCTIONS = (DIVERGENCE_MONITOR, METRIC_LINE_JUDGE, FINISHED_JOB_EVALUATOR, RETRAIN_LAUNCHER, PROMOTER, RECONCILER)
# Functions that need the promotion settings live in the serving stack; the rest in the training stack.
SERVING_FUNCTIONS = (PROMOTER, RECONCILER)
