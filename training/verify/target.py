"""What ``o2v verify`` checks: the deployed stacks' outputs, read once, or the local deployment.

The real path reads the three stacks' CloudFormation outputs (``o2v_core.resource_names`` names
them, as the stacks do) and the queues of the training and serving stacks (DescribeStackResources:
the physical id of an ``AWS::SQS::Queue`` is its URL, "Ref returns the queue URL", CloudFormation
``AWS::SQS::Queue`` return values). ``--local`` builds the same :class:`Target` from the local
deployment (:mod:`training.verify.local`); every check then runs on it alike.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core import resource_names as rn
from o2v_core.functions import FUNCTIONS

from training.launcher.stack import StackError, StackOutputs, raw_outputs, read_outputs

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class VerifyInputError(ValueError):
    """Nothing can be verified as things are: the message names the missing piece and the fix."""


@dataclass(frozen=True)
class Target:
    """Everything a check needs to find, named as the stacks name it."""

    deployment: str
    region: str
    launch: StackOutputs  # what `o2v launch` reads (buckets, training role, bus)
    topic_arn: str
    endpoint_name: str
    serving_parameter: str
    curve_table: str
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> URL: DLQs and the witness queue
    rollback_alarms: tuple[str, ...] = ()
    functions: dict[str, str] = field(default_factory=dict)  # function id -> Lambda function name
    local: bool = False
    origin: str = ""


# Outputs this version of the stacks has and verify reads: a stack without one was deployed by
# another version of the project (or not at all).
TRAINING_OUTPUTS = (rn.OUTPUT_NOTIFICATION_TOPIC, rn.OUTPUT_EVENT_BUS, rn.OUTPUT_TRAINING_ROLE)
SERVING_OUTPUTS = (rn.OUTPUT_ENDPOINT_NAME, rn.OUTPUT_SERVING_MODEL_PARAMETER, rn.OUTPUT_ROLLBACK_ALARMS)


def deploy_fix(env_name: str) -> str:
    return f"`cdk deploy --all -c env={env_name}` (after `o2v preflight --env {env_name}`)"


def _outputs(cloudformation: CloudFormationClient, stack: str, keys: tuple[str, ...], env_name: str) -> dict[str, str]:
    try:
        outputs = raw_outputs(cloudformation, stack)
    except StackError as error:
        raise VerifyInputError(f"stack {stack} is not deployed here ({error}); fix: {deploy_fix(env_name)}") from None
    missing = [key for key in keys if not outputs.get(key)]
    if missing:
        raise VerifyInputError(
            f"stack {stack} lacks output(s) {', '.join(missing)}: it was deployed by another version of this "
            f"project; fix: {deploy_fix(env_name)} from this checkout")
    return outputs


def stack_queues(cloudformation: CloudFormationClient, stack: str) -> dict[str, str]:
    """The stack's SQS queues: logical id -> queue URL (the physical id, CloudFormation's Ref of a queue)."""
    found: dict[str, str] = {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack):
        for item in page.get("StackResourceSummaries", []):
            if item.get("ResourceType") == "AWS::SQS::Queue" and item.get("PhysicalResourceId"):
                found[item["LogicalResourceId"]] = item["PhysicalResourceId"]
    return found


def read_target(cloudformation: CloudFormationClient, deployment: str, env_name: str, region: str) -> Target:
    """The deployed stacks, from their outputs; :class:`VerifyInputError` names what is missing."""
    training = _outputs(cloudformation, rn.training_stack_name(deployment), TRAINING_OUTPUTS, env_name)
    serving = _outputs(cloudformation, rn.serving_stack_name(deployment), SERVING_OUTPUTS, env_name)
    try:
        launch = read_outputs(cloudformation, deployment)
    except StackError as error:
        raise VerifyInputError(f"{error}; fix: {deploy_fix(env_name)}") from None
    queues: dict[str, str] = {}
    try:
        for stack in (rn.training_stack_name(deployment), rn.serving_stack_name(deployment)):
            queues.update(stack_queues(cloudformation, stack))
    except (ClientError, BotoCoreError) as error:
        raise VerifyInputError(f"cannot list the stacks' queues ({error}); fix: allow "
                               "cloudformation:ListStackResources on the o2v stacks") from None
    alarms = tuple(name for name in serving[rn.OUTPUT_ROLLBACK_ALARMS].split(",") if name)
    outputs = {**training, **serving}
    functions = {spec.function_id: outputs[rn.function_name_output(spec.function_id)] for spec in FUNCTIONS
                 if outputs.get(rn.function_name_output(spec.function_id))}
    return Target(
        deployment=deployment, region=region, launch=launch, topic_arn=training[rn.OUTPUT_NOTIFICATION_TOPIC],
        endpoint_name=serving[rn.OUTPUT_ENDPOINT_NAME], serving_parameter=serving[rn.OUTPUT_SERVING_MODEL_PARAMETER],
        curve_table=rn.job_curve_table_name(deployment), queues=queues, rollback_alarms=alarms, functions=functions,
        origin=f"stacks {rn.data_stack_name(deployment)}, {rn.training_stack_name(deployment)}, "
               f"{rn.serving_stack_name(deployment)}",
    )


def served_record(ssm: Any, parameter: str) -> dict[str, Any] | None:
    """The promoter's served-model record (SSM String parameter, JSON), or None when there is none."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError:
        return None
    with contextlib.suppress(ValueError):
        record = json.loads(value)
        return record if isinstance(record, dict) else None
    return None
