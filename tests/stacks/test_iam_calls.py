"""IAM sufficiency and minimality, from the calls the handlers really made (issue 10).

``tests/support/aws_calls.py`` records every AWS call each Lambda function's handler makes while the
suite runs its flows (control-plane, promotion and local-mode tests). For every recorded call,
the function's synthesized role policy must allow the action on every resource type the Service
Authorization Reference marks as required for it, resolved to that call's ARNs. Every action a
role grants must be one its function calls (or one AWS authorizes on its behalf, listed below
with its source). The Service Authorization Reference is parliament's bundled copy
(``parliament/iam_definition.json``, pinned in pyproject.toml), never hand-typed.

This module runs after every other test (tests/conftest.py orders it last); run alone, with no
flows recorded, it skips.

What only a real account confirms (docs/verification.md): CloudFormation values the template
takes from other stacks or resources (``Fn::ImportValue``, ``Fn::GetAtt``, ``Ref`` to a
resource) are unknown here and match any value; conditions are not evaluated.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from o2v_core import bulk_transform, s3_layout
from o2v_core import resource_names as names
from o2v_core.functions import FUNCTIONS
from o2v_core.naming import job_prefix

from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list
from tests.support.aws_calls import Call, recorded

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"  # what the tests' moto and local API answer
UNKNOWN = "\x00"  # a template value known only at deploy time; matches anything

# Actions a role needs that its handler never calls itself; each with who calls it and the source.
AUTHORIZED_ON_ITS_BEHALF: dict[str, str] = {
    "iam:PassRole": "checked by SageMaker on CreateTrainingJob/CreateModel with a RoleArn "
    "(docs: sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-pass-role)",
    "kms:CreateGrant": "SageMaker encrypts endpoint volumes through a grant made with the caller's permissions "
    "(docs: sagemaker/latest/dg/api-permissions-reference.html, CreateEndpoint)",
    "kms:DescribeKey": "SageMaker describes the endpoint config's KmsKeyId on CreateEndpoint/UpdateEndpoint "
    "(docs: sagemaker/latest/dg/api-permissions-reference.html)",
    "cloudwatch:DescribeAlarms": "blue/green auto-rollback reads the rollback alarms "
    "(docs: sagemaker/latest/dg/deployment-guardrails-configuration.html; reference 10f); Application Auto "
    "Scaling validates the caller's CloudWatch permissions (below)",
    # Application Auto Scaling "validates permissions for requests associated with both the target service
    # and CloudWatch" with the caller's credentials (docs: autoscaling/application/userguide/
    # security_iam_permission_validation.html); SageMaker's list of them:
    # sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html.
    "sagemaker:UpdateEndpointWeightsAndCapacities": "validated by Application Auto Scaling on RegisterScalableTarget",
    "cloudwatch:PutMetricAlarm": "validated by Application Auto Scaling for its target-tracking alarms",
    "cloudwatch:DeleteAlarms": "validated by Application Auto Scaling for its target-tracking alarms",
    "sagemaker:AddTags": "the tags of CreateTransformJob and CreateModel (the Service Authorization Reference "
    "lists sagemaker:AddTags as a dependent action of both)",
    "iam:CreateServiceLinkedRole": "Application Auto Scaling creates its service-linked role on the first "
    "RegisterScalableTarget in an account, with the caller's permission (docs: autoscaling/application/userguide/"
    "application-auto-scaling-service-linked-roles.html)",
}
# The request member that names a resource, where the reference's ARN variable is named otherwise
# (member names from the botocore service models, e.g. ssm PutParameterRequest.Name).
REQUEST_MEMBER = {("ssm", "parametername"): "name", ("s3", "bucketname"): "bucket", ("s3", "objectname"): "key"}
# API operations authorized by an action of another name (Service Authorization Reference, "Actions
# defined by Amazon S3": ListObjectsV2 is authorized by s3:ListBucket; also the ListObjectsV2 API
# reference, "you must have READ access ... s3:ListBucket").
OPERATION_ACTION = {("s3", "ListObjectsV2"): "ListBucket"}
# CloudWatch Logs authorizes most actions against the log group's ARN with a trailing ':*'; only
# these three take the ARN without it ("Overview of managing access permissions to your CloudWatch
# Logs resources", docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
LOG_GROUP_ARN_WITHOUT_STAR = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})
# The Lambda runtime's own grants (control_plane_function.py), not the handler's calls.
RUNTIME_SIDS = frozenset({"WriteOwnLogs", "SendAsyncFailures", "UseDataKey", "UseMessageKey", "WriteTraces"})


@cache
def service_definitions() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("parliament")  # without importing it (it needs pkg_resources)
    assert spec is not None and spec.submodule_search_locations, "pip install parliament (pyproject.toml)"
    path = Path(next(iter(spec.submodule_search_locations))) / "iam_definition.json"
    return {service["prefix"]: service for service in json.loads(path.read_text(encoding="utf-8"))}


def required_resource_arns(call: Call) -> list[str]:
    """The call's ARNs for every resource type the reference marks required ('*'); ['*'] when none."""
    service = service_definitions()[call.service]
    operation = OPERATION_ACTION.get((call.service, call.operation), call.operation)
    privilege = next((p for p in service["privileges"] if p["privilege"] == operation), None)
    assert privilege is not None, f"{call.service}:{call.operation} is not in the Service Authorization Reference"
    templates = {resource["resource"]: resource["arn"] for resource in service["resources"]}
    required = [r["resource_type"][:-1] for r in privilege["resource_types"] if r["resource_type"].endswith("*")]
    params = {key.lower(): value for key, value in call.params.items()}
    if not required:
        arn = params.get("resourcearn")
        return [str(arn)] if arn else ["*"]
    arns = []
    for resource_type in required:
        template = templates[resource_type]

        def fill(match: re.Match[str], template: str = template) -> str:
            name = match.group(1)
            fixed = {"partition": PARTITION, "region": REGION, "account": ACCOUNT}
            if name.lower() in fixed:
                return fixed[name.lower()]
            key = name.lower().removesuffix("withoutleadingslash")
            key = REQUEST_MEMBER.get((call.service, key), key)
            if key == "tablename" and "requestitems" in params:
                # BatchGetItem/BatchWriteItem name their tables as the keys of RequestItems (botocore
                # dynamodb model, BatchGetRequestMap); the tests' calls name one table each.
                (table,) = params["requestitems"]
                return str(table)
            if (call.service, key) == ("sqs", "queuename") and "queueurl" in params:
                return str(params["queueurl"]).rsplit("/", 1)[-1]  # SQS names a queue by its URL
            if key in params:
                value = str(params[key])
                return value.lstrip("/") if name.endswith("WithoutLeadingSlash") else value
            if name == "EventBusName":
                return "default"  # PutEvents without EventBusName: the default bus
            raise AssertionError(f"{call.service}:{call.operation}: no parameter for ${{{name}}} in {template}")

        arn = re.sub(r"\$\{([A-Za-z]+)\}", fill, template)
        if (call.service, resource_type) == ("logs", "log-group") and call.operation not in LOG_GROUP_ARN_WITHOUT_STAR:
            arn += ":*"
        arns.append(arn)
    return arns


