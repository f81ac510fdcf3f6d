"""SageMaker execution roles, each limited to exactly what its jobs or endpoint touch."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from constructs import Construct
from o2v_core import s3_layout
from o2v_core.resource_names import (
    ENDPOINT_METRICS_NAMESPACE,
    TRAINING_JOB_LOG_GROUP,
    TRAINING_JOB_METRICS_NAMESPACE,
    endpoint_log_group,
)

from stacks.data_stack import DataRefs
from stacks.grants import Grant, log_group_arn, role_with_grants
from stacks.guardrails import sagemaker_source_conditions

ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
# SageMaker needs kms:Encrypt on the execution role when a job's OutputDataConfig (or an endpoint's
# data capture) names a KMS key; Decrypt and GenerateDataKey cover reading and writing S3 objects.
SAGEMAKER_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


def _image_pull(repository_arn: str) -> list[Grant]:
    return [
        Grant(iam.PolicyStatement(sid="PullObject2VecImage", actions=ECR_PULL_ACTIONS, resources=[repository_arn])),
        Grant(
            iam.PolicyStatement(sid="GetRegistryToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            "ecr:GetAuthorizationToken supports no resource-level permissions; the pull itself is limited "
            "to the Object2Vec repository.",
        ),
    ]


def _put_metrics(sid: str, namespace: str) -> Grant:
    return Grant(
        iam.PolicyStatement(
            sid=sid,
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
        ),
        f"cloudwatch:PutMetricData supports no resource-level permissions; a condition limits it to {namespace}.",
    )


def service_role(
    scope: Construct, construct_id: str, *, description: str, policy_name: str, grants: list[Grant]
) -> iam.Role:
    return role_with_grants(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(SAGEMAKER_PRINCIPAL, conditions=sagemaker_source_conditions()),
        description=description,
        policy_name=policy_name,
        grants=grants,
    )


class TrainingExecutionRole(Construct):
    """The role GPU training jobs run as: read datasets, write artifacts, pull the image, log."""

    def __init__(
        self, scope: Construct, construct_id: str, *, deployment_prefix: str, data: DataRefs, repository_arn: str
    ) -> None:
        super().__init__(scope, construct_id)
        grants = [
            Grant(
                iam.PolicyStatement(
                    sid="ReadDatasets",
                    actions=["s3:GetObject"],
                    resources=[s3_layout.objects_arn(data.dataset_bucket_arn, s3_layout.DATASET_PREFIX)],
                ),
                "Training reads the channels of any lineage below the dataset prefix; lineages appear at run time.",
            ),
            Grant(
                iam.PolicyStatement(
                    sid="ListDatasets",
                    actions=["s3:ListBucket"],
                    resources=[data.dataset_bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{s3_layout.DATASET_PREFIX}*"]}},
                )
            ),
            Grant(
                iam.PolicyStatement(
                    sid="WriteArtifacts",
                    actions=["s3:PutObject"],
                    resources=[s3_layout.objects_arn(data.artifact_bucket_arn, s3_layout.TRAINING_OUTPUT_PREFIX)],
                ),
                "Each job writes model.tar.gz under its own job name, below the training-output prefix.",
            ),
            Grant(iam.PolicyStatement(sid="UseDataKey", actions=SAGEMAKER_KEY_ACTIONS, resources=[data.key_arn])),
            *_image_pull(repository_arn),
            Grant(
                iam.PolicyStatement(
                    sid="CreateTrainingLogGroup",
                    actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                    resources=[log_group_arn(TRAINING_JOB_LOG_GROUP, ":*")],
                ),
                f"Log-group actions take the group ARN with its ':*' suffix; the group is SageMaker's own "
                f"{TRAINING_JOB_LOG_GROUP}.",
            ),
            Grant(
                iam.PolicyStatement(
                    sid="WriteTrainingLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    # Stream names start with the training job name, hence with the deployment prefix.
                    resources=[log_group_arn(TRAINING_JOB_LOG_GROUP, f":log-stream:{deployment_prefix}*")],
                ),
                "Log streams are named after training jobs; the wildcard is limited to this deployment's job prefix.",
            ),
            _put_metrics("PutTrainingMetrics", TRAINING_JOB_METRICS_NAMESPACE),
        ]
        self.role = service_role(
            self,
            "Role",
            description=f"Execution role of the {deployment_prefix}* Object2Vec training jobs",
            policy_name="TrainingJob",
            grants=grants,
        )


class ModelExecutionRole(Construct):
    """The role the embedding endpoint's models run as: read model artifacts, write data capture;
    and, as the execution role of the transform jobs that run those models, ``extra_grants``
    (stacks/constructs/bulk_embedding.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        data: DataRefs,
        repository_arn: str,
        rollback_alarm_arns: Sequence[str] = (),
        extra_grants: Sequence[Grant] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # The promoter serves only artifacts below the training-output prefix (its provenance rule).
        model_artifacts = [s3_layout.objects_arn(data.artifact_bucket_arn, s3_layout.TRAINING_OUTPUT_PREFIX)]
        log_group = endpoint_log_group(endpoint_name)
        grants = [
            Grant(
                iam.PolicyStatement(sid="ReadModelArtifacts", actions=["s3:GetObject"], resources=model_artifacts),
                "A promoted model can be any training job's model.tar.gz below the training-output prefix.",
            ),
            Grant(
                iam.PolicyStatement(
                    sid="WriteDataCapture",
                    actions=["s3:PutObject"],
                    resources=[s3_layout.objects_arn(data.artifact_bucket_arn, s3_layout.DATA_CAPTURE_PREFIX)],
                ),
                "Data capture writes one object per capture file, below the data-capture prefix.",
            ),
            Grant(iam.PolicyStatement(sid="UseDataKey", actions=SAGEMAKER_KEY_ACTIONS, resources=[data.key_arn])),
            *_image_pull(repository_arn),
            Grant(
                iam.PolicyStatement(
                    sid="WriteEndpointLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    resources=[log_group_arn(log_group), log_group_arn(log_group, ":log-stream:*")],
                ),
                f"Streams are created per instance at run time; the wildcard stays inside the {log_group} group.",
            ),
            _put_metrics("PutEndpointMetrics", ENDPOINT_METRICS_NAMESPACE),
        ]
        if rollback_alarm_arns:
            # "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms
            # action on the auto-rollback alarms you specify" (deployment-guardrails-configuration.html;
            # reference 10f). Which role that is, the promoter's (which calls UpdateEndpoint) or the
            # models' execution role, no source settles (docs/verification.md): both have it.
            grants.append(
                Grant(
                    iam.PolicyStatement(
                        sid="ReadRollbackAlarms",
                        actions=["cloudwatch:DescribeAlarms"],
                        resources=list(rollback_alarm_arns),
                    )
                )
            )
        grants.extend(extra_grants)
        self.role = service_role(
            self,
            "Role",
            description=f"Execution role of the models behind the {endpoint_name} endpoint",
            policy_name="ServeModel",
            grants=grants,
        )
