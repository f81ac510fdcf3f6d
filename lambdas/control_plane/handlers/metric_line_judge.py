"""On a CloudWatch Logs subscription delivery (``o2v_core.functions.METRIC_LINE_JUDGE``).

Thin: decode the Base64 GZIP JSON payload (:mod:`o2v_core.log_subscription`) and hand the batch
to :func:`control_plane.logic.metric_line_judge.judge_batch`. A payload that cannot be decoded
raises, so it ends in the on-failure queue with its alarm instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.log_subscription import decode

from control_plane.handlers.wiring import judge_from_env
from control_plane.logic.metric_line_judge import judge_batch
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: object) -> dict[str, str]:
    return judge_batch(judge_from_env(), decode(event)).as_dict()
