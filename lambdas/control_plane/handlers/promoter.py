"""On ``TrainingSucceeded``: promote the job's model to the endpoint when it beats the served one.

Thin: parse the event (a malformed one raises :class:`o2v_core.events.MalformedEvent`, so it
ends in the dead-letter queue), read the settings, hand over to
:class:`control_plane.logic.promotion.Promoter`. Every decision is logged and put on the
project bus as ``ModelPromoted`` or ``PromotionSkipped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.events import TrainingSucceeded, parse_event
from o2v_core.runtime_config import ControlPlaneConfig

from control_plane.logic.promotion import promoter_from_config

logger = Logger()


def handler(event: Mapping[str, Any], context: object) -> dict[str, object]:
    training = parse_event(event, TrainingSucceeded)
    logger.append_keys(trainingJobName=training.trainingJobName, deployment=training.deployment)
    try:
        outcome = promoter_from_config(ControlPlaneConfig.from_env()).handle(training)
    finally:
        logger.remove_keys(["trainingJobName", "deployment"])
    return outcome.as_dict()
