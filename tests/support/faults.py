"""Fault injection shared by the fault matrices: kill or fail one AWS call of an invocation.

For every AWS call a handler makes (counted across our cached clients with botocore's
``before-call`` and ``after-call`` events,
https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html):

* ``kill-before`` / ``kill-after``: a :class:`Killed` (a ``BaseException``, so no ``except
  Exception`` runs, as when Lambda ends an invocation at its timeout or memory limit) before the
  call reaches AWS, or after AWS applied it and before the reply is used;
* ``error-before`` / ``error-after``: an ordinary exception at the same points (throttling, a
  network error, a reply lost after AWS applied the call).

Lambda retries a failed async invocation twice, then sends it to the on-failure destination
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
:func:`invoke_async`. The fault hits the first attempt, or every attempt (the event then ends in
the failure queue, whose alarm fires: stacks/constructs/failure_alarms.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from control_plane.aws import clients

from tests.support.lambda_context import lambda_context

MODES = ("kill-before", "kill-after", "error-before", "error-after")
KILLS = ("kill-before", "kill-after")
SERVICES = ("sagemaker", "logs", "events", "s3", "ssm", "sqs", "dynamodb")


class Killed(BaseException):
    """The invocation ends (timeout / out of memory)."""


class InjectedError(RuntimeError):
    """An ordinary failure of an AWS call (throttling, a network error)."""


# Operations that change nothing in AWS: the Service Authorization Reference gives their actions the
# Read or List access level (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
# SQS ReceiveMessage is left out on purpose: it hides the message it returns (its visibility timeout).
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Head", "Query", "Scan", "BatchGet", "FilterLogEvents")


def fault_points(calls: Sequence[str], modes: Sequence[str], *, every_attempt: bool = False) -> list[tuple[int, str]]:
    """The (call index, mode) pairs a matrix runs, for the operations ``calls`` of a fault-free run.

    A kill leaves AWS with the calls before it applied and nothing after, and the invocation keeps
    nothing (Lambda resets the execution environment after a timeout or a crash,
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html, "Failures during
    the invoke phase"). So two kills that leave the same calls applied leave the same account, and
    what follows from it is the same: only the first of each runs. Killed before call ``i`` equals
    killed after call ``i - 1``; with the fault on the first attempt only, killed after a read-only
    call also equals killed before it, and an error after a read-only call equals the error before
    it (the same account, raised at the same call). With the fault on every attempt, a retry's
    ``i``-th call can be another operation than the fault-free run's, so there only the first rule
    applies. Other errors are not paired off: ``except`` blocks run after them, at a different call
    each.
    """
    points, states = [], set()
    for index in range(len(calls)):
        for mode in modes:
            if mode in KILLS:
                applied = index + (mode == "kill-after")  # calls 0 .. applied-1 reached AWS
                if not every_attempt:
                    while applied and calls[applied - 1].startswith(READ_ONLY_PREFIXES):
                        applied -= 1
                if applied in states:
                    continue
                states.add(applied)
            elif mode == "error-after" and not every_attempt and "error-before" in modes \
                    and calls[index].startswith(READ_ONLY_PREFIXES):
                continue  # a read applied or not leaves the same account, and raises at the same place
            points.append((index, mode))
    return points


@dataclass
class Injector:
    """Raises at the ``target``-th AWS call (0-based) of the current invocation, per ``mode``;
    with no target it only counts (and names, in ``seen``) the calls."""

    target: int | None = None
    mode: str = "kill-before"
    calls: int = 0

    def __post_init__(self) -> None:
        self.seen: list[str] = []

    def hook(self, point: str) -> Callable[..., None]:
        def on_call(model: Any = None, **_: Any) -> None:
            index = self.calls if point == "before" else self.calls - 1
            if point == "before":
                self.calls += 1
                self.seen.append(getattr(model, "name", "?"))
            if self.target is None or index != self.target or not self.mode.endswith(point):
                return
            if self.mode.startswith("kill"):
                raise Killed(f"invocation killed {point} AWS call {index}")
            raise InjectedError(f"AWS call {index} failed ({point})")

        return on_call


@contextlib.contextmanager
def injected(injector: Injector) -> Iterator[None]:
    registered = []
    for service in SERVICES:
        events = clients.client(service).meta.events
        for point in ("before", "after"):
            events.register(f"{point}-call", injector.hook(point), unique_id=f"o2v-fault-{point}")
            registered.append((events, point))
    try:
        yield
    finally:
        for events, point in registered:
            events.unregister(f"{point}-call", unique_id=f"o2v-fault-{point}")


def invoke_async(
    handler: Callable[[Mapping[str, Any], object], object], event: Mapping[str, Any], fault: Injector | None,
    *, every_attempt: bool,
) -> bool:
    """One async invocation with Lambda's two retries; False when the event ends in the failure queue."""
    for attempt in range(3):
        injector = fault if fault is not None and (attempt == 0 or every_attempt) else Injector()
        injector.calls = 0
        with injected(injector):
            try:
                handler(event, lambda_context())
                return True
            except (Killed, Exception):
                continue
    return False


def run_faulted(step: Callable[[], object], fault: Injector) -> bool:
    """One run of ``step`` (a scheduled function's logic) under ``fault``; False when it died or failed."""
    fault.calls = 0
    with injected(fault):
        try:
            step()
            return True
        except (Killed, Exception):
            return False


@contextlib.contextmanager
def killed(service: str, operation: str, *, when: str = "before") -> Iterator[None]:
    """Kill the invocation at the next ``operation`` call, before it reaches AWS or after AWS applied it."""
    client = clients.client(service)
    name = f"{when}-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def die(**_: Any) -> None:
        raise Killed(f"killed {when} {operation}")

    client.meta.events.register(name, die, unique_id="o2v-kill")
    try:
        yield
    finally:
        client.meta.events.unregister(name, unique_id="o2v-kill")
