"""What each control-plane function may do, scoped to this deployment's resources.

Training jobs are reachable only under the deployment's job-name prefix, ``iam:PassRole`` only
for the training role and only to SageMaker, events only onto the project bus. The table
``TRAINING_FUNCTION_CAPABILITIES`` follows the calls each handler makes
(lambdas/control_plane/aws/*.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Aws
from o2v_core import s3_layout
from o2v_core.endpoint_deployment import scalable_resource_id
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from stacks.grants import Grant, allow, log_group_arn
from stacks.guardrails import (
    TrainingJobLimits,
    endpoint_config_conditions,
    network_isolated,
    training_job_conditions,
)


def sagemaker_arn(resource: str) -> str:
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def alarm_arn(name: str) -> str:
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{name}"


@dataclass(frozen=True)
class ControlPlaneScope:
    """The ARNs a control-plane grant may name."""

    job_prefix: str
    training_role_arn: str
    event_bus_arn: str
    training_limits: TrainingJobLimits
    artifact_bucket_arn: str
    deployment: str
    curve_table_arn: str = ""  # the metric-line judge's curve store (stacks/constructs/job_curve_store.py)

    @property
    def training_jobs_arn(self) -> str:
        return sagemaker_arn(f"training-job/{self.job_prefix}*")


PREFIX_REASON = "Training jobs are created at run time; the wildcard is this deployment's job-name prefix."


def list_jobs(scope: ControlPlaneScope) -> list[Grant]:
    return [
        allow(
            "ListTrainingJobs",
            ["sagemaker:ListTrainingJobs"],
            ["*"],
            wildcard_reason="sagemaker:ListTrainingJobs supports no resource-level permissions; the monitor "
            "filters the answer by the deployment's job-name prefix.",
        )
    ]


def read_jobs(scope: ControlPlaneScope) -> list[Grant]:
    return [
        allow(
            "ReadTrainingJobs",
            ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
            [scope.training_jobs_arn],
            wildcard_reason=PREFIX_REASON,
        )
    ]


def tag_jobs(scope: ControlPlaneScope) -> list[Grant]:
    return [
        allow("TagTrainingJobs", ["sagemaker:AddTags"], [scope.training_jobs_arn], wildcard_reason=PREFIX_REASON)
    ]


def stop_jobs(scope: ControlPlaneScope) -> list[Grant]:
    return [
        allow(
            "StopTrainingJobs", ["sagemaker:StopTrainingJob"], [scope.training_jobs_arn], wildcard_reason=PREFIX_REASON
        )
    ]


def create_jobs(scope: ControlPlaneScope) -> list[Grant]:
    return [
        allow(
            "CreateTrainingJobs",
            ["sagemaker:CreateTrainingJob"],
            [scope.training_jobs_arn],
            # Network-isolated, on the configured instance types, within the configured runtime,
            # output encrypted with the data key (stacks/guardrails.py cites the keys).
            conditions=training_job_conditions(scope.training_limits),
            wildcard_reason=PREFIX_REASON,
        ),
        allow(
            "PassTrainingRole",
            ["iam:PassRole"],
            [scope.training_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]


def read_training_logs(scope: ControlPlaneScope) -> list[Grant]:
    """What :class:`control_plane.aws.training_logs.TrainingLogs` calls: find streams, filter metric lines."""
    return [
        allow(
            "ReadTrainingLogs",
            ["logs:DescribeLogStreams", "logs:FilterLogEvents"],
            [log_group_arn(TRAINING_JOB_LOG_GROUP, ":*")],
            wildcard_reason=f"DescribeLogStreams and FilterLogEvents are authorized on the log group (its ARN "
            f"with the ':*' suffix), so this grant reads every training job's logs in SageMaker's "
            f"{TRAINING_JOB_LOG_GROUP} group, other deployments' included; the code asks only for its own "
            "jobs' streams (by the '<job>/' prefix).",
        ),
    ]


def store_curves(scope: ControlPlaneScope) -> list[Grant]:
    """What the judge calls on its curve store: one UpdateItem per delivery (returning the item)."""
    return [allow("StoreJobCurves", ["dynamodb:UpdateItem"], [scope.curve_table_arn])]


def triage_by_curves(scope: ControlPlaneScope) -> list[Grant]:
    """What the safety net calls on the curve store: read its jobs' items, mark the ones it swept."""
    return [allow("TriageByJobCurves", ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], [scope.curve_table_arn])]


