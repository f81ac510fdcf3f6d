"""Each function spec's ``emits`` (what its PutEvents permission allows) is what its code publishes.

The detail types are found in the code itself: every event dataclass of o2v_core.events that the
handler names, or any control_plane function or class it reaches through the names it uses.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from o2v_core import events
from o2v_core.functions import FUNCTIONS, FunctionSpec

DETAIL_CLASSES = {
    name: cls.detail_type  # type: ignore[attr-defined]
    for name, cls in vars(events).items()
    if isinstance(cls, type) and "detail_type" in getattr(cls, "__dataclass_fields__", {})
}


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin)


def _definitions(module: str) -> tuple[dict[str, ast.AST], dict[str, tuple[str, str]]]:
    """A module's top-level functions and classes, and the names it imports from control_plane."""
    tree = ast.parse(_source(module).read_text())
    defs: dict[str, ast.AST] = {}
    imports: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("control_plane."):
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
    return defs, imports


def constructed_detail_types(module: str, entry: str) -> set[str]:
    """The detail types constructed by ``module.entry`` and every control_plane function or class
    it names (a class counts with all its methods), followed transitively."""
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    pending = [(module, entry)]
    while pending:
        where = pending.pop()
        if where in seen:
            continue
        seen.add(where)
        defs, imports = _definitions(where[0])
        if where[1] not in defs:
            if where[1] in imports:  # re-exported by a package's __init__: follow it to its module
                pending.append(imports[where[1]])
            continue  # a constant or type alias, no code
        for node in ast.walk(defs[where[1]]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DETAIL_CLASSES:
                found.add(DETAIL_CLASSES[node.func.id])  # constructed, not just named (parse_event)
            if not isinstance(node, ast.Name):
                continue
            if node.id in defs:
                pending.append((where[0], node.id))
            elif node.id in imports:
                pending.append(imports[node.id])
    return found


def test_the_event_classes_are_found() -> None:
    assert set(DETAIL_CLASSES.values()) == set(events.DETAIL_TYPES)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.function_id)
def test_spec_emits_exactly_what_its_code_publishes(spec: FunctionSpec) -> None:
    assert set(spec.emits) == constructed_detail_types(spec.module, spec.attribute)
    assert len(spec.emits) == len(set(spec.emits))
