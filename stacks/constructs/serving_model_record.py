"""Bootstraps the served-model URL parameter from config, once, without ever owning its value."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, RemovalPolicy
from constructs import Construct

from stacks.constructs.inline_custom_resource import SERVICE_TIMEOUT, inline_custom_resource_function
from stacks.grants import allow
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
        key_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.url_parameter = serving_model_data_url_parameter(deployment)
        self.record_parameter = serving_model_parameter(deployment)
        self.function = inline_custom_resource_function(
            self,
            source=HANDLER_SOURCE,
            description=f"Create {self.url_parameter} from config if absent",
            role_description=f"Creates {self.url_parameter} when it is missing",
            policy_name="ServingModelRecord",
            grants=[
                allow(
                    "ManageServingRecord",
                    ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:PutParameter"],
                    [parameter_arn(self.url_parameter), parameter_arn(self.record_parameter)],
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
                "ParameterName": self.url_parameter,
                "InitialModelDataUrl": initial_model_data_url or "",
                "DeleteOnStackDelete": "true" if removal_policy == RemovalPolicy.DESTROY else "false",
                "AlsoDelete": [self.record_parameter],
            },
        )
