"""Synthesize each environment once per test session; every stack test reads these results."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from o2v_core.resource_names import data_stack_name, serving_stack_name, training_stack_name
from o2v_core.settings import Settings

# stacks is imported before any aws_cdk module so that jsii starts on the bundled Node.
from stacks.app_builder import Deployment, build_app

if TYPE_CHECKING:
    from aws_cdk.assertions import Template


@dataclass
class Synthesized:
    deployment: Deployment
    outdir: Path
    synth_error: str | None

    @property
    def settings(self) -> Settings:
        return self.deployment.settings

    def stack_name(self, role: str) -> str:
        """``role``: data, training or serving."""
        names = {"data": data_stack_name, "training": training_stack_name, "serving": serving_stack_name}
        return names[role](self.deployment.settings.deployment)

    def template_json(self, role: str) -> dict[str, Any]:
        path = self.outdir / f"{self.stack_name(role)}.template.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def template(self, role: str) -> Template:
        from aws_cdk.assertions import Template

        return Template.from_json(self.template_json(role))

    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report

    def resources(self, role: str, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json(role)["Resources"].items()
            if resource["Type"] == cfn_type
        }


@contextmanager
def no_network() -> Iterator[None]:
    """Any connection attempt from Python during synthesis fails the test run."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"synthesis tried to open a network connection: {args!r}")

    saved = (socket.socket.connect, socket.create_connection)
    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    socket.create_connection = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection = saved  # type: ignore[method-assign]


def synthesize(env_name: str, outdir: Path) -> Synthesized:
    """Build and synthesize one environment offline (no network, no credentials, no Docker)."""
    with no_network():
        deployment = build_app(env_name, outdir=str(outdir))
        try:
            deployment.app.synth()
            error = None
        except RuntimeError as exc:  # cdk-nag findings fail synthesis; the report says which
            error = str(exc)
    return Synthesized(deployment, outdir, error)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))


@pytest.fixture(scope="session", params=["dev", "prod"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    result: Synthesized = request.getfixturevalue(request.param)
    return result


# Checkov runs from its own virtual environment inside .venv (Makefile target `checkov`, which
# `make setup` and `make test` run): its pinned boto3 would otherwise downgrade the project's.
CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"
CHECKOV_MISSING = (
    "checkov is not installed at {path}: the compliance tests need it (they fail rather than skip). "
    "Run `make checkov` (or `make test`, which installs it) in the repository root."
)


@dataclass(frozen=True)
class CheckovReport:
    """One checkov pass over every synthesized template of both environments."""

    failed: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    passed_count: int
    files: list[str]


def run_checkov(paths: list[Path]) -> CheckovReport:
    if not CHECKOV.exists():
        pytest.fail(CHECKOV_MISSING.format(path=CHECKOV))
    command = [str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--compact",
               "--skip-download", "--no-fail-on-crash"]  # fmt: skip
    for path in paths:
        command += ["--file", str(path)]
    # --skip-download: offline, no Prisma Cloud guidelines; exit code 1 just means failed checks.
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        pytest.fail(f"checkov did not run (exit {done.returncode}): {done.stderr[-3000:]}")
    answer = json.loads(done.stdout)
    reports = answer if isinstance(answer, list) else [answer]
    failed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    passed = 0
    for report in reports:
        failed += report["results"].get("failed_checks", [])
        skipped += report["results"].get("skipped_checks", [])
        passed += len(report["results"].get("passed_checks", []))
    return CheckovReport(failed, skipped, passed, [str(path) for path in paths])


@pytest.fixture(scope="session")
def checkov(dev: Synthesized, prod: Synthesized) -> CheckovReport:
    """Checkov is slow (tens of seconds): one pass per test session over both environments."""
    return run_checkov([*dev.template_paths(), *prod.template_paths()])
