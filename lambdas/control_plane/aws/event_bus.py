"""Put the control plane's own events on the project bus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from o2v_core.events import Detail, put_events_entry

from control_plane.aws import clients
from control_plane.observability import count_event

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


class PublishError(RuntimeError):
    """PutEvents accepted the call but rejected the entry; the message carries EventBridge's reason."""


class EventBus:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self.bus_name = bus_name
        self._given = client

    @property
    def _events(self) -> EventBridgeClient:
        return self._given or clients.events()

    def publish(self, detail: Detail) -> str:
        """Put one event; returns its id. Raises on any failure (nothing is dropped silently)."""
        return self.publish_entry(put_events_entry(detail, self.bus_name))

    def publish_entry(self, raw: Mapping[str, str]) -> str:
        """Put one PutEvents entry as built by ``put_events_entry`` (the announcement ledger keeps them)."""
        entry = cast("PutEventsRequestEntryTypeDef", dict(raw))
        detail_type = entry.get("DetailType", "?")
        answer = self._events.put_events(Entries=[entry])
        result = answer["Entries"][0] if answer.get("Entries") else {}
        if answer.get("FailedEntryCount", 0) or "EventId" not in result:
            raise PublishError(
                f"PutEvents rejected {detail_type} on bus {self.bus_name!r}: "
                f"{result.get('ErrorCode', 'no event id')} {result.get('ErrorMessage', '')}".rstrip()
            )
        count_event(detail_type, str(json.loads(entry.get("Detail", "{}")).get("deployment", "")))
        return result["EventId"]
