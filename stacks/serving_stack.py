"""Serving: the Object2Vec embedding endpoint (blue/green, autoscaled), its alarms and the promoter.

The model's artifact is resolved at deploy time from the SSM parameter that the promoter
updates, so a redeploy serves the promoted model rather than reverting to the configured one.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnDynamicReference, CfnDynamicReferenceService, CfnOutput, Fn, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct
from o2v_core import resource_names
from o2v_core.settings import Settings

from stacks.constructs.embedding_endpoint import VARIANT_NAME, EmbeddingEndpoint
from stacks.constructs.endpoint_alarms import EndpointAlarms
from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.promotion import Promotion
from stacks.constructs.sagemaker_roles import ModelExecutionRole
from stacks.data_stack import DataStack
from stacks.serving_record import serving_model_data_url_parameter, serving_model_parameter
from stacks.training_stack import TrainingStack


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        training: TrainingStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(data, "imports the key and bucket exports; creates the served-model parameter")
        self.add_stack_dependency(training, "imports the event bus, topic and training role exports")
        refs = data.refs()
        training_refs = training.refs()
        serving = settings.serving
        endpoint_name = resource_names.endpoint_name(settings.deployment)
        url_parameter = serving_model_data_url_parameter(settings.deployment)
        if serving.initial_model_data_url is None:
            Annotations.of(self).add_info(
                f"No model artifact is configured. Before the first deploy of {self.stack_name}, set "
                f"environments.{settings.env_name}.serving.initial_model_data_url in cdk.json (an S3 URI of an "
                f"Object2Vec model.tar.gz) and deploy {data.stack_name}, or put it into the SSM String parameter "
                f"{url_parameter}. Promotions overwrite that parameter; redeploys keep what it says."
            )
        image = Object2VecImage(self, "Object2VecImage")
        self.endpoint_alarms = EndpointAlarms(
            self,
            "EndpointAlarms",
            endpoint_name=endpoint_name,
            variant_name=VARIANT_NAME,
            max_model_latency_ms=serving.max_model_latency_ms,
            topic=sns.Topic.from_topic_arn(self, "NotificationTopic", training_refs.notification_topic_arn),
        )
        self.model_role = ModelExecutionRole(
            self,
            "ModelExecutionRole",
            endpoint_name=endpoint_name,
            data=refs,
            repository_arn=image.repository_arn,
            extra_model_data_url=serving.initial_model_data_url,
            rollback_alarm_arns=[alarm.alarm_arn for alarm in self.endpoint_alarms.all],
        ).role
        rollback_alarm_names = [alarm.alarm_name for alarm in self.endpoint_alarms.all]
        self.endpoint = EmbeddingEndpoint(
            self,
            "EmbeddingEndpoint",
            endpoint_name=endpoint_name,
            serving=serving,
            image_uri=image.image_uri,
            # Resolved by CloudFormation at deploy time, never at synth; see stacks/serving_record.py.
            model_data_url=CfnDynamicReference(CfnDynamicReferenceService.SSM, url_parameter).to_string(),
            model_role=self.model_role,
            data=refs,
            rollback_alarm_names=rollback_alarm_names,
        )
        self.promotion = Promotion(
            self,
            "Promotion",
            settings=settings,
            data=refs,
            training=training_refs,
            endpoint_name=endpoint_name,
            model_role_arn=self.model_role.role_arn,
            image_uri=image.image_uri,
            rollback_alarm_names=rollback_alarm_names,
            endpoint_config_arn=self.endpoint.endpoint_config.attr_endpoint_config_arn,
            stack_model_arn=self.endpoint.model.ref,
        )

        outputs = {
            resource_names.OUTPUT_ENDPOINT_NAME: (self.endpoint.endpoint_name, "InvokeEndpoint target for embeddings"),
            resource_names.OUTPUT_MODEL_ROLE: (self.model_role.role_arn, "Execution role of the served models"),
            resource_names.OUTPUT_SERVING_IMAGE: (image.image_uri, "Object2Vec inference image"),
            resource_names.OUTPUT_SERVING_MODEL_DATA_URL_PARAMETER: (
                url_parameter,
                "SSM parameter the model's artifact is read from",
            ),
            resource_names.OUTPUT_SERVING_MODEL_PARAMETER: (
                serving_model_parameter(settings.deployment),
                "The promoter's record of the served model",
            ),
            resource_names.function_name_output(self.promotion.promoter.spec.function_id): (
                self.promotion.promoter.function.function_name,
                "The promoter function",
            ),
            resource_names.OUTPUT_ROLLBACK_ALARMS: (
                Fn.join(",", rollback_alarm_names),
                "Alarms that roll a blue/green update back",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
