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

from control_plane.aws.training_logs import Pacer, TrainingLogs
from control_plane.handlers.wiring import judge_from_env
from control_plane.logic.monitor import run_monitor
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[str]]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # Paced: the sweep takes a fixed share of the account's Logs quotas (o2v_core.aws_quotas).
    logs = TrainingLogs(pacer=Pacer(safety_net_logs_per_second()))
    return run_monitor(judge_from_env(logs), remaining_ms=remaining).as_dict()
