"""Deletes the served-model record with the data it points at (dev); never creates nor sets it."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, RemovalPolicy
from constructs import Construct

from stacks.constructs.inline_custom_resource import SERVICE_TIMEOUT, inline_custom_resource_function
from stacks.grants import allow
from stacks.serving_record import parameter_arn, serving_model_parameter

HANDLER_SOURCE = Path(__file__).with_name("serving_model_record_handler.py")
# Older versions kept the served ModelDataUrl here for a CloudFormation dynamic reference, which
# CloudFormation does not re-read on update (reference 11c). Nothing writes it any more; it stays the
# resource's ParameterName (its physical ID) so that upgrading does not replace the resource, whose old
# instance's delete would remove the record in dev.
LEGACY_URL_PARAMETER = "/o2v/{deployment}/serving-model-data-url"


class ServingModelRecord(Construct):
    """The promoter creates and owns ``/o2v/{deployment}/serving-model`` (docs/promotion.md, "Who owns
    what"); no stack sets its value, so no deploy changes it. On stack deletion the record stays,
    unless the data is destroyed with the stack (dev), when it would point at deleted artifacts.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        removal_policy: RemovalPolicy,
        log_retention_days: int,
        key_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        legacy = LEGACY_URL_PARAMETER.format(deployment=deployment)
        self.record_parameter = serving_model_parameter(deployment)
        self.function = inline_custom_resource_function(
            self,
            source=HANDLER_SOURCE,
            description=f"Delete {self.record_parameter} with the stack's data (dev)",
            role_description=f"Deletes {self.record_parameter} when the data is destroyed",
            policy_name="ServingModelRecord",
            grants=[
                allow(
                    "ManageServingRecord",
                    ["ssm:DeleteParameter", "ssm:GetParameter"],
                    [parameter_arn(legacy), parameter_arn(self.record_parameter)],
                ),
            ],
            removal_policy=removal_policy,
            log_retention_days=log_retention_days,
            deployment=deployment,
            log_name="serving-model-record",
            key_arn=key_arn,
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_timeout=SERVICE_TIMEOUT,
            service_token=self.function.function_arn,
            resource_type="Custom::ServingModelRecord",
            properties={
                "ParameterName": legacy,  # with no InitialModelDataUrl, create and update set nothing
                "DeleteOnStackDelete": "true" if removal_policy == RemovalPolicy.DESTROY else "false",
                "AlsoDelete": [self.record_parameter],
            },
        )
