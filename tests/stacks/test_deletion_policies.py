"""A failed first deploy can be retried: nothing the stacks keep blocks the retry (issue 24 item 4).

AWS rule (reference section 11c; AWS What's New 2023-07-31, RetainExceptOnCreate): a resource with
``DeletionPolicy: Retain`` survives the rollback of the failed create that made it; when it has a
fixed physical name, every retry then fails with "already exists". ``RetainExceptOnCreate`` keeps
the resource on stack deletion but deletes it when its own creation rolls back.
"""

from __future__ import annotations

from typing import Any

from tests.stacks.conftest import Synthesized

# The properties that give a resource its physical name (CloudFormation resource reference, each
# type's "Name" property), as the stacks set them.
NAME_PROPERTIES = frozenset(
    {"LogGroupName", "TableName", "Name", "BucketName", "QueueName", "TopicName", "FunctionName", "RoleName",
     "EndpointName", "EndpointConfigName", "ModelName", "AlarmName", "DashboardName", "ParameterName", "KeyAlias"}
)  # fmt: skip


def every_resource(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for role in ("data", "training", "serving"):
        for logical_id, resource in synthesized.template_json(role)["Resources"].items():
            resources[f"{role}/{logical_id}"] = resource
    return resources


def test_no_resource_is_retained_through_the_rollback_of_its_own_creation(synthesized: Synthesized) -> None:
    retained = {
        path: resource["DeletionPolicy"]
        for path, resource in every_resource(synthesized).items()
        if resource.get("DeletionPolicy") == "Retain"
    }
    assert retained == {}, "use RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE (stacks/removal.py)"


def test_named_resources_of_prod_are_kept_except_when_their_creation_rolls_back(prod: Synthesized) -> None:
    named = {
        path: resource
        for path, resource in every_resource(prod).items()
        if NAME_PROPERTIES & set(resource.get("Properties", {}))
        and resource["Type"] in ("AWS::Logs::LogGroup", "AWS::DynamoDB::Table")
    }
    kinds = {resource["Type"] for resource in named.values()}
    assert kinds == {"AWS::Logs::LogGroup", "AWS::DynamoDB::Table"}, "prod names its log groups and curve table"
    for path, resource in named.items():
        assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", path
        assert resource.get("UpdateReplacePolicy") == "Retain", path


def test_no_named_resource_survives_a_failed_create(synthesized: Synthesized) -> None:
    for path, resource in every_resource(synthesized).items():
        if NAME_PROPERTIES & set(resource.get("Properties", {})):
            assert resource.get("DeletionPolicy", "Delete") in ("Delete", "RetainExceptOnCreate"), path
