"""cdk-nag (AwsSolutions, Serverless), cfn-lint and checkov on every synthesized template: zero findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, CfnResource, Stack, Stage, Validations
from cfnlint.api import lint
from constructs import IConstruct

import stacks.nag
import tests.stacks.conftest
from stacks.training_stack import NO_SUBSCRIBER_WARNING_ID
from tests.stacks.conftest import CheckovReport, Synthesized, run_checkov, synthesize

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
        # The intended no-subscriber warning (tests/stacks/test_hardening.py) is not a finding.
        if NO_SUBSCRIBER_WARNING_ID not in json.dumps(violation)
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


def test_checkov_reports_no_unacknowledged_failures(checkov: CheckovReport) -> None:
    assert checkov.passed_count > 100  # it really checked the templates
    failures = [f"{item['check_id']} {item['resource']} in {Path(item['file_path']).name}" for item in checkov.failed]
    assert failures == []


def test_a_missing_checkov_fails_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "checkov" / "bin" / "checkov"
    monkeypatch.setattr(tests.stacks.conftest, "CHECKOV", missing)
    with pytest.raises(pytest.fail.Exception) as failed:  # a failure, never a skip
        run_checkov([])
    assert str(missing) in str(failed.value) and "make checkov" in str(failed.value)


def _checkov_skips(synthesized: Synthesized) -> dict[tuple[str, str, str], str]:
    """{(template file name, resource logical id, check id) ...: reason} from the resources' Metadata."""
    skips: dict[tuple[str, str, str], str] = {}
    for path in synthesized.template_paths():
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                skips[(path.name, f"{resource['Type']}.{logical_id}", entry["id"])] = entry["comment"]
    return skips


def test_every_checkov_skip_is_on_one_resource_with_a_real_reason_and_answers_a_check(
    synthesized: Synthesized, checkov: CheckovReport
) -> None:
    skips = _checkov_skips(synthesized)
    assert skips, "expected the documented checkov skips"
    applied = {(Path(item["file_path"]).name, item["resource"], item["check_id"]) for item in checkov.skipped}
    for (file_name, resource, check_id), reason in skips.items():
        where = f"{check_id} on {resource} in {file_name}"
        assert len(reason) >= 40 and "todo" not in reason.lower(), f"{where}: {reason!r}"
        # A skip that checkov did not need (the check passes or does not apply) is stale.
        assert (file_name, resource, check_id) in applied, f"{where}: checkov skipped no such failure"
