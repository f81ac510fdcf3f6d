"""The function behind a small CloudFormation custom resource, shipped as inline code.

CloudFormation's ``ZipFile`` inline code must stay under 4 KB, so each handler is one boto3-only
module beside its construct; it does not rely on ``cfnresponse`` (CloudFormation injects it only for
the exact statement ``import cfnresponse``: reference 11c). Its import of
``custom_resource_response.run`` is replaced by that module's text (:func:`inline_code`), which
answers CloudFormation on every path, a crash included; the custom resources that use these
functions set ``ServiceTimeout`` (:data:`SERVICE_TIMEOUT`), so even an answer that never comes (a
timed-out function) fails the stack operation in minutes rather than an hour, twice. The children (``Logs``, ``Role``,
``RoleRef``, ``Function``) are created directly in the given scope, so the logical IDs of a
construct that adopts this helper do not change.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.constructs.encrypted_log_group import encrypted_log_group
from stacks.grants import Grant, function_basics, role_with_grants
from stacks.nag import acknowledge, skip_lambda_checks

RESPONSE_MODULE = Path(__file__).with_name("custom_resource_response.py")
RESPONSE_IMPORT = "from stacks.constructs.custom_resource_response import run\n"
FUNCTION_TIMEOUT = Duration.seconds(30)
# CloudFormation waits this long for an answer, instead of its default 3600 s (ServiceTimeout,
# 1 to 3600 s: reference 11c): the function's own timeout, plus a cold start and the answer's PUT.
SERVICE_TIMEOUT = Duration.seconds(120)

CUSTOM_RESOURCE_DLQ_REASON = (
    "CloudFormation invokes this custom resource and waits for its answer; a failure fails the "
    "deployment visibly, so there is nothing for a dead-letter queue to keep."
)


def inline_code(source: Path) -> str:
    """``source`` with its import of ``run`` replaced by the text of the module that defines it."""
    text = source.read_text()
    if text.count(RESPONSE_IMPORT) != 1:
        raise ValueError(f"{source.name} must import run exactly once as: {RESPONSE_IMPORT.strip()}")
    return text.replace(RESPONSE_IMPORT, _without_docstring(RESPONSE_MODULE.read_text()))


def _without_docstring(text: str) -> str:
    """The module's code after its docstring (which explains it here, and would only cost the 4 KB)."""
    first = ast.parse(text).body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and first.end_lineno is not None:
        return "".join(text.splitlines(keepends=True)[first.end_lineno :])
    return text


def inline_custom_resource_function(
    scope: Construct,
    *,
    source: Path,
    description: str,
    role_description: str,
    policy_name: str,
    grants: Sequence[Grant],
    removal_policy: RemovalPolicy,
    log_retention_days: int,
    deployment: str,
    log_name: str,
    key_arn: str,
) -> lambda_.Function:
    """A python3.13 function running ``source``'s ``handler`` with ``grants``, its own logs and traces.

    Its logs go to ``/o2v/<deployment>/<log_name>``, encrypted with the data key like the
    control-plane functions' (encrypted_log_group)."""
    log_group = encrypted_log_group(
        scope,
        "Logs",
        deployment=deployment,
        function_id=log_name,
        key_arn=key_arn,
        retention_days=log_retention_days,
        removal_policy=removal_policy,
    )
    role = role_with_grants(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
        policy_name=policy_name,
        grants=[
            *grants,
            *function_basics(log_group.log_group_arn),
        ],
    )
    function = lambda_.Function(
        scope,
        "Function",
        description=description,
        code=lambda_.Code.from_inline(inline_code(source)),
        handler="index.handler",
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=lambda_.Architecture.ARM_64,
        memory_size=256,
        timeout=FUNCTION_TIMEOUT,
        role=iam.Role.from_role_arn(scope, "RoleRef", role.role_arn, mutable=False),
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
    )
    acknowledge(
        role,
        "Serverless-LambdaStarPermissions",
        "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
    )
    for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
        acknowledge(
            function,
            rule,
            "python3.13 keeps this custom resource on the same runtime as the control-plane functions, "
            "whose asset bundles pure-Python Powertools for it.",
        )
    skip_lambda_checks(function, CUSTOM_RESOURCE_DLQ_REASON)
    acknowledge(function, "Serverless-LambdaDLQ", CUSTOM_RESOURCE_DLQ_REASON)
    return function
