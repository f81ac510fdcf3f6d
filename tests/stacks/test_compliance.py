"""cdk-nag (AwsSolutions, Serverless) and cfn-lint on every synthesized template: zero findings."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack, Stage, Validations
from cfnlint.api import lint
from constructs import IConstruct

from tests.stacks.conftest import Synthesized

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
