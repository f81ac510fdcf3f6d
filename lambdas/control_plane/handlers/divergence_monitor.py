"""On a schedule (``o2v_core.functions.DIVERGENCE_MONITOR``): the safety net over running jobs.

Thin: read the settings, hand over to :func:`control_plane.logic.monitor.run_monitor` with the
invocation's remaining time, so the run ends before the function's timeout, and with its
CloudWatch Logs calls paced to ``o2v_core.aws_quotas.SAFETY_NET_LOGS_SHARE`` of their quota. The scheduled event
carries nothing the monitor needs, so it is not parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.aws_quotas import safety_net_logs_per_second
from o2v_core.detector import DetectorConfig
from o2v_core.function_settings import JudgeSettings
from o2v_core.resource_names import job_curve_table_name

from control_plane.aws.curve_store import CurveStore
from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import Pacer, TrainingLogs
from control_plane.logic.monitor import Judge, run_monitor
from control_plane.observability import instrumented

logger = Logger()


def judge_from_env(logs: TrainingLogs | None = None) -> Judge:
    """The per-job judge over this deployment's AWS data access (both judging handlers use it)."""
    config = JudgeSettings.from_env()
    return Judge(
        deployment=config.deployment,
        jobs=TrainingJobs(),
        logs=logs or TrainingLogs(),
        bus=EventBus(config.event_bus_name),
        store=CurveStore(job_curve_table_name(config.deployment)),
        detector=DetectorConfig.from_json(config.detector_config),
        stop_on_divergence=config.stop_on_divergence,
        finish_within_epochs=config.finish_diverged_within_epochs,
    )


@instrumented
def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[str]]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # Paced: the sweep takes a fixed share of the account's Logs quotas (o2v_core.aws_quotas).
    logs = TrainingLogs(pacer=Pacer(safety_net_logs_per_second()))
    return run_monitor(judge_from_env(logs), remaining_ms=remaining).as_dict()
