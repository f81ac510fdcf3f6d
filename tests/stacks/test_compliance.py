"""cdk-nag (AwsSolutions, Serverless) and cfn-lint on every synthesized template: zero findings."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, CfnResource, Stack, Stage, Validations
from cfnlint.api import lint
from constructs import IConstruct

import stacks.nag
from tests.stacks.conftest import Synthesized, synthesize

# Lint for a few commercial regions: resource specs differ per region.
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def test_synth_passes_policy_validation(synthesized: Synthesized) -> None:
    assert synthesized.synth_error is None, synthesized.synth_error


def test_cdk_nag_reports_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    report = synthesized.validation_report()
    findings = [
        f"{plugin['pluginName']} {violation['ruleName']} at {construct['constructPath']}"
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
    ]
    assert findings == []


def test_both_nag_packs_ran(synthesized: Synthesized) -> None:
    assert {type(pack).__name__ for pack in synthesized.deployment.nag_packs} == {
        "AwsSolutionsChecks",
        "ServerlessChecks",
    }


def _acknowledgments(root: IConstruct) -> list[tuple[IConstruct, str, str]]:
    found = []
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found.append((construct, str(rule), str(reason)))
    return found


def test_every_acknowledgment_is_on_one_resource_with_a_real_reason(synthesized: Synthesized) -> None:
    acknowledgments = _acknowledgments(synthesized.deployment.app)
    assert acknowledgments, "expected the documented acknowledgments"
    for construct, rule, reason in acknowledgments:
        where = f"{rule} on {construct.node.path}"
        assert not isinstance(construct, (Stack, Stage)), f"{where}: acknowledge on a resource, not a whole stack"
        assert isinstance(construct, CfnResource) or isinstance(construct.node.default_child, CfnResource), where
        assert len(reason) >= 40 and "todo" not in reason.lower(), f"{where}: {reason!r}"


def test_cfn_lint_reports_no_errors_and_no_warnings(synthesized: Synthesized) -> None:
    paths = synthesized.template_paths()
    assert len(paths) == 3
    problems = []
    for path in paths:
        for match in lint(path.read_text(), regions=LINT_REGIONS):
            problems.append(f"{path.name}: {match.rule.id} {match.message} ({match.linenumber})")
    assert problems == []


class _RecordingValidations:
    """Stands in for aws_cdk.Validations in stacks.nag: records acknowledgments, applies none."""

    recorded: list[tuple[str, str]] = []

    def __init__(self, construct: IConstruct) -> None:
        self.path = construct.node.path

    @classmethod
    def of(cls, construct: IConstruct) -> _RecordingValidations:
        return cls(construct)

    def acknowledge(self, *acknowledgments: Acknowledgment) -> None:
        self.recorded.extend((self.path, ack.id) for ack in acknowledgments)


def test_every_acknowledgment_answers_a_finding_that_would_otherwise_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Synthesize dev once more with no acknowledgment applied: each one must match a real finding."""
    _RecordingValidations.recorded = []
    monkeypatch.setattr(stacks.nag, "Validations", _RecordingValidations)
    unacknowledged = synthesize("dev", tmp_path)
    assert unacknowledged.synth_error is not None  # the findings fail synthesis
    findings = {
        (construct["constructPath"], violation["ruleName"])
        for plugin in unacknowledged.validation_report()["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }
    acknowledged = set(_RecordingValidations.recorded)
    assert acknowledged
    stale = {
        (path, rule)
        for path, rule in acknowledged
        if not any(found_rule == rule and found_path.startswith(f"{path}/") for found_path, found_rule in findings)
    }
    assert stale == set()
    unanswered = {
        (path, rule)
        for path, rule in findings
        if not any(rule == ack_rule and path.startswith(f"{ack_path}/") for ack_path, ack_rule in acknowledged)
    }
    assert unanswered == set()
