"""Operator notifications that go out once: claim in the ledger, put the event, confirm.

Keys are deterministic, one per outcome that must be announced once, and derived from the event's
own detail (:func:`key_of`), so that the witness queue's copy names its claim:

* ``promoted/<training job>``: ``ModelPromoted`` for one change of the served model (a job's model
  is deployed at most once: its model and config names are derived from the job, and a
  rolled-back job is never redeployed);
* ``exhausted/<last job of the lineage>``: ``RetrainingExhausted`` for one lineage;
* ``rolled-back/<rejected training job>``: ``ModelRolledBack`` for one rejected deployment.

docs/guarantees.md explains what is exactly once and the one window that is at least once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.events import (
    MODEL_PROMOTED,
    MODEL_ROLLED_BACK,
    RETRAINING_EXHAUSTED,
    ModelPromoted,
    ModelRolledBack,
    RetrainingExhausted,
    put_events_entry,
    to_detail,
)

from control_plane.aws.announcements import Announcements
from control_plane.aws.event_bus import EventBus

logger = Logger(child=True)

WITNESS_BATCH = 100  # far more announcements than a deployment makes in a reconciler interval
# detail-type -> (key kind, the detail field that names the outcome)
_KEYS = {
    MODEL_PROMOTED: ("promoted", "trainingJobName"),
    RETRAINING_EXHAUSTED: ("exhausted", "lastTrainingJobName"),
    MODEL_ROLLED_BACK: ("rolled-back", "rejectedTrainingJobName"),
}


def key_of(detail_type: str, detail: Mapping[str, Any]) -> str:
    """The announcement key of an event, from its detail-type and detail."""
    if detail_type not in _KEYS:
        raise ValueError(f"{detail_type!r} is not announced once (o2v_core.events.ANNOUNCED)")
    kind, name_field = _KEYS[detail_type]
    return f"{kind}/{detail[name_field]}"


def announcement_key(detail: ModelPromoted | RetrainingExhausted | ModelRolledBack) -> str:
    return key_of(detail.detail_type, to_detail(detail))


@dataclass(frozen=True)
class Announcer:
    bus: EventBus
    ledger: Announcements

    def once(self, detail: ModelPromoted | RetrainingExhausted | ModelRolledBack) -> bool:
        """Put ``detail`` unless its announcement was claimed before; True when this call put it.

        Claimed before the event, so that a retry or a concurrent delivery never puts it twice;
        a claimant that dies before the event leaves a claim without ``sent``, which
        :meth:`repair` (the reconciler) puts later, unless the witness shows it was put.
        """
        key = announcement_key(detail)
        entry = put_events_entry(detail, self.bus.bus_name)
        if not self.ledger.claim(key, entry):
            logger.info("already announced (or being announced)", extra={"key": key, "detailType": detail.detail_type})
            return False
        self.bus.publish_entry(entry)
        self.ledger.mark_sent(key)
        return True

    def repair(self, before: datetime, limit: int) -> tuple[list[str], list[str]]:
        """Confirm the announcements the witness saw put (every one put reaches it, so up to
        :data:`WITNESS_BATCH` a run), then put at most ``limit`` of those claimed before
        ``before`` and still unconfirmed. Returns (confirmed keys, republished keys)."""
        confirmed = []
        for witnessed in self.ledger.witnessed(WITNESS_BATCH):
            event = witnessed.event
            key = key_of(str(event.get("detail-type")), event.get("detail") or {})
            self.ledger.mark_sent(key)  # before forgetting it: a crash in between only repeats this
            self.ledger.forget(witnessed)
            confirmed.append(key)
        republished = []
        for claim in self.ledger.stale_claims(before, limit):
            self.bus.publish_entry(claim.entry)
            self.ledger.mark_sent(claim.key)
            logger.warning("announced a claim whose claimant died before its event", extra={"key": claim.key})
            republished.append(claim.key)
        return confirmed, republished