_LEDGER_OBJECTS = "One object per announcement, created at run time below this deployment's ledger prefix."


def announcement_claims(bucket_arn: str, deployment: str) -> list[Grant]:
    """The create-only claims and their ``sent`` marks (control_plane.aws.announcements): PutObject
    below the deployment's ledger prefix only. If-None-Match needs no other permission
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html)."""
    prefix = f"{s3_layout.ANNOUNCEMENTS_PREFIX}{deployment}/"
    return [
        allow("ClaimAnnouncements", ["s3:PutObject"], [s3_layout.objects_arn(bucket_arn, prefix)],
              wildcard_reason=_LEDGER_OBJECTS),
    ]


def announcement_repairs(bucket_arn: str, deployment: str, witness_queue_arn: str) -> list[Grant]:
    """What the reconciler adds to the claims: listing and reading the ledger, and reading and
    deleting the witness queue's copies (control_plane.logic.announce.Announcer.repair)."""
    prefix = f"{s3_layout.ANNOUNCEMENTS_PREFIX}{deployment}/"
    return [
        allow("ReadAnnouncementLedger", ["s3:GetObject"], [s3_layout.objects_arn(bucket_arn, prefix)],
              wildcard_reason=_LEDGER_OBJECTS),
        allow("ListAnnouncementLedger", ["s3:ListBucket"], [bucket_arn],
              conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}),
        allow("ReadAnnouncementWitness", ["sqs:ReceiveMessage", "sqs:DeleteMessage"], [witness_queue_arn]),
    ]


def announce(scope: ControlPlaneScope) -> list[Grant]:
    return announcement_claims(scope.artifact_bucket_arn, scope.deployment)


def publish(scope: ControlPlaneScope) -> list[Grant]:
    """Every control-plane function reports on the project bus (operators hear from the bus's rules)."""
    return [allow("PutProjectEvents", ["events:PutEvents"], [scope.event_bus_arn])]


Capability = Callable[[ControlPlaneScope], list[Grant]]

TRAINING_FUNCTION_CAPABILITIES: dict[str, tuple[Capability, ...]] = {
    "divergence_monitor": (list_jobs, read_jobs, tag_jobs, stop_jobs, read_training_logs, triage_by_curves, publish),
    # Judges one job per delivered line on its stored curve: no listing and no log reading.
    "metric_line_judge": (read_jobs, tag_jobs, stop_jobs, store_curves, publish),
    "finished_job_evaluator": (read_jobs, tag_jobs, read_training_logs, publish),  # a finished job needs no stop
    "retrain_launcher": (read_jobs, tag_jobs, create_jobs, announce, publish),
}


def grants_for(function_id: str, scope: ControlPlaneScope) -> list[Grant]:
    if function_id not in TRAINING_FUNCTION_CAPABILITIES:
        raise KeyError(
            f"no permissions defined for control-plane function {function_id!r}; "
            f"known: {', '.join(TRAINING_FUNCTION_CAPABILITIES)}"
        )
    return [grant for capability in TRAINING_FUNCTION_CAPABILITIES[function_id] for grant in capability(scope)]


