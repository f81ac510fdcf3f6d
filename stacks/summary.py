"""Synthesize every stack of one environment and print a short health summary.

    python -m stacks.summary [--env dev|prod]

Prints each stack with its resource count, then the cdk-nag findings (AwsSolutions and
Serverless packs) and the cfn-lint problems, both expected to be 0. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from aws_cdk import Validations
from o2v_core.settings import read_cdk_context

from stacks.app_builder import CDK_JSON, build_app

LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def nag_findings(outdir: Path) -> list[str]:
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report: dict[str, Any] = json.loads(report_path.read_text())
    return [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def lint_problems(template: Path) -> list[str]:
    from cfnlint.api import lint

    return [f"{match.rule.id} {match.message}" for match in lint(template.read_text(), regions=LINT_REGIONS)]


def main(argv: list[str] | None = None) -> int:
    environments = sorted(read_cdk_context(CDK_JSON)["environments"])
    parser = argparse.ArgumentParser(prog="python -m stacks.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", choices=environments, help="environment from cdk.json (default: dev)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="o2v-cdk-") as tmp:
        outdir = Path(tmp)
        deployment = build_app(args.env, outdir=str(outdir))
        # cdk-nag findings fail synthesis; they are listed from the report below.
        with contextlib.suppress(RuntimeError):
            deployment.app.synth()
        acknowledged = sum(
            len(entry.data)
            for construct in deployment.app.node.find_all()
            for entry in construct.node.metadata
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        )
        findings = nag_findings(outdir)
        problems: list[str] = []
        print(f"Environment {args.env} (deployment {deployment.settings.deployment})")
        for stack in deployment.stacks:
            path = outdir / stack.template_file
            template: dict[str, Any] = json.loads(path.read_text())
            kinds = Counter(resource["Type"] for resource in template.get("Resources", {}).values())
            top = ", ".join(f"{kind.split('::', 1)[1]} {count}" for kind, count in kinds.most_common(4))
            print(f"  {stack.stack_name:<24} {sum(kinds.values()):>3} resources ({top}, ...)")
            problems.extend(f"{stack.stack_name}: {problem}" for problem in lint_problems(path))
        print(f"cdk-nag findings (AwsSolutions, Serverless): {len(findings)} (acknowledged: {acknowledged})")
        for finding in findings:
            print(f"  {finding}")
        print(f"cfn-lint problems ({', '.join(LINT_REGIONS)}): {len(problems)}")
        for problem in problems:
            print(f"  {problem}")
    return 1 if findings or problems else 0


if __name__ == "__main__":
    sys.exit(main())
