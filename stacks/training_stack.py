"""Training: the SageMaker execution role, the algorithm image and the retraining control plane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Annotations, CfnOutput, Fn, Stack
from constructs import Construct
from o2v_core import resource_names as names
from o2v_core.naming import job_prefix
from o2v_core.settings import Settings

from stacks.constructs.object2vec_image import Object2VecImage
from stacks.constructs.retraining_control_plane import RetrainingControlPlane
from stacks.constructs.sagemaker_roles import TrainingExecutionRole
from stacks.data_stack import DataStack

# Outputs exported by name for the serving stack (see DataRefs for why named exports).
EXPORTED_OUTPUTS = (
    names.OUTPUT_TRAINING_ROLE,
    names.OUTPUT_EVENT_BUS,
    names.OUTPUT_EVENT_BUS_ARN,
    names.OUTPUT_NOTIFICATION_TOPIC,
)


NO_SUBSCRIBER_WARNING_ID = "o2v:NoAlarmSubscriber"


def no_subscriber_warning(env_name: str) -> str:
    return (
        f"environments.{env_name} retains its data (removal_policy retain) but has no notification_email: "
        "alarms, failed jobs and exhausted retraining reach nobody. Set "
        f"environments.{env_name}.notification_email in cdk.json, or subscribe to the topic in output "
        f"{names.OUTPUT_NOTIFICATION_TOPIC} yourself (README, 'Getting the alarms')."
    )


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

        if settings.retain_data and settings.notification_email is None:
            Annotations.of(self.control_plane.topic).add_warning_v2(
                NO_SUBSCRIBER_WARNING_ID, no_subscriber_warning(settings.env_name)
            )

        bus = self.control_plane.event_bus
        outputs = {
            names.OUTPUT_TRAINING_ROLE: (self.training_role.role_arn, "RoleArn for CreateTrainingJob"),
            names.OUTPUT_TRAINING_IMAGE: (
                self.image.image_uri,
                "TrainingImage of the Object2Vec algorithm in this region",
            ),
            names.OUTPUT_INSTANCE_TYPE: (settings.training.instance_type, "Instance type of the first attempt"),
            names.OUTPUT_JOB_PREFIX: (job_prefix(settings.deployment), "Prefix of every training job name"),
            names.OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS: (
                settings.hyperparameters_json,
                "Validated Object2Vec hyperparameters of a lineage's first attempt",
            ),
            names.OUTPUT_EVENT_BUS: (bus.event_bus_name, "The project event bus"),
            names.OUTPUT_EVENT_BUS_ARN: (bus.event_bus_arn, "ARN of the project event bus"),
            names.OUTPUT_NOTIFICATION_TOPIC: (
                self.control_plane.topic.topic_arn,
                "Operators' SNS topic (failures, exhausted retraining, promotions)",
            ),
        }
        for function_id, function in self.control_plane.functions.items():
            outputs[names.function_name_output(function_id)] = (
                function.function.function_name,
                function.spec.description,
            )
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
            training_role_arn=imported(names.OUTPUT_TRAINING_ROLE),
            event_bus_name=imported(names.OUTPUT_EVENT_BUS),
            event_bus_arn=imported(names.OUTPUT_EVENT_BUS_ARN),
            notification_topic_arn=imported(names.OUTPUT_NOTIFICATION_TOPIC),
        )
