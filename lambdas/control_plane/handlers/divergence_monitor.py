"""Every minute (``o2v_core.functions.DIVERGENCE_MONITOR``): check running jobs' validation curves.

Thin: read the settings, hand over to :func:`control_plane.logic.monitor.run_monitor`. The
scheduled event carries nothing the monitor needs, so it is not parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.detector import DetectorConfig
from o2v_core.runtime_config import ControlPlaneConfig

from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.monitor import run_monitor

logger = Logger()


def handler(event: Mapping[str, Any], context: object) -> dict[str, list[str]]:
    config = ControlPlaneConfig.from_env()
    report = run_monitor(
        config.deployment,
        jobs=TrainingJobs(),
        logs=TrainingLogs(),
        bus=EventBus(config.event_bus_name),
        detector=DetectorConfig.from_json(config.detector_config),
        stop_on_divergence=config.stop_on_divergence,
    )
    return report.as_dict()
