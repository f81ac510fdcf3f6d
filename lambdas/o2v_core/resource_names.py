"""Names of the deployed resources that the stacks create and local mode stands in for.

Defined once, without CDK imports, so that local mode and the launcher can use them without
starting a jsii process: the stack names, the stacks' CloudFormation output keys (``OUTPUT_*``;
``stacks/`` creates them, ``training/launcher/stack.py`` reads them), the bus, the endpoint and
the served-model parameters.

The served-model record is one SSM String parameter, ``/o2v/{deployment}/serving-model``: the
promoter's JSON record (modelDataUrl, trainingJobName, metricName, metricValue, ...), created and
written by the promoter and the reconciler only. No stack sets it, and no stack creates a model,
endpoint config or endpoint: the promoter and the reconciler own those (docs/promotion.md, "Who
owns what"), so a redeploy never changes the served model.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Stacks (stacks/app_builder.py) and their CloudFormation output keys


def data_stack_name(deployment: str) -> str:
    """Key, buckets, served-model record (stateful)."""
    return f"{deployment}-data"


def training_stack_name(deployment: str) -> str:
    """Training role, image and the retraining control plane."""
    return f"{deployment}-training"


def serving_stack_name(deployment: str) -> str:
    """Embedding endpoint and promotion."""
    return f"{deployment}-serving"


# <deployment>-data (stacks/data_stack.py)
OUTPUT_DATA_KEY = "DataKeyArn"
OUTPUT_MESSAGE_KEY = "MessageKeyArn"
OUTPUT_DATASET_BUCKET = "DatasetBucketName"
OUTPUT_DATASET_BUCKET_ARN = "DatasetBucketArn"
OUTPUT_ARTIFACT_BUCKET = "ArtifactBucketName"
OUTPUT_ARTIFACT_BUCKET_ARN = "ArtifactBucketArn"
OUTPUT_DATASET_URI = "DatasetS3Uri"
OUTPUT_TRAINING_OUTPUT_URI = "TrainingOutputS3Uri"
OUTPUT_DATA_CAPTURE_URI = "DataCaptureS3Uri"
OUTPUT_ACCESS_LOG_BUCKET = "AccessLogBucketName"
OUTPUT_SERVING_MODEL_PARAMETER = "ServingModelParameterName"  # also a serving-stack output

# <deployment>-training (stacks/training_stack.py)
OUTPUT_TRAINING_ROLE = "TrainingRoleArn"
OUTPUT_TRAINING_IMAGE = "Object2VecImageUri"
OUTPUT_INSTANCE_TYPE = "TrainingInstanceType"
OUTPUT_JOB_PREFIX = "TrainingJobPrefix"
OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS = "FirstAttemptHyperparameters"
OUTPUT_EVENT_BUS = "EventBusName"
OUTPUT_EVENT_BUS_ARN = "EventBusArn"
OUTPUT_NOTIFICATION_TOPIC = "NotificationTopicArn"


def function_name_output(function_id: str) -> str:
    """Output key of a function's name (training stack; the promoter's in the serving stack):
    ``retrain_launcher`` -> ``RetrainLauncherFunctionName``."""
    return "".join(part.capitalize() for part in function_id.split("_")) + "FunctionName"


# <deployment>-serving (stacks/serving_stack.py)
OUTPUT_ENDPOINT_NAME = "EndpointName"
OUTPUT_MODEL_ROLE = "ModelRoleArn"
OUTPUT_SERVING_IMAGE = "ServingImageUri"
OUTPUT_ROLLBACK_ALARMS = "RollbackAlarmNames"
OUTPUT_BULK_EMBEDDING_POLICY = "BulkEmbeddingPolicyArn"  # the managed policy o2v embed --corpus needs


# ---------------------------------------------------------------------------------------------
# Resources


def event_bus_name(deployment: str) -> str:
    """The project's own event bus (the SageMaker state-change rule stays on the default bus)."""
    return f"{deployment}-control-plane"


def endpoint_name(deployment: str) -> str:
    """The embedding endpoint."""
    return f"{deployment}-embeddings"


def serving_model_parameter(deployment: str) -> str:
    return f"/o2v/{deployment}/serving-model"


# ---------------------------------------------------------------------------------------------
# Names SageMaker owns: a training job writes its logs and its algorithm metrics here.
# Sources (shared/reference/object2vec.md section 8b): logs go to this CloudWatch Logs group, one
# stream per instance whose name begins with the job name
# (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html); algorithm metrics go
# to this CloudWatch namespace with dimension TrainingJobName
# (https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html).

TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_JOB_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# SageMaker's log group of batch transform jobs (developer guide, "Log groups and streams that Amazon
# SageMaker AI sends to Amazon CloudWatch Logs": streams <job>/<instance-id>-<epoch> and .../data-log).
TRANSFORM_JOB_LOG_GROUP = "/aws/sagemaker/TransformJobs"
# SageMaker's CloudWatch metrics namespace of batch transform job instances (developer guide,
# "Amazon SageMaker AI metrics in Amazon CloudWatch": "/aws/sagemaker/TransformJobs").
TRANSFORM_JOB_METRICS_NAMESPACE = "/aws/sagemaker/TransformJobs"
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


def endpoint_log_group(endpoint_name: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container output to
    (``/aws/sagemaker/Endpoints/[EndpointName]``,
    https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html)."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


# Log groups of this deployment's Lambda functions: named below one prefix, so that the data key's
# policy can let CloudWatch Logs use the key for exactly these groups (encryption context).


def log_group_prefix(deployment: str) -> str:
    return f"/o2v/{deployment}/"


def function_log_group_name(deployment: str, function_id: str) -> str:
    """Log group of one Lambda function (a control-plane function or a custom-resource handler)."""
    return f"{log_group_prefix(deployment)}{function_id}"


# Artifact bucket: SageMaker's OutputDataConfig.S3OutputPath of every training job (stacks/s3_layout.py
# re-exports it); the promoter promotes only artifacts below it.
TRAINING_OUTPUT_PREFIX = "training-jobs/"


# The per-job curve store of the metric-line judge (o2v_core.curve_store): one DynamoDB table per
# deployment, created by the training stack and by local mode's pump.


def job_curve_table_name(deployment: str) -> str:
    return f"{deployment}-job-curves"
