"""Record every AWS call each Lambda function's handler makes while the tests run its flows.

A session-wide patch of botocore's ``BaseClient._make_api_call`` (the one place every boto3 call
passes) records ``(function, service, operation, params)`` while a handler from
``o2v_core.functions.FUNCTIONS`` is on the calling stack (found by its code object, so however a
test imported it). Generic: a function added to FUNCTIONS later is recorded too.
``tests/stacks/test_iam_calls.py`` checks the recorded calls against each function's role.
Calls made in threads a handler starts are not attributed (context variables do not cross
threads); the handlers make their calls on the invoking thread.

`make test` runs the suite in several pytest-xdist workers, then the IAM check alone: with
``O2V_AWS_CALLS_DIR`` set, each process writes what it recorded there at its end
(``<pid>.json``), and ``recorded()`` reads every process's file back.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import botocore.client
from o2v_core.functions import FUNCTIONS

_attributed_to: contextvars.ContextVar[str | None] = contextvars.ContextVar("o2v_attributed_to", default=None)


@functools.cache
def _handler_codes() -> dict[CodeType, str]:
    """The code objects of every function's handler (and what its decorators wrap) -> function id."""
    codes: dict[CodeType, str] = {}
    for spec in FUNCTIONS:
        function: Any = getattr(importlib.import_module(spec.module), spec.attribute)
        while function is not None:
            if hasattr(function, "__code__"):
                codes[function.__code__] = spec.function_id
            function = getattr(function, "__wrapped__", None)
    return codes


def _running_function() -> str | None:
    """The function whose handler is on the calling stack, however the test imported it."""
    explicit = _attributed_to.get()
    if explicit is not None:
        return explicit
    codes = _handler_codes()
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        function_id = codes.get(frame.f_code)
        if function_id is not None:
            return function_id
        frame = frame.f_back
    return None


@contextlib.contextmanager
def attributed_to(function_id: str) -> Iterator[None]:
    """For a test that runs a function's logic without its handler (to inject a clock, say)."""
    token = _attributed_to.set(function_id)
    try:
        yield
    finally:
        _attributed_to.reset(token)


@dataclass(frozen=True)
class Call:
    function_id: str
    service: str  # the IAM service prefix (botocore's signing name)
    operation: str
    params_json: str
    deployment: str  # O2V_DEPLOYMENT while the handler ran

    @property
    def params(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.params_json)
        return loaded


RECORDED: set[Call] = set()
CALLS_DIR_VARIABLE = "O2V_AWS_CALLS_DIR"


def _calls_dir() -> Path | None:
    value = os.environ.get(CALLS_DIR_VARIABLE)
    return Path(value) if value else None


def save() -> None:
    """Write this process's calls into the shared directory, if one is set (atomic: rename)."""
    directory = _calls_dir()
    if directory is None or not RECORDED:
        return
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".{os.getpid()}.json.partial"
    partial.write_text(json.dumps([dataclasses.asdict(call) for call in RECORDED]), encoding="utf-8")
    partial.replace(directory / f"{os.getpid()}.json")


def recorded() -> set[Call]:
    """The calls this process recorded, plus every other process's when a shared directory is set."""
    calls = set(RECORDED)
    directory = _calls_dir()
    if directory is not None and directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            calls.update(Call(**fields) for fields in json.loads(path.read_text(encoding="utf-8")))
    return calls


def _record(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def make_api_call(self: botocore.client.BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        function_id = _running_function()
        if function_id is not None:
            model = self.meta.service_model
            RECORDED.add(Call(
                function_id, model.signing_name or model.endpoint_prefix, operation_name,
                json.dumps(api_params, sort_keys=True, default=str), os.environ.get("O2V_DEPLOYMENT", ""),
            ))
        return original(self, operation_name, api_params)

    return make_api_call


def installed() -> Iterator[None]:
    """Install the recorder for the whole session (a generator for a session fixture)."""
    client_class: Any = botocore.client.BaseClient  # _make_api_call is private, so untyped in the stubs
    original = client_class._make_api_call
    client_class._make_api_call = _record(original)
    try:
        yield
    finally:
        client_class._make_api_call = original
        save()
