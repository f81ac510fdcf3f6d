"""On ``TrainingSucceeded``: promote the job's model to the endpoint when it beats the served one.

Thin: parse the event, read the settings, hand over to
:class:`control_plane.logic.promotion.Promoter`, which logs every decision with its numbers and
puts it on the project bus as ``ModelPromoted`` or ``PromotionSkipped``. A malformed event
(missing or wrong-typed field, another deployment's job, unknown detail-type) promotes nothing:
it is logged with the field named and raised, so it ends in the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.events import MalformedEvent, TrainingSucceeded, parse_event
from o2v_core.function_settings import PromoterSettings

from control_plane.handlers.wiring import promoter_from_config
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: object) -> dict[str, object]:
    promoter = promoter_from_config(PromoterSettings.from_env())
    try:
        outcome = promoter.handle(parse_event(event, TrainingSucceeded))
    except MalformedEvent as error:
        logger.error("malformed event: nothing promoted; it goes to the dead-letter queue", extra={"error": str(error)})
        raise
    return outcome.as_dict()
