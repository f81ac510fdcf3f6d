"""One preflight check's outcome, the report of all of them, and how it is printed and exits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

EXIT_PASSED = 0  # nothing found that would fail the deploy
EXIT_FAILED = 1  # a check failed: `cdk deploy` would fail (or the stacks would not work) as things are
EXIT_BAD_INPUT = 2  # bad settings, no credentials or no region: nothing could be checked


class Status(Enum):
    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "could not tell"  # access denied, or AWS answered nothing we can judge
    WARNING = "warning"  # not a deploy failure, but probably not what the user wants


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status  name: detail[; fix: remedy]``."""

    name: str
    status: Status
    detail: str
    remedy: str | None = None  # exactly what to request or change (failed, warning, could not tell)

    def line(self) -> str:
        text = f"{self.status.value:<15}{self.name}: {self.detail}"
        return f"{text}; fix: {self.remedy}" if self.remedy else text

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail, "remedy": self.remedy}


@dataclass
class Report:
    environment: str
    deployment: str
    account: str | None = None
    region: str | None = None
    checks: list[Check] = field(default_factory=list)
    bad_input: bool = False  # credentials or region did not resolve: exit 2

    def add(self, check: Check) -> None:
        self.checks.append(check)

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status is status)

    def exit_code(self, strict: bool = False) -> int:
        if self.bad_input:
            return EXIT_BAD_INPUT
        if self.count(Status.FAILED) or (strict and self.count(Status.UNKNOWN)):
            return EXIT_FAILED
        return EXIT_PASSED

    def summary(self, strict: bool = False) -> str:
        counts = ", ".join(f"{self.count(status)} {status.value}" for status in Status)
        code = self.exit_code(strict)
        if code == EXIT_BAD_INPUT:
            verdict = "nothing was checked: fix the credentials or region first"
        elif code == EXIT_FAILED:
            verdict = "`cdk deploy` would fail: fix the failed checks first" if self.count(Status.FAILED) else \
                "some checks could not tell (--strict): confirm them by hand or grant the read permission"
        elif self.count(Status.UNKNOWN):
            verdict = "nothing failed, but confirm the checks that could not tell by hand"
        else:
            verdict = "ready for `cdk deploy`"
        return f"{counts}: {verdict} (exit {code})"

    def text(self, strict: bool = False) -> str:
        where = f"account {self.account or '?'}, region {self.region or '?'}"
        head = f"o2v preflight: environment {self.environment} (deployment {self.deployment}), {where}"
        return "\n".join([head, *(check.line() for check in self.checks), self.summary(strict)])

    def as_json(self, strict: bool = False) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "deployment": self.deployment,
            "account": self.account,
            "region": self.region,
            "checks": [check.as_json() for check in self.checks],
            "exit_code": self.exit_code(strict),
        }

    def json_text(self, strict: bool = False) -> str:
        return json.dumps(self.as_json(strict), indent=2)


# Error codes AWS answers when the caller's policy does not allow a call: `AccessDeniedException`
# (the modelled error of Service Quotas' operations, botocore service model `service-quotas`; and a
# common error of every JSON-protocol service, e.g. CloudWatch Logs API reference, "Common Errors"),
# `AccessDenied` (query-protocol services: STS, CloudFormation, "Common Errors" of their API
# references).
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def could_not_tell(name: str, error: ClientError | BotoCoreError, permission: str) -> Check:
    """The check's read failed: say why, and which permission lets it tell next time."""
    if isinstance(error, ClientError) and error_code(error) in ACCESS_DENIED_CODES:
        return Check(name, Status.UNKNOWN, f"access denied to {permission}",
                     f"allow {permission} for these credentials, or check it by hand")
    return Check(name, Status.UNKNOWN, f"{permission} failed: {error}", "check it by hand, or rerun preflight")
