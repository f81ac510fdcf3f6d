"""Training: the SageMaker execution role, the algorithm image and the retraining control plane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct
from o2v_core.naming import job_prefix

from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.retraining_control_plane import RetrainingControlPlane
from stacks.constructs.sagemaker_roles import TrainingExecutionRole
from stacks.data_stack import DataStack
from stacks.settings import Settings


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


# Outputs exported by name for the serving stack (see DataRefs for why named exports).
EXPORTED_OUTPUTS = ("TrainingRoleArn", "EventBusName", "EventBusArn", "NotificationTopicArn")


@dataclass(frozen=True)
class TrainingRefs:
    training_role_arn: str
    event_bus_name: str
    event_bus_arn: str
    notification_topic_arn: str


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
        self.control_plane = RetrainingControlPlane(
            self,
            "ControlPlane",
            settings=settings,
            data=refs,
            training_role_arn=self.training_role.role_arn,
            image_uri=self.image.image_uri,
        )

        bus = self.control_plane.event_bus
        outputs = {
            "TrainingRoleArn": (self.training_role.role_arn, "RoleArn for CreateTrainingJob"),
            "Object2VecImageUri": (self.image.image_uri, "TrainingImage of the Object2Vec algorithm in this region"),
            "TrainingInstanceType": (settings.training.instance_type, "Instance type of the first attempt"),
            "TrainingJobPrefix": (job_prefix(settings.deployment), "Prefix of every training job name"),
            "FirstAttemptHyperparameters": (
                settings.hyperparameters_json,
                "Validated Object2Vec hyperparameters of a lineage's first attempt",
            ),
            "EventBusName": (bus.event_bus_name, "The project event bus"),
            "EventBusArn": (bus.event_bus_arn, "ARN of the project event bus"),
            "NotificationTopicArn": (
                self.control_plane.topic.topic_arn,
                "Operators' SNS topic (failures, exhausted retraining, promotions)",
            ),
        }
        for function_id, function in self.control_plane.functions.items():
            outputs[f"{pascal(function_id)}FunctionName"] = (function.function.function_name, function.spec.description)
        for name, (value, description) in outputs.items():
            export = self.export_name(name) if name in EXPORTED_OUTPUTS else None
            CfnOutput(self, name, value=value, description=description[:1000], export_name=export)

    def export_name(self, output: str) -> str:
        return f"{self.stack_name}:{output}"

    def refs(self) -> TrainingRefs:
        """Import tokens for the serving stack (which must also ``add_stack_dependency`` on this one)."""

        def imported(output: str) -> str:
            return Fn.import_value(self.export_name(output))

        return TrainingRefs(
            training_role_arn=imported("TrainingRoleArn"),
            event_bus_name=imported("EventBusName"),
            event_bus_arn=imported("EventBusArn"),
            notification_topic_arn=imported("NotificationTopicArn"),
        )
