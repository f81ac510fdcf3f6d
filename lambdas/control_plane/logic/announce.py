"""Operator notifications that go out once: claim in the ledger, put the event, confirm.

Keys are deterministic, one per outcome that must be announced once:

* ``promoted/<endpoint config>``: ``ModelPromoted`` for one change of the served model (a config is
  deployed at most once: its name is derived from the job, and a rolled-back job is never
  redeployed);
* ``exhausted/<last job of the lineage>``: ``RetrainingExhausted`` for one lineage;
* ``rolled-back/<endpoint config>``: ``ModelRolledBack`` for one rejected deployment.

docs/guarantees.md explains what is exactly once and the one window that is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger
from o2v_core.events import Detail, put_events_entry
from o2v_core.runtime_config import ControlPlaneConfig

from control_plane.aws.announcements import Announcements
from control_plane.aws.event_bus import EventBus

logger = Logger(child=True)


def promoted_key(endpoint_config_name: str) -> str:
    return f"promoted/{endpoint_config_name}"


def exhausted_key(job_name: str) -> str:
    return f"exhausted/{job_name}"


def rolled_back_key(endpoint_config_name: str) -> str:
    return f"rolled-back/{endpoint_config_name}"


@dataclass(frozen=True)
class Announcer:
    bus: EventBus
    ledger: Announcements

    def once(self, key: str, detail: Detail) -> bool:
        """Put ``detail`` unless ``key`` was claimed before; True when this call put it.

        Claimed before the event, so that a retry or a concurrent delivery never puts it twice;
        a claimant that dies before the event leaves a claim without ``sent``, which
        :meth:`republish_stale` (the reconciler) puts later.
        """
        entry = put_events_entry(detail, self.bus.bus_name)
        if not self.ledger.claim(key, entry):
            logger.info("already announced (or being announced)", extra={"key": key, "detailType": detail.detail_type})
            return False
        self.bus.publish_entry(entry)
        self.ledger.mark_sent(key)
        return True

    def republish_stale(self, before: datetime, limit: int) -> list[str]:
        """Put the events of claims older than ``before`` that were never confirmed; their keys."""
        done = []
        for claim in self.ledger.stale_claims(before, limit):
            self.bus.publish_entry(claim.entry)
            self.ledger.mark_sent(claim.key)
            logger.warning("announced a claim its claimant never confirmed", extra={"key": claim.key})
            done.append(claim.key)
        return done


def announcer_from_config(config: ControlPlaneConfig) -> Announcer:
    """The project bus and the ledger in the artifact bucket, as the handlers use them."""
    return Announcer(EventBus(config.event_bus_name), Announcements(config.artifact_bucket, config.deployment))
