"""Every 5 minutes (``o2v_core.functions.RECONCILER``): repair what lost events left undone.

Thin: read the settings, hand over to :class:`control_plane.logic.reconciler.Reconciler`. The
scheduled event carries nothing the reconciler needs, so it is not parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.function_settings import ReconcilerSettings

from control_plane.handlers.wiring import reconciler_from_config
from control_plane.observability import instrumented

logger = Logger()


@instrumented
def handler(event: Mapping[str, Any], context: object) -> dict[str, object]:
    return reconciler_from_config(ReconcilerSettings.from_env()).run().as_dict()
