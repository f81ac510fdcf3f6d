"""Bulk embedding with SageMaker Batch Transform (``o2v embed --corpus ... --endpoint NAME``): exactly
what it needs, for the two principals involved.

* **The model role** (the serving stack's models run as it; a transform job runs as its model's
  ``ExecutionRoleArn``, CreateModel's documentation): read the request objects below the job input
  prefix (and list them: an ``S3Prefix`` data source lists its prefix), write the ``.out`` objects
  below the output prefix, the data key (already granted: UseDataKey), and the job's own log group
  ``/aws/sagemaker/TransformJobs`` (streams ``<job>/...``, so this deployment's job prefix) and metrics
  namespace. :func:`model_role_transform_grants`.
* **The caller** (a person's or CI's credentials running the CLI): a managed policy to attach,
  :class:`BulkEmbeddingCaller`. Every action is one ``o2v embed --corpus`` calls (the IAM check,
  tests/stacks/test_iam_calls.py, replays the CLI's recorded calls against it), or one AWS checks on
  its behalf: ``sagemaker:AddTags`` for the tags of CreateTransformJob and CreateModel, and
  ``iam:PassRole`` of the model role for CreateModel (the Service Authorization Reference's
  dependent actions of both), ``kms:GenerateDataKey``/``kms:Decrypt`` for S3 objects under the data key.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from constructs import Construct
from o2v_core import bulk_transform, s3_layout
from o2v_core.naming import job_prefix
from o2v_core.resource_names import TRANSFORM_JOB_LOG_GROUP, TRANSFORM_JOB_METRICS_NAMESPACE

from stacks.data_stack import DataRefs
from stacks.grants import KEY_ACTIONS, Grant, allow, log_group_arn, managed_policy_with_grants

PREFIX_REASON = "Transform jobs are named at run time; the wildcard is limited to this deployment's job prefix."


def sagemaker_arn(resource: str) -> str:
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


def model_role_transform_grants(data: DataRefs, deployment: str) -> list[Grant]:
    """What a transform job running as the model role touches (module docstring)."""
    prefix = bulk_transform.transform_job_prefix(deployment)
    return [
        allow("ReadTransformInput", ["s3:GetObject"],
              [s3_layout.objects_arn(data.dataset_bucket_arn, bulk_transform.BULK_INPUT_PREFIX)],
              wildcard_reason="Each transform job reads the request objects below its own input folder."),
        allow("ListTransformInput", ["s3:ListBucket"], [data.dataset_bucket_arn],
              conditions={"StringLike": {"s3:prefix": [f"{bulk_transform.BULK_INPUT_PREFIX}*"]}}),
        allow("WriteTransformOutput", ["s3:PutObject"],
              [s3_layout.objects_arn(data.dataset_bucket_arn, bulk_transform.BULK_OUTPUT_PREFIX)],
              wildcard_reason="Each transform job writes one .out object per input object below its output folder."),
        allow("CreateTransformLogGroup", ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
              [log_group_arn(TRANSFORM_JOB_LOG_GROUP, ":*")],
              wildcard_reason=f"Log-group actions take the group ARN with its ':*' suffix; the group is "
                              f"SageMaker's own {TRANSFORM_JOB_LOG_GROUP}."),
        allow("WriteTransformLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
              [log_group_arn(TRANSFORM_JOB_LOG_GROUP, f":log-stream:{prefix}*")],
              wildcard_reason="Log streams are named after transform jobs; the wildcard is limited to this "
                              "deployment's transform-job prefix."),
        Grant(iam.PolicyStatement(
            sid="PutTransformMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": TRANSFORM_JOB_METRICS_NAMESPACE}}),
            f"cloudwatch:PutMetricData supports no resource-level permissions; a condition limits it to "
            f"{TRANSFORM_JOB_METRICS_NAMESPACE}."),
    ]


class BulkEmbeddingCaller(Construct):
    """The managed policy a user attaches to run ``o2v embed --corpus ... --endpoint | --training-job``."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: str, data: DataRefs, endpoint_name: str,
                 model_role_arn: str) -> None:
        super().__init__(scope, construct_id)
        prefix = job_prefix(deployment)
        transform_jobs = sagemaker_arn(f"transform-job/{bulk_transform.transform_job_prefix(deployment)}*")
        transform_models = sagemaker_arn(f"model/{bulk_transform.transform_job_prefix(deployment)}*")
        dataset = data.dataset_bucket_arn
        grants = [
            allow("FindServedModel", ["sagemaker:DescribeEndpoint"], [sagemaker_arn(f"endpoint/{endpoint_name}")]),
            allow("ReadServingResources", ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                                           "sagemaker:ListTags"],
                  [sagemaker_arn(f"endpoint-config/{prefix}*"), sagemaker_arn(f"model/{prefix}*")],
                  wildcard_reason="The promoter names endpoint configs and models after training jobs; the "
                                  "wildcard is limited to this deployment's job prefix."),
            allow("ReadTrainingJobs", ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
                  [sagemaker_arn(f"training-job/{prefix}*")],
                  wildcard_reason="The served model's training job (its vocabulary); this deployment's jobs only."),
            allow("RunTransformJobs", ["sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                                       "sagemaker:StopTransformJob", "sagemaker:AddTags"], [transform_jobs],
                  wildcard_reason=PREFIX_REASON),
            allow("CreateTransformModels", ["sagemaker:CreateModel", "sagemaker:AddTags"], [transform_models],
                  wildcard_reason="--training-job creates a model named after its transform job."),
            allow("PassModelRole", ["iam:PassRole"], [model_role_arn],
                  conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
            allow("ReadVocabularies", ["s3:GetObject"], [s3_layout.objects_arn(dataset, s3_layout.DATASET_PREFIX)],
                  wildcard_reason="The vocabulary is in the served job's auxiliary channel, below the dataset prefix."),
            allow("WriteTransformInput", ["s3:PutObject"],
                  [s3_layout.objects_arn(dataset, bulk_transform.BULK_INPUT_PREFIX)],
                  wildcard_reason="The CLI writes each job's request objects below its own input folder."),
            allow("ReadTransformOutput", ["s3:GetObject"],
                  [s3_layout.objects_arn(dataset, bulk_transform.BULK_OUTPUT_PREFIX)],
                  wildcard_reason="The CLI reads each job's .out objects below its own output folder."),
            allow("ListTransformOutput", ["s3:ListBucket"], [dataset],
                  conditions={"StringLike": {"s3:prefix": [f"{bulk_transform.BULK_OUTPUT_PREFIX}*"]}}),
            allow("UseDataKey", KEY_ACTIONS, [data.key_arn]),
        ]
        self.policy = managed_policy_with_grants(
            self, "Policy", grants=grants,
            description=f"Run o2v embed --corpus with SageMaker Batch Transform in deployment {deployment}")