@dataclass(frozen=True)
class PromotionScope:
    """The ARNs the promoter may name: this deployment's models, configs, endpoint and record."""

    job_prefix: str
    endpoint_name: str
    model_role_arn: str
    event_bus_arn: str
    parameter_arns: tuple[str, ...]
    key_arn: str  # the data key: endpoint storage volumes and data capture
    endpoint_instance_types: tuple[str, ...]  # what a promoted endpoint config may run on
    artifact_bucket_arn: str  # its announcement ledger (control_plane.aws.announcements)
    deployment: str
    witness_queue_arn: str  # the announcement witness the reconciler reads
    rollback_alarm_arns: tuple[str, ...] = ()  # UpdateEndpoint's AutoRollbackConfiguration alarms

    @property
    def models_arn(self) -> str:
        return sagemaker_arn(f"model/{self.job_prefix}*")

    @property
    def endpoint_configs_arn(self) -> str:
        return sagemaker_arn(f"endpoint-config/{self.job_prefix}*")

    @property
    def endpoint_arn(self) -> str:
        return sagemaker_arn(f"endpoint/{self.endpoint_name}")

    @property
    def training_jobs_arn(self) -> str:
        return sagemaker_arn(f"training-job/{self.job_prefix}*")


def promoter_grants(scope: PromotionScope) -> list[Grant]:
    """What control_plane.logic.promotion calls: create model and config (copying the live config's
    key and data capture), create/update the endpoint, write the two serving parameters."""
    named = "The promoter names models and endpoint configs after training jobs, below the deployment prefix."
    return [
        allow(
            "ReadTrainingJobs",
            ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
            [scope.training_jobs_arn],
            wildcard_reason=PREFIX_REASON,
        ),
        allow(
            "CreateModels",
            ["sagemaker:CreateModel"],
            [scope.models_arn],
            conditions=network_isolated(),
            wildcard_reason=named,
        ),
        allow(
            "CreateEndpointConfigs",
            ["sagemaker:CreateEndpointConfig"],
            [scope.endpoint_configs_arn],
            conditions=endpoint_config_conditions(scope.endpoint_instance_types),
            wildcard_reason=named,
        ),
        allow(
            "ReadLiveEndpointConfig",
            ["sagemaker:DescribeEndpointConfig"],
            [scope.endpoint_configs_arn],
            wildcard_reason=named,
        ),
        # CreateEndpoint/UpdateEndpoint onto a config with KmsKeyId: SageMaker encrypts the
        # instances' storage volumes through a grant made with the caller's permissions.
        allow(
            "GrantDataKeyToSageMaker",
            ["kms:CreateGrant"],
            [scope.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": True}},
        ),
        allow("DescribeDataKey", ["kms:DescribeKey"], [scope.key_arn]),
        # CreateEndpoint and UpdateEndpoint are authorized on the endpoint AND the endpoint config
        # (Service Authorization Reference, Amazon SageMaker: both resource types required).
        allow(
            "DeployToTheEndpoint",
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
            [scope.endpoint_arn, scope.endpoint_configs_arn],
            wildcard_reason=named,
        ),
        allow("ReadTheEndpoint", ["sagemaker:DescribeEndpoint"], [scope.endpoint_arn]),
        # Blue/green auto-rollback: "Ensure that your IAM execution role has permission to perform
        # the cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify"
        # (docs: sagemaker/latest/dg/deployment-guardrails-configuration.html; reference 10f).
        *(
            [allow("ReadRollbackAlarms", ["cloudwatch:DescribeAlarms"], list(scope.rollback_alarm_arns))]
            if scope.rollback_alarm_arns else []
        ),
        allow(
            "TagWhatItCreates",
            ["sagemaker:AddTags"],
            [scope.models_arn, scope.endpoint_configs_arn, scope.endpoint_arn],
            wildcard_reason=named,
        ),
        allow(
            "TagTrainingJobDecision",
            ["sagemaker:AddTags"],
            [scope.training_jobs_arn],
            wildcard_reason=PREFIX_REASON,
        ),
        allow(
            "PassModelRole",
            ["iam:PassRole"],
            [scope.model_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        allow("ReadWriteServingRecord", ["ssm:GetParameter", "ssm:PutParameter"], list(scope.parameter_arns)),
        allow("PutProjectEvents", ["events:PutEvents"], [scope.event_bus_arn]),
        *announcement_claims(scope.artifact_bucket_arn, scope.deployment),
        # Before an UpdateEndpoint that changes the instance type (reference 11d), if registered.
        *endpoint_autoscaling(scope, ["application-autoscaling:DeregisterScalableTarget"]),
        describe_scaling(["application-autoscaling:DescribeScalableTargets"]),
    ]


AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
AUTOSCALING_SERVICE_LINKED_ROLE = (
    f"aws-service-role/{AUTOSCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
SCALABLE_TARGET_REASON = (
    "Application Auto Scaling names a scalable target by a generated ID (scalable-target/<id>), not by the "
    "endpoint; the conditions keep it to SageMaker variants' instance counts."
)


def endpoint_autoscaling(scope: PromotionScope, target_actions: list[str]) -> list[Grant]:
    """``target_actions`` on the endpoint variant's scalable target (control_plane.aws.autoscaling), and
    what Application Auto Scaling checks or does with the caller's permissions when it changes one."""
    variant = scalable_resource_id(scope.endpoint_name)
    return [
        allow(
            "ScaleTheEndpoint",
            target_actions,
            [f"arn:{Aws.PARTITION}:application-autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:scalable-target/*"],
            conditions={"StringEquals": {
                "application-autoscaling:service-namespace": "sagemaker",
                "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
            }},
            wildcard_reason=SCALABLE_TARGET_REASON,
        ),
        # Application Auto Scaling validates the caller's permissions on the target and on
        # CloudWatch before it acts (autoscaling/application/userguide/security_iam_permission_validation.html;
        # the SageMaker list: sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html).
        allow("ScaleTheVariant", ["sagemaker:UpdateEndpointWeightsAndCapacities"], [scope.endpoint_arn]),
        allow(
            "TargetTrackingAlarms",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
            [alarm_arn(f"TargetTracking-{variant}-*")],
            wildcard_reason="Application Auto Scaling names its target-tracking alarms with a generated suffix.",
        ),
    ]


def describe_scaling(actions: list[str]) -> Grant:
    return allow(
        "DescribeScaling",
        actions,
        ["*"],
        wildcard_reason="Application Auto Scaling's Describe actions support no resource-level permissions.",
    )


def register_autoscaling(scope: PromotionScope) -> list[Grant]:
    """What control_plane.logic.reconciler's autoscaling step calls (describe, register, put policy,
    deregister), and creating the service-linked role the first registration in an account needs."""
    return [
        *endpoint_autoscaling(scope, [
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
        ]),
        describe_scaling(
            ["application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies"]
        ),
        # "Application Auto Scaling requires permissions to create a service-linked role the first time
        # any user in your AWS account calls RegisterScalableTarget for a given service"
        # (autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
        allow(
            "CreateAutoScalingServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{AUTOSCALING_SERVICE_LINKED_ROLE}"],
            conditions={"StringLike": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
        ),
    ]


def reconciler_grants(scope: PromotionScope, training: ControlPlaneScope) -> list[Grant]:
    """What control_plane.logic.reconciler calls: the evaluator's, the launcher's and the promoter's
    steps, and reading what the endpoint serves (config, model and their tags)."""
    named = "The promoter names models and endpoint configs after training jobs, below the deployment prefix."
    # The training grants have the first three; its autoscaling step grants the scalable-target
    # actions (the promoter's deregistration among them).
    covered = (
        "ReadTrainingJobs", "TagTrainingJobDecision", "PutProjectEvents",
        "ScaleTheEndpoint", "ScaleTheVariant", "TargetTrackingAlarms", "DescribeScaling",
    )
    promoter = [grant for grant in promoter_grants(scope) if grant.statement.sid not in covered]
    served = [scope.models_arn, scope.endpoint_configs_arn]
    return [
        *list_jobs(training),
        *read_jobs(training),
        *tag_jobs(training),
        *create_jobs(training),
        *read_training_logs(training),
        allow("PutProjectEvents", ["events:PutEvents"], [training.event_bus_arn]),
        *promoter,
        *announcement_repairs(scope.artifact_bucket_arn, scope.deployment, scope.witness_queue_arn),
        allow(
            "ReadServedModel",
            ["sagemaker:DescribeModel", "sagemaker:ListTags"],
            served,
            wildcard_reason=named,
        ),
        *register_autoscaling(scope),
    ]
