"""SageMaker's request contract, as the service applies it, for our one SageMaker fake.

The local SageMaker API applies it to every request before anything else, in local mode and in
the tests, which run the same API scripted (tests/support/sagemaker_fake.py). A request AWS would refuse is
refused here too, with SageMaker's error code and message shape, so a test cannot pass on a
request a real account rejects.

Sources, rule by rule:

* **The whole botocore service model** of ``sagemaker`` (the JSON model the SDK ships, the same
  one AWS generates its API reference from): required members, types, ``min``/``max`` (string and
  list lengths, number values), ``pattern`` (a full match: AWS's validation is Java's
  ``Matcher.matches()``, so ``^``/``$`` are implied) and ``enum``. botocore's own client-side
  validation checks only required members, types and minimums; the service checks all of them.
  Patterns use Java syntax (``\\p{L}``); the ``regex`` package reads it. The few patterns that
  neither ``re`` nor ``regex`` compiles (UTF-16 surrogate ranges, ``${1,128}``) are not applied:
  :data:`UNCHECKED_PATTERNS` lists them, and none is on a shape this project sends.
* **The message**: ``1 validation error detected: Value '<v>' at '<path>' failed to satisfy
  constraint: Member must ...``, the path in lowerCamelCase with 1-based list indexes. This is
  the shape of the messages AWS's JSON services return (``ValidationException``); the exact words
  per constraint are from such public answers, not from an AWS page, so tests match the code
  and the path, never the full sentence.
* **Built-in algorithms** (reference section 10a, ``o2v_core.builtin_algorithms``): a
  CreateTrainingJob with a built-in image and any ``MetricDefinitions`` is refused with
  SageMaker's message; DescribeTrainingJob of such a job carries the algorithm's own definitions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, Shape, StructureShape
from o2v_core.builtin_algorithms import METRIC_OVERRIDE_MESSAGE, builtin_algorithm, builtin_metric_definitions


class ContractViolation(Exception):
    """What SageMaker answers: an error code (``ValidationException``) and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@functools.cache
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


@functools.cache
def _pattern(pattern: str) -> Any:  # a compiled regex.Pattern, or None
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


def unchecked_patterns() -> dict[str, str]:
    """Shapes whose pattern no Python regex engine compiles, so the fake does not apply them."""
    model = service_model()
    return {
        name: model.shape_for(name).metadata["pattern"]
        for name in model.shape_names
        if "pattern" in model.shape_for(name).metadata and _pattern(model.shape_for(name).metadata["pattern"]) is None
    }


def check_request(operation: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ContractViolation` for a request SageMaker would refuse."""
    shape = service_model().operation_model(operation).input_shape
    if shape is not None:
        errors = _check(shape, params, "")
        if errors:
            count = len(errors)
            raise ContractViolation(
                "ValidationException",
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors[:10]),
            )
    if operation == "CreateTrainingJob":
        specification = params.get("AlgorithmSpecification") or {}
        image = str(specification.get("TrainingImage") or "")
        if builtin_algorithm(image) and specification.get("MetricDefinitions"):
            raise ContractViolation("ValidationException", METRIC_OVERRIDE_MESSAGE)


def described_algorithm_specification(specification: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeTrainingJob's AlgorithmSpecification: a built-in image's own metric definitions (10a)."""
    described = dict(specification)
    algorithm = builtin_algorithm(str(specification.get("TrainingImage") or ""))
    if algorithm is not None:
        described["MetricDefinitions"] = builtin_metric_definitions(algorithm)
    return described


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _check(shape: Shape, value: Any, path: str) -> list[str]:
    if value is None:
        return []
    kind = shape.type_name
    checker = {
        "structure": _structure, "list": _list, "map": _map, "string": _string,
        "integer": _number, "long": _number, "float": _number, "double": _number,
    }.get(kind)
    if checker is None:
        return _scalar(kind, value, path)
    return checker(shape, value, path)


def _structure(shape: Shape, value: Any, path: str) -> list[str]:
    assert isinstance(shape, StructureShape)
    if not isinstance(value, Mapping):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a structure"]
    errors = [
        f"Value null at '{_join(path, _camel(name))}' failed to satisfy constraint: Member must not be null"
        for name in shape.required_members if value.get(name) is None
    ]
    for name, member in value.items():
        member_shape = shape.members.get(name)
        if member_shape is not None:  # an unknown member: boto3 refuses it before sending; no rule here
            errors.extend(_check(member_shape, member, _join(path, _camel(name))))
    return errors


def _list(shape: Shape, value: Any, path: str) -> list[str]:
    assert isinstance(shape, ListShape)
    if not isinstance(value, list | tuple):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a list"]
    errors = _length(shape, value, len(value), path)
    for index, item in enumerate(value, start=1):
        errors.extend(_check(shape.member, item, f"{path}.{index}"))
    return errors


def _map(shape: Shape, value: Any, path: str) -> list[str]:
    assert isinstance(shape, MapShape)
    if not isinstance(value, Mapping):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a map"]
    errors = _length(shape, value, len(value), path)
    for key, item in value.items():
        errors.extend(_check(shape.key, key, f"{path}.key"))
        errors.extend(_check(shape.value, item, f"{path}.{key}"))
    return errors


def _string(shape: Shape, value: Any, path: str) -> list[str]:
    if not isinstance(value, str):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a string"]
    errors = _length(shape, value, len(value), path)
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value "
                      f"set: [{', '.join(enum)}]")
    pattern = shape.metadata.get("pattern")
    compiled = _pattern(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy regular "
                      f"expression pattern: {pattern}")
    return errors


def _number(shape: Shape, value: Any, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a number"]
    errors = []
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater "
                      f"than or equal to {low}")
    if high is not None and value > high:
        errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than "
                      f"or equal to {high}")
    return errors


def _length(shape: Shape, value: Any, length: int, path: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    shown = value if isinstance(value, str) else "[...]"
    if low is not None and length < low:
        return [f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length greater than "
                f"or equal to {low}"]
    if high is not None and length > high:
        return [f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length less than or "
                f"equal to {high}"]
    return []


def _scalar(kind: str, value: Any, path: str) -> list[str]:
    expected: dict[str, tuple[type, ...]] = {"boolean": (bool,), "blob": (bytes, str), "timestamp": (int, float, str)}
    if kind in expected and not isinstance(value, expected[kind]):
        return [f"Value at '{path}' failed to satisfy constraint: Member must be a {kind}"]
    return []
