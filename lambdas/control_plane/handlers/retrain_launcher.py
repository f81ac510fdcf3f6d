"""On ``ValidationLossDiverged``: launch the next attempt with more dropout, or say it's exhausted.

Thin: parse the event, read the settings, hand over to
:func:`control_plane.logic.retrain.launch_next_attempt`. A malformed event (missing or wrong-typed
field, non-numeric metric, another deployment's job, unknown detail-type) starts no job: it is
logged with the field named and raised, so it ends in the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.events import MalformedEvent, ValidationLossDiverged, parse_event
from o2v_core.function_settings import LauncherSettings
from o2v_core.retrain_policy import RetrainPolicy

from control_plane.aws.training_jobs import TrainingJobs
from control_plane.handlers.wiring import announcer_from_config
from control_plane.logic.retrain import launch_next_attempt
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: object) -> dict[str, str | None]:
    config = LauncherSettings.from_env()
    try:
        diverged = parse_event(event, ValidationLossDiverged)
        outcome = launch_next_attempt(
            diverged,
            config.deployment,
            jobs=TrainingJobs(),
            announcer=announcer_from_config(config),
            policy=RetrainPolicy.from_json(config.retrain_policy),
        )
    except MalformedEvent as error:
        logger.error("malformed event: no job started; it goes to the dead-letter queue", extra={"error": str(error)})
        raise
    logger.info("retrain decision", extra=outcome.as_dict())
    return outcome.as_dict()
