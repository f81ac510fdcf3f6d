"""Bootstraps the served-model URL parameter from config, once, without ever owning its value."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.grants import allow, role_with_grants
from stacks.nag import acknowledge
from stacks.serving_record import parameter_arn, serving_model_data_url_parameter, serving_model_parameter

HANDLER_SOURCE = Path(__file__).with_name("serving_model_record_handler.py")


class ServingModelRecord(Construct):
    """Creates ``/o2v/{deployment}/serving-model-data-url`` from ``initial_model_data_url`` if absent.

    Create and update only ever fill a missing parameter, so neither a redeploy nor a changed
    config reverts a promotion. On stack deletion the parameters stay, unless the data is
    destroyed with the stack (dev), when they would point at deleted artifacts.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        initial_model_data_url: str | None,
        removal_policy: RemovalPolicy,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.url_parameter = serving_model_data_url_parameter(deployment)
        self.record_parameter = serving_model_parameter(deployment)
        log_group = logs.LogGroup(self, "Logs", removal_policy=removal_policy)
        cfn_log_group = log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = log_retention_days
        role = role_with_grants(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Creates {self.url_parameter} when it is missing",
            policy_name="ServingModelRecord",
            grants=[
                allow(
                    "ManageServingRecord",
                    ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:PutParameter"],
                    [parameter_arn(self.url_parameter), parameter_arn(self.record_parameter)],
                ),
                allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn]),
                allow(
                    "WriteTraces",
                    ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                    ["*"],
                    wildcard_reason="X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level "
                    "permissions.",
                ),
            ],
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"Create {self.url_parameter} from config if absent",
            code=lambda_.Code.from_inline(HANDLER_SOURCE.read_text()),
            handler="index.handler",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            memory_size=256,
            timeout=Duration.seconds(30),
            role=iam.Role.from_role_arn(self, "RoleRef", role.role_arn, mutable=False),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type="Custom::ServingModelRecord",
            properties={
                "ParameterName": self.url_parameter,
                "InitialModelDataUrl": initial_model_data_url or "",
                "DeleteOnStackDelete": "true" if removal_policy == RemovalPolicy.DESTROY else "false",
                "AlsoDelete": [self.record_parameter],
            },
        )
        acknowledge(
            role,
            "Serverless-LambdaStarPermissions",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
        )
        for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
            acknowledge(
                self.function,
                rule,
                "python3.13 keeps this custom resource on the same runtime as the control-plane functions, "
                "which follow the Powertools python313 layer.",
            )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "CloudFormation invokes this custom resource and waits for its answer; a failure fails the "
            "deployment visibly, so there is nothing for a dead-letter queue to keep.",
        )
