"""Serving: the Object2Vec embedding endpoint, its model role and its autoscaling."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnParameter, Stack
from constructs import Construct

from stacks.constructs.embedding_endpoint import EmbeddingEndpoint
from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.sagemaker_roles import ModelExecutionRole
from stacks.data_stack import DataStack
from stacks.settings import Settings


class ServingStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(data, "imports the key and bucket exports")
        refs = data.refs()
        serving = settings.serving
        endpoint_name = f"{settings.deployment}-embeddings"
        image = Object2VecImage(self, "Object2VecImage")
        model_data_url = serving.initial_model_data_url
        if model_data_url is None:
            model_data_url = CfnParameter(
                self,
                "ModelDataUrl",
                type="String",
                allowed_pattern="^s3://.+",
                description="No model artifact is configured. Set serving.initial_model_data_url in cdk.json "
                "(environments.<env>) or deploy with --parameters ModelDataUrl=s3://.../model.tar.gz",
            ).value_as_string
        self.model_role = ModelExecutionRole(
            self,
            "ModelExecutionRole",
            endpoint_name=endpoint_name,
            data=refs,
            repository_arn=image.repository_arn,
            extra_model_data_url=serving.initial_model_data_url,
        ).role
        self.endpoint = EmbeddingEndpoint(
            self,
            "EmbeddingEndpoint",
            endpoint_name=endpoint_name,
            serving=serving,
            image_uri=image.image_uri,
            model_data_url=model_data_url,
            model_role=self.model_role,
            data=refs,
        )
        CfnOutput(
            self, "EndpointName", value=self.endpoint.endpoint_name, description="InvokeEndpoint target for embeddings"
        )
        CfnOutput(
            self, "ModelRoleArn", value=self.model_role.role_arn, description="Execution role of the served models"
        )
        CfnOutput(self, "ServingImageUri", value=image.image_uri, description="Object2Vec inference image")
