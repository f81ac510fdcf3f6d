"""On "SageMaker Training Job State Change" (Completed/Stopped/Failed): judge the whole curve.

Thin: parse the event, read the settings, hand over to
:func:`control_plane.logic.evaluator.evaluate_finished_job`. A malformed event (wrong source or
detail-type, missing field, another deployment's job) is logged with the field named and raised,
so it ends in the dead-letter queue instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.detector import DetectorConfig
from o2v_core.events import MalformedEvent
from o2v_core.function_settings import EvaluatorSettings

from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.logic.evaluator import evaluate_finished_job
from control_plane.logic.sagemaker_event import parse_training_job_state_change
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: object) -> dict[str, str]:
    config = EvaluatorSettings.from_env()
    try:
        change = parse_training_job_state_change(event, config.deployment)
        evaluation = evaluate_finished_job(
            change,
            config.deployment,
            jobs=TrainingJobs(),
            logs=TrainingLogs(),
            bus=EventBus(config.event_bus_name),
            detector=DetectorConfig.from_json(config.detector_config),
        )
    except MalformedEvent as error:
        logger.error("malformed event: no action taken; it goes to the dead-letter queue", extra={"error": str(error)})
        raise
    logger.info("evaluated finished training job", extra=evaluation.as_dict())
    return evaluation.as_dict()
