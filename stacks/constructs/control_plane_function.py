"""One control-plane Lambda function from its o2v_core.functions spec, with both retry layers.

The code asset is the ``lambdas/`` directory (o2v_core and control_plane inside, one copy in the
repository) with the pinned Powertools bundled in at synth (:mod:`stacks.constructs.lambda_asset`):
no regional layer to look up (reference 11e). Asynchronous
invocations retry, then go to the on-failure queue; EventBridge's own retries and DLQ sit in
front of that, on each rule target (see :mod:`stacks.constructs.event_rules`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from o2v_core.events import SOURCE
from o2v_core.functions import FunctionSpec
from o2v_core.runtime_config import ControlPlaneConfig

from stacks.constructs.encrypted_log_group import encrypted_log_group
from stacks.constructs.lambda_asset import staged_lambda_asset
from stacks.constructs.project_event_bus import control_plane_role_path
from stacks.grants import KEY_ACTIONS, Grant, allow, function_basics, role_with_grants
from stacks.guardrails import put_events_conditions
from stacks.nag import acknowledge, skip_lambda_checks

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
RUNTIME_REASON = (
    "python3.13 is pinned on purpose: the asset bundles Powertools and its requirements (pure Python only, "
    "stacks/constructs/lambda_asset.py), and moving the runtime is a reviewed change, never a side effect "
    "of a CDK upgrade."
)
MEMORY_MB = 256
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


DLQ_REASON = (
    "Failed asynchronous invocations go to the on-failure destination (an SQS queue), which keeps the "
    "error and the original event; a dead-letter queue as well would receive the same failures twice."
)


def scope_put_events(spec: FunctionSpec, grants: Sequence[Grant]) -> None:
    """Limit every events:PutEvents grant to the source and detail types the function emits, so a
    faulty function cannot put another's event (say, the one that starts GPU retraining)."""
    for grant in grants:
        if "events:PutEvents" in grant.statement.actions:
            try:
                conditions = put_events_conditions(SOURCE, spec.emits)
            except ValueError as error:
                raise ValueError(f"{spec.function_id}: {error}") from None
            for operator, values in conditions.items():
                grant.statement.add_condition(operator, values)


class ControlPlaneFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        deployment: str,
        config: ControlPlaneConfig,
        grants: Sequence[Grant],
        key_arn: str,
        message_key_arn: str,
        failure_queue: sqs.IQueue,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = encrypted_log_group(
            self,
            "Logs",
            deployment=deployment,
            function_id=spec.function_id,
            key_arn=key_arn,
            retention_days=log_retention_days,
            removal_policy=removal_policy,
        )

        own = [
            *function_basics(self.log_group.log_group_arn),
            allow("SendAsyncFailures", ["sqs:SendMessage"], [failure_queue.queue_arn]),
            allow("UseDataKey", KEY_ACTIONS, [key_arn]),
            # The failure queues and the witness queue are encrypted with the message key: sending
            # to and receiving from them takes kms:GenerateDataKey and kms:Decrypt on it.
            allow("UseMessageKey", KEY_ACTIONS, [message_key_arn]),
        ]
        scope_put_events(spec, grants)
        self.role = role_with_grants(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{deployment} {spec.function_id}: {spec.description}"[:1000],
            policy_name="ControlPlane",
            grants=[*own, *grants],
            path=control_plane_role_path(deployment),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description[:256],
            code=lambda_.Code.from_asset(str(staged_lambda_asset())),
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=MEMORY_MB,
            timeout=Duration.seconds(spec.timeout_seconds),
            # The role is handed over as an immutable reference: every statement it needs is in its
            # inline policy already, and the function then depends on the role through its ARN alone.
            role=iam.Role.from_role_arn(self, "RoleRef", self.role.role_arn, mutable=False),
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            # Only this function's own settings (o2v_core.function_settings), as local mode sets them.
            environment={**spec.environment(config), "POWERTOOLS_SERVICE_NAME": spec.function_id},
            # The variables hold names and ARNs, no secrets; the data key encrypts them at rest
            # anyway (the role's UseDataKey grant covers the decrypt at start).
            environment_encryption=kms.Key.from_key_arn(self, "EnvironmentKey", key_arn),
        )
        self.event_invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncInvokeConfig",
            function_name=self.function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=ASYNC_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=int(ASYNC_MAX_EVENT_AGE.to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=failure_queue.queue_arn)
            ),
        )
        self._acknowledge([*own, *grants])

    def _acknowledge(self, grants: Sequence[Grant]) -> None:
        unscoped = [g.wildcard_reason for g in grants if "*" in g.statement.resources and g.wildcard_reason]
        if unscoped:
            acknowledge(self.role, "Serverless-LambdaStarPermissions", " ".join(dict.fromkeys(unscoped)))
        skip_lambda_checks(self.function, DLQ_REASON)
        acknowledge(self.function, "Serverless-LambdaDLQ", DLQ_REASON)
        for rule in ("Serverless-LambdaLatestVersion", "AwsSolutions-L1"):
            acknowledge(self.function, rule, RUNTIME_REASON)