def to_template_names(arn: str, tested: str, deployed: str) -> str:
    """The tests run deployment ``tested``; the template is for ``deployed``: rename its resources."""
    for of in (job_prefix, names.endpoint_name, names.event_bus_name, names.job_curve_table_name):
        arn = re.sub(rf"([/:]){re.escape(of(tested))}", rf"\g<1>{of(deployed)}", arn)
    record = names.serving_model_parameter
    arn = arn.replace(record(tested).lstrip("/"), record(deployed).lstrip("/"))
    ledger = s3_layout.ANNOUNCEMENTS_PREFIX
    arn = arn.replace(f"{ledger}{tested}/", f"{ledger}{deployed}/")
    return arn


def resolve(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolve(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(
            value["Ref"], UNKNOWN
        )
    return UNKNOWN


def allows(pattern: str, value: str) -> bool:
    glob = pattern.replace(UNKNOWN, "*")
    return fnmatch.fnmatchcase(value, glob) or (value == "*" and pattern == "*")


def role_statements(synthesized: Synthesized, handler: str) -> list[dict[str, Any]]:
    for role_name in ("training", "serving"):
        template = synthesized.template_json(role_name)["Resources"]
        for resource in template.values():
            if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Handler") == handler:
                role = template[resource["Properties"]["Role"]["Fn::GetAtt"][0]]
                return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    raise AssertionError(f"no function with handler {handler} in the templates")


def iam_action(call: Call) -> str:
    return f"{call.service}:{OPERATION_ACTION.get((call.service, call.operation), call.operation)}"


def denied(calls: list[Call], statements: list[dict[str, Any]], deployed: str) -> list[str]:
    """'action on ARN' for every required resource of every call that no Allow statement covers."""
    missing = []
    for call in calls:
        action = iam_action(call)
        for arn in required_resource_arns(call):
            arn = to_template_names(arn, call.deployment, deployed)
            if not any(
                any(fnmatch.fnmatch(action.lower(), a.lower()) for a in as_list(s["Action"]))
                and any(allows(resolve(r), arn) for r in as_list(s["Resource"]))
                for s in statements if s["Effect"] == "Allow"
            ):
                missing.append(f"{action} on {arn}")
    return sorted(set(missing))


def unused(calls: list[Call], statements: list[dict[str, Any]]) -> list[str]:
    """Granted actions the function never calls (nor AWS on its behalf)."""
    called = {iam_action(call) for call in calls}
    return sorted({
        action for s in statements if s["Effect"] == "Allow" and s.get("Sid") not in RUNTIME_SIDS
        for action in as_list(s["Action"]) if action not in called and action not in AUTHORIZED_ON_ITS_BEHALF
    })


@pytest.mark.iam_calls
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.function_id)
def test_each_role_allows_every_call_its_function_makes_and_nothing_else(synthesized: Synthesized, spec: Any) -> None:
    every_call = recorded()
    if not every_call:
        pytest.skip("no flows ran in this session: this check reads the calls the other tests recorded")
    calls = sorted({c for c in every_call if c.function_id == spec.function_id}, key=lambda c: c.params_json)
    assert calls, f"no test ran {spec.function_id}'s handler, so its permissions are unchecked"
    statements = role_statements(synthesized, spec.handler)
    missing = denied(calls, statements, synthesized.settings.deployment)
    assert not missing, f"{spec.function_id}'s role would be denied:\n  " + "\n  ".join(missing)
    extra = unused(calls, statements)
    assert not extra, f"{spec.function_id} is granted actions it never calls: {extra}"


@pytest.mark.iam_calls
def test_the_bulk_embedding_policy_allows_every_call_the_cli_makes_and_nothing_else(synthesized: Synthesized) -> None:
    """``o2v embed --corpus`` runs with the user's credentials: the serving stack's managed policy
    (stacks/constructs/bulk_embedding.py) is checked like a function's role, against the calls the
    CLI made in tests/training/test_bulk_transform.py (--endpoint, --training-job, a failed job, a stop)."""
    every_call = recorded()
    if not every_call:
        pytest.skip("no flows ran in this session: this check reads the calls the other tests recorded")
    calls = sorted({c for c in every_call if c.function_id == bulk_transform.CALLER_POLICY},
                   key=lambda c: c.params_json)
    assert calls, "no test ran o2v embed --corpus against SageMaker, so the policy is unchecked"
    template = synthesized.template_json("serving")["Resources"]
    (policy,) = [resource for logical_id, resource in template.items() if resource["Type"] ==
                 "AWS::IAM::ManagedPolicy" and logical_id.startswith(bulk_transform.CALLER_POLICY)]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    missing = denied(calls, statements, synthesized.settings.deployment)
    assert not missing, "the bulk-embedding policy would be denied:\n  " + "\n  ".join(missing)
    extra = unused(calls, statements)
    assert not extra, f"the bulk-embedding policy grants actions o2v embed --corpus never calls: {extra}"


# The promoter's grant before issue 10 (git show ea5fa29:stacks/constructs/control_plane_grants.py,
# "DeployToTheEndpoint"): the endpoint actions on the endpoint's ARN only.
PROMOTER_GRANT_BEFORE_ISSUE_10 = {
    "Effect": "Allow", "Sid": "DeployToTheEndpoint",
    "Action": ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
    "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/o2v-dev-embeddings",
}


def test_the_check_denies_what_the_service_authorization_reference_requires_beyond_the_grant() -> None:
    """The reference marks endpoint-config* required for UpdateEndpoint (parliament's copy), so the
    old promoter grant fails this check: it would have caught defect 2."""
    call = Call("promoter", "sagemaker", "UpdateEndpoint", json.dumps({
        "EndpointName": "o2v-dev-embeddings", "EndpointConfigName": "o2v-dev--sts-a2-config",
        "RetainAllVariantProperties": True,
    }), "dev")
    assert denied([call], [PROMOTER_GRANT_BEFORE_ISSUE_10], "dev") == [
        "sagemaker:UpdateEndpoint on arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/o2v-dev--sts-a2-config"
    ]
    assert unused([call], [PROMOTER_GRANT_BEFORE_ISSUE_10]) == ["sagemaker:CreateEndpoint"]
