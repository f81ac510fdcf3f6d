"""Snapshots of the synthesized templates: any change to what `cdk deploy` would do is a reviewed diff.

As CDK's own integration tests keep them (``integ-runner`` stores each test's synthesized
templates under ``<test>.snapshot/`` and fails on any difference until they are updated with
``--update-on-failed``; aws-cdk ``packages/@aws-cdk/integ-runner`` README, "Snapshot testing"),
``tests/stacks/snapshots/`` holds every stack's template of both environments, normalized so that
only what CloudFormation would see counts:

* asset hashes (the Lambda code bundle's S3 key, ``<sha256>.zip``; CDK names a file asset by its
  content hash, aws-cdk-lib ``AssetStaging``) become ``<asset-hash>``: a change to a handler's code
  is tested by the handler's tests, not here;
* ``aws:asset:*`` metadata (bundling paths) and the ``CDKMetadata`` resource (the CDK's version
  analytics) are dropped, in case a context flag turns them on.

Update after an intended change, then review and commit the diff:

    make snapshots                         # or: O2V_UPDATE_SNAPSHOTS=1 pytest tests/stacks/test_snapshots.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.stacks.conftest import Synthesized

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_VARIABLE = "O2V_UPDATE_SNAPSHOTS"
UPDATE_COMMAND = f"make snapshots (or {UPDATE_VARIABLE}=1 pytest tests/stacks/test_snapshots.py)"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
DIFF_LINES = 200  # a readable failure; the whole diff is one `make snapshots && git diff` away


def normalized(template: Any) -> Any:
    """The template without what changes on every build: asset hashes, asset metadata, CDKMetadata."""
    if isinstance(template, dict):
        return {key: normalized(value) for key, value in template.items()
                if not key.startswith("aws:asset:") and key != "CDKMetadata"}
    if isinstance(template, list):
        return [normalized(item) for item in template]
    if isinstance(template, str):
        return ASSET_HASH.sub("<asset-hash>", template)
    return template


def rendered(template: Any) -> str:
    return json.dumps(normalized(template), indent=1, sort_keys=True) + "\n"


def snapshot_diff(name: str, expected: str, actual: str) -> str:
    """A unified diff (the first DIFF_LINES lines), or "" when equal."""
    lines = list(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                      fromfile=f"snapshots/{name} (committed)", tofile=f"{name} (synthesized now)"))
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... {len(lines) - DIFF_LINES} more diff lines\n"]
    return "".join(lines)


def check_snapshot(path: Path, actual: str, update: bool) -> str | None:
    """Compare with (or, updating, write) the snapshot; the failure message, or None."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return None
    if not path.is_file():
        return f"no snapshot {path.name}: create it with {UPDATE_COMMAND}, review it and commit it"
    diff = snapshot_diff(path.name, path.read_text(encoding="utf-8"), actual)
    if not diff:
        return None
    return (f"the synthesized template of {path.name} differs from its snapshot. If the change is intended, "
            f"run {UPDATE_COMMAND}, review `git diff tests/stacks/snapshots` and commit it.\n{diff}")


@pytest.mark.parametrize("role", ["data", "training", "serving"])
def test_each_template_matches_its_snapshot(synthesized: Synthesized, role: str) -> None:
    name = f"{synthesized.stack_name(role)}.template.json"
    failure = check_snapshot(SNAPSHOTS / name, rendered(synthesized.template_json(role)),
                             update=os.environ.get(UPDATE_VARIABLE) == "1")
    assert failure is None, failure


def test_every_snapshot_belongs_to_a_stack_synthesized_now(dev: Synthesized, prod: Synthesized) -> None:
    current = {path.name for synthesized in (dev, prod) for path in synthesized.template_paths()}
    stale = sorted(path.name for path in SNAPSHOTS.glob("*.template.json") if path.name not in current)
    assert not stale, f"snapshots of stacks that no longer exist: {stale}; delete them"


def test_asset_hashes_and_asset_metadata_do_not_count() -> None:
    def template(digest: str) -> dict[str, Any]:
        return {"Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": f"asset.{digest}"},
                   "Properties": {"Code": {"S3Key": f"{digest}.zip"}}},
            "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": digest}}}}

    assert rendered(template("a" * 64)) == rendered(template("b" * 64))


def test_a_changed_property_fails_with_a_readable_diff_and_the_update_command(tmp_path: Path) -> None:
    before = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}}}}
    after = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 345600}}}}
    path = tmp_path / "stack.template.json"
    assert check_snapshot(path, rendered(before), update=True) is None
    assert check_snapshot(path, rendered(before), update=False) is None
    failure = check_snapshot(path, rendered(after), update=False)
    assert failure is not None
    assert '-    "MessageRetentionPeriod": 1209600' in failure
    assert '+    "MessageRetentionPeriod": 345600' in failure
    assert "make snapshots" in failure
