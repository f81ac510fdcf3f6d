"""Serving: what does not depend on the served model. The model execution role, the inference image,
the endpoint's alarms (keyed by the endpoint's name), and promotion (the promoter, the reconciler).

No model, endpoint config, endpoint or scalable target: the promoter and the reconciler create and
change those (docs/promotion.md, "Who owns what"), so a deploy of this stack never changes which
model is served, and the first deploy needs no model at all.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct
from o2v_core import bulk_transform, resource_names
from o2v_core.endpoint_deployment import VARIANT_NAME
from o2v_core.settings import Settings

from stacks.constructs.bulk_embedding import BulkEmbeddingCaller, model_role_transform_grants
from stacks.constructs.endpoint_alarms import EndpointAlarms
from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.promotion import Promotion
from stacks.constructs.sagemaker_roles import ModelExecutionRole
from stacks.data_stack import DataStack
from stacks.serving_record import serving_model_parameter
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
        self.add_stack_dependency(data, "imports the key and bucket exports")
        self.add_stack_dependency(training, "imports the event bus, topic and training role exports")
        refs = data.refs()
        training_refs = training.refs()
        serving = settings.serving
        endpoint_name = resource_names.endpoint_name(settings.deployment)
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
            rollback_alarm_arns=[alarm.alarm_arn for alarm in self.endpoint_alarms.all],
            extra_grants=model_role_transform_grants(refs, settings.deployment),
        ).role
        self.bulk_embedding = BulkEmbeddingCaller(
            self, bulk_transform.CALLER_POLICY, deployment=settings.deployment, data=refs,
            endpoint_name=endpoint_name, model_role_arn=self.model_role.role_arn)
        rollback_alarm_names = [alarm.alarm_name for alarm in self.endpoint_alarms.all]
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
        )

        outputs = {
            resource_names.OUTPUT_ENDPOINT_NAME: (
                endpoint_name,
                "InvokeEndpoint target for embeddings (created by the first promotion)",
            ),
            resource_names.OUTPUT_MODEL_ROLE: (self.model_role.role_arn, "Execution role of the served models"),
            resource_names.OUTPUT_SERVING_IMAGE: (image.image_uri, "Object2Vec inference image"),
            resource_names.OUTPUT_SERVING_MODEL_PARAMETER: (
                serving_model_parameter(settings.deployment),
                "The promoter's record of the served model",
            ),
            resource_names.function_name_output(self.promotion.promoter.spec.function_id): (
                self.promotion.promoter.function.function_name,
                "The promoter function",
            ),
            resource_names.OUTPUT_BULK_EMBEDDING_POLICY: (
                self.bulk_embedding.policy.managed_policy_arn,
                f"Attach to whoever runs o2v embed --corpus ... --out ... --endpoint {endpoint_name} "
                "(SageMaker Batch Transform)",
            ),
            resource_names.OUTPUT_ROLLBACK_ALARMS: (
                Fn.join(",", rollback_alarm_names),
                "Alarms that roll a blue/green update back",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
