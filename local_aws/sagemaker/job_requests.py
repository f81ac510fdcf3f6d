"""A realistic CreateTrainingJob request for Object2Vec on its built-in image, as the launcher sends it.

For scripted jobs (:mod:`local_aws.sagemaker.scripted`): the tests and the bench create training
jobs with it, and the local SageMaker API checks it against SageMaker's whole request contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from o2v_core.naming import Lineage, job_name, tag_list

from local_aws.sagemaker.scripted import ACCOUNT, REGION

DEPLOYMENT = "dev"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/o2v-dev-training"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
BASE_HYPERPARAMETERS = {
    "enc0_max_seq_len": "40",
    "enc0_vocab_size": "20000",
    "enc0_network": "bilstm",
    "enc_dim": "512",
    "output_layer": "mean_squared_error",
    "dropout": "0.2",
    "epochs": "30",
    "mini_batch_size": "64",
    "learning_rate": "0.0004",
    "early_stopping_patience": "3",
}
# Early-stopping patience 5: at the epoch 7 of the tests' DIVERGING curve (tests/support/cloud.py;
# bad epochs 4-7, none 0.01 below the previous 5 epochs' minimum) Object2Vec's own rule would still
# run 2 more epochs (reference 10c); with the default patience 3 it has already ended the job there,
# so stopping it would save nothing.
PATIENT = {**BASE_HYPERPARAMETERS, "early_stopping_patience": "5"}


def job_request(
    lineage: str, attempt: int = 1, *, hyperparameters: Mapping[str, str] | None = None,
    parent: str | None = None, extra_tags: Mapping[str, str] | None = None, deployment: str | None = None,
) -> dict[str, Any]:
    deployment = deployment or DEPLOYMENT
    name = job_name(deployment, lineage, attempt)
    tags = {**Lineage(deployment, lineage, attempt, parent).tags(), "team": "search", **(extra_tags or {})}
    return {
        "TrainingJobName": name,
        "HyperParameters": dict(hyperparameters or BASE_HYPERPARAMETERS),
        "AlgorithmSpecification": {
            # A built-in image: no MetricDefinitions (SageMaker refuses them, reference section 10a).
            "TrainingImage": IMAGE, "TrainingInputMode": "File",
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            _channel("train", f"s3://o2v-{deployment}-data/datasets/stsb/train/"),
            _channel("validation", f"s3://o2v-{deployment}-data/datasets/stsb/validation/"),
            _channel("auxiliary", f"s3://o2v-{deployment}-data/datasets/stsb/auxiliary/", "application/json"),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://o2v-{deployment}-artifacts/models/", "KmsKeyId": KMS_KEY},
        "ResourceConfig": {
            "InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50, "VolumeKmsKeyId": KMS_KEY,
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"],
                      "Subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3000, "MaxWaitTimeInSeconds": 3600},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://o2v-{deployment}-artifacts/checkpoints/{name}/",
                             "LocalPath": "/opt/ml/checkpoints"},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "Tags": tag_list(tags),
    }


def _channel(name: str, uri: str, content_type: str = "application/jsonlines") -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"},
        },
        "ContentType": content_type,
        "CompressionType": "None",
        "RecordWrapperType": "None",
        "InputMode": "File",
    }
