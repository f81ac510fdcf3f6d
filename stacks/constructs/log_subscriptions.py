"""CloudWatch Logs subscription filters that invoke control-plane functions with matching lines.

One filter per function spec that has a ``subscription`` (``o2v_core.functions``), on a log group
that a custom resource first makes sure exists (``training_log_group_handler``: created when
absent, never deleted). docs/scale.md says why, and what the two-filters-per-group quota means.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, CustomResource, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from constructs import Construct
from o2v_core.functions import FunctionSpec

from stacks.constructs.inline_custom_resource import SERVICE_TIMEOUT, inline_custom_resource_function
from stacks.grants import allow, log_group_arn

HANDLER_SOURCE = Path(__file__).with_name("training_log_group_handler.py")


class ExistingLogGroups(Construct):
    """Makes sure each named log group exists before anything depends on it; owns none of them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, names: list[str], removal_policy: RemovalPolicy,
        log_retention_days: int, deployment: str, key_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        function = inline_custom_resource_function(
            self,
            source=HANDLER_SOURCE,
            description="Create the log groups the subscription filters need, when absent",
            role_description="Creates the log groups the subscription filters need, when absent",
            policy_name="EnsureLogGroups",
            grants=[
                allow(
                    "CreateSubscribedLogGroups",
                    ["logs:CreateLogGroup"],
                    # CreateLogGroup takes the group ARN with ':*' (CloudWatch Logs resource ARNs,
                    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html)
                    [log_group_arn(name, ":*") for name in names],
                    wildcard_reason="CreateLogGroup is authorized on the group ARN with its ':*' suffix; the "
                    "groups are the named ones the subscription filters read.",
                )
            ],
            removal_policy=removal_policy,
            log_retention_days=log_retention_days,
            deployment=deployment,
            log_name="ensure-log-groups",
            key_arn=key_arn,
        )
        self.resources = {
            name: CustomResource(
                self,
                f"Group{index}",
                service_timeout=SERVICE_TIMEOUT,
            service_token=function.function_arn,
                resource_type="Custom::ExistingLogGroup",
                properties={"LogGroupName": name},
            )
            for index, name in enumerate(names)
        }


class LogSubscriptions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        functions: Mapping[str, tuple[FunctionSpec, lambda_.IFunction]],
        removal_policy: RemovalPolicy,
        log_retention_days: int,
        key_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        subscribed = {fid: (spec, fn) for fid, (spec, fn) in functions.items() if spec.subscription is not None}
        names = sorted({spec.subscription.log_group for spec, _ in subscribed.values() if spec.subscription})
        self.log_groups = ExistingLogGroups(
            self,
            "LogGroups",
            names=names,
            removal_policy=removal_policy,
            log_retention_days=log_retention_days,
            deployment=deployment,
            key_arn=key_arn,
        )
        self.filters: dict[str, logs.SubscriptionFilter] = {}
        for function_id, (spec, function) in subscribed.items():
            assert spec.subscription is not None
            self.filters[function_id] = self._subscribe(deployment, function_id, spec, function)

    def _subscribe(
        self, deployment: str, function_id: str, spec: FunctionSpec, function: lambda_.IFunction
    ) -> logs.SubscriptionFilter:
        """CloudWatch Logs invokes the function asynchronously, so a failed run is retried and then kept in
        the function's on-failure queue, alarmed. The permission names the group and the account, so no
        other group or account can invoke the function."""
        assert spec.subscription is not None
        group_name = spec.subscription.log_group
        group = logs.LogGroup.from_log_group_name(self, f"{function_id}Group", group_name)
        permission = lambda_.CfnPermission(
            self,
            f"{function_id}Invoke",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="logs.amazonaws.com",
            source_arn=group.log_group_arn,
            source_account=Aws.ACCOUNT_ID,
        )
        subscription = logs.SubscriptionFilter(
            self,
            function_id,
            log_group=group,
            destination=log_destinations.LambdaDestination(function, add_permissions=False),
            filter_pattern=logs.FilterPattern.literal(spec.subscription.filter_pattern),
            filter_name=spec.subscription.filter_name(deployment, function_id),
        )
        subscription.node.add_dependency(permission, self.log_groups.resources[group_name])
        return subscription
