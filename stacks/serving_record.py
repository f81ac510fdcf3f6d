"""ARN of the served-model record's SSM parameter; its name live in o2v_core.resource_names."""

from __future__ import annotations

from aws_cdk import Aws
from o2v_core.resource_names import serving_model_parameter

__all__ = ["parameter_arn", "serving_model_parameter"]


def parameter_arn(name: str) -> str:
    return f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{name}"
