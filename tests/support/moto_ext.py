"""A scripted EventBridge fault on the moto server: the one patch of moto the tests still need.

SageMaker is not moto's here: the tests' one SageMaker stand-in is the local SageMaker API
(``tests/support/sagemaker_fake.py``). moto serves the other services, and this adds one fault it cannot
produce by itself: :data:`FAULTS` ``put_events_failures`` makes the next PutEvents calls answer
every entry failed (``FailedEntryCount`` > 0, each entry with an ``ErrorCode``), which PutEvents
does without raising ("The PutEvents response ... includes ... FailedEntryCount ... If any entries
fail, ErrorCode and ErrorMessage": https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).

The ``cloud`` fixture installs the patch for one test and removes it afterwards (the moto server
runs in this process, so the patched class is the one serving HTTP requests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.events.models import EventsBackend


@dataclass
class Faults:
    """Armed faults, consumed one per call."""

    put_events_failures: int = 0


FAULTS = Faults()
_lock = threading.Lock()
_installed: list[Callable[[], None]] = []


def reset() -> None:
    FAULTS.put_events_failures = 0


def _put_events(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with _lock:
            if FAULTS.put_events_failures:
                FAULTS.put_events_failures -= 1
                return [
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "injected by the test"} for _ in events
                ]
        return original(self, events)

    return put_events


def install() -> None:
    """Patch moto's EventBridge backend (idempotent); :func:`uninstall` restores it."""
    if _installed:
        return
    original = EventsBackend.put_events
    EventsBackend.put_events = _put_events(original)  # type: ignore[method-assign]

    def restore() -> None:
        EventsBackend.put_events = original  # type: ignore[method-assign]

    _installed.append(restore)


def uninstall() -> None:
    while _installed:
        _installed.pop()()
