"""Training: the SageMaker execution role, the algorithm image, and (later) the control plane."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct
from o2v_core.naming import job_prefix

from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.sagemaker_roles import TrainingExecutionRole
from stacks.data_stack import DataStack
from stacks.settings import Settings


class TrainingStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(data, "imports the key and bucket exports")
        refs = data.refs()
        self.image = Object2VecImage(self, "Object2VecImage")
        self.training_role = TrainingExecutionRole(
            self,
            "TrainingExecutionRole",
            deployment_prefix=job_prefix(settings.deployment),
            data=refs,
            repository_arn=self.image.repository_arn,
        ).role

        CfnOutput(
            self, "TrainingRoleArn", value=self.training_role.role_arn, description="RoleArn for CreateTrainingJob"
        )
        CfnOutput(
            self,
            "Object2VecImageUri",
            value=self.image.image_uri,
            description="TrainingImage of the Object2Vec algorithm in this region",
        )
        CfnOutput(
            self,
            "TrainingInstanceType",
            value=settings.training.instance_type,
            description="Instance type of the first attempt",
        )
        CfnOutput(
            self,
            "TrainingJobPrefix",
            value=job_prefix(settings.deployment),
            description="Every training job of this deployment starts with this prefix",
        )
        CfnOutput(
            self,
            "FirstAttemptHyperparameters",
            value=settings.hyperparameters_json,
            description="Validated Object2Vec hyperparameters of a lineage's first attempt",
        )
