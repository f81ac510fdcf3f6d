"""Promotion wiring: the promoter function, its PromoteOnSuccess rule, retries, failure queues, alarms."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct
from o2v_core import s3_layout
from o2v_core.events import ANNOUNCEMENT_WITNESS, rules
from o2v_core.function_settings import deployment_config
from o2v_core.functions import PROMOTER, RECONCILER
from o2v_core.naming import job_prefix
from o2v_core.settings import Settings

from stacks.constructs.control_plane_function import ControlPlaneFunction
from stacks.constructs.control_plane_grants import (
    ControlPlaneScope,
    PromotionScope,
    alarm_arn,
    promoter_grants,
    reconciler_grants,
)
from stacks.constructs.event_rules import EventRules, ScheduledFunctions
from stacks.constructs.failure_alarms import FailureAlarms
from stacks.constructs.secure_queue import ControlPlaneQueues, WitnessQueue
from stacks.data_stack import DataRefs
from stacks.guardrails import TrainingJobLimits
from stacks.removal import removal_policy
from stacks.serving_record import parameter_arn, serving_model_parameter
from stacks.training_stack import TrainingRefs


class Promotion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataRefs,
        training: TrainingRefs,
        endpoint_name: str,
        model_role_arn: str,
        image_uri: str,
        rollback_alarm_names: list[str],
    ) -> None:
        """The promoter and the reconciler own the endpoint, its models, configs and autoscaling;
        nothing here depends on which model it serves (docs/promotion.md, "Who owns what")."""
        super().__init__(scope, construct_id)
        deployment = settings.deployment
        # AWS services deliver into these queues: they use the message key (data_key.MessageKey).
        key = kms.Key.from_key_arn(self, "MessageKey", data.message_key_arn)
        self.topic = sns.Topic.from_topic_arn(self, "Notifications", training.notification_topic_arn)
        bus = events.EventBus.from_event_bus_name(self, "EventBus", training.event_bus_name)
        self.queues = ControlPlaneQueues(self, "FailureQueues", key=key)
        # The reconciler (here) reads it, so it lives here (control_plane.aws.announcements).
        self.witness = WitnessQueue(self, "AnnouncementWitness", key=key).queue

        record = serving_model_parameter(deployment)
        self.config = deployment_config(
            settings,
            event_bus_name=training.event_bus_name,
            notification_topic_arn=training.notification_topic_arn,
            training_role_arn=training.training_role_arn,
            endpoint_name=endpoint_name,
            serving_model_parameter=record,
            model_role_arn=model_role_arn,
            image_uri=image_uri,
            artifact_bucket=data.artifact_bucket_name,
            announcement_witness_queue_url=self.witness.queue_url,
            rollback_alarm_names=",".join(rollback_alarm_names),
            # For the first endpoint config (later ones copy the live config's): the data key for
            # the storage volumes (none where the instance's NVMe storage is encrypted by the
            # hardware: SageMaker rejects a key there), and data capture encrypted with the key.
            endpoint_kms_key_arn="" if settings.serving.instance_has_local_storage else data.key_arn,
            data_capture_s3_uri=s3_layout.s3_uri(data.artifact_bucket_name, s3_layout.DATA_CAPTURE_PREFIX),
            data_capture_sampling_percentage=settings.serving.data_capture_sampling_percentage,
            data_capture_kms_key_arn=data.key_arn,
        )
        promotion_scope = PromotionScope(
            job_prefix=job_prefix(deployment),
            endpoint_name=endpoint_name,
            model_role_arn=model_role_arn,
            event_bus_arn=training.event_bus_arn,
            parameter_arns=(parameter_arn(record),),
            key_arn=data.key_arn,
            rollback_alarm_arns=tuple(alarm_arn(name) for name in rollback_alarm_names),
            endpoint_instance_types=(settings.serving.instance_type,),
            artifact_bucket_arn=data.artifact_bucket_arn,
            deployment=deployment,
            witness_queue_arn=self.witness.queue_arn,
        )
        training_scope = ControlPlaneScope(
            job_prefix=job_prefix(deployment),
            training_role_arn=training.training_role_arn,
            event_bus_arn=training.event_bus_arn,
            training_limits=TrainingJobLimits(
                instance_types=(settings.training.instance_type,),
                max_runtime_seconds=settings.training.max_runtime_seconds,
                output_key_arn=data.key_arn,
            ),
            artifact_bucket_arn=data.artifact_bucket_arn,
            deployment=deployment,
        )
        self.promoter = ControlPlaneFunction(
            self,
            PROMOTER.function_id,
            spec=PROMOTER,
            deployment=deployment,
            config=self.config,
            grants=promoter_grants(promotion_scope),
            key_arn=data.key_arn,
            message_key_arn=data.message_key_arn,
            failure_queue=self.queues.async_failure_queue,
            log_retention_days=settings.log_retention_days,
            removal_policy=removal_policy(settings.retain_data),
        )
        # The reconciler needs the promotion settings and both sides' permissions, so it lives here.
        self.reconciler = ControlPlaneFunction(
            self,
            RECONCILER.function_id,
            spec=RECONCILER,
            deployment=deployment,
            config=self.config,
            grants=reconciler_grants(promotion_scope, training_scope),
            key_arn=data.key_arn,
            message_key_arn=data.message_key_arn,
            failure_queue=self.queues.async_failure_queue,
            log_retention_days=settings.log_retention_days,
            removal_policy=removal_policy(settings.retain_data),
        )
        self.functions = {spec.function_id: f for spec, f in ((PROMOTER, self.promoter), (RECONCILER, self.reconciler))}
        schedule_wiring = ScheduledFunctions(
            self,
            "Schedules",
            functions={RECONCILER.function_id: (RECONCILER, self.reconciler.function)},
            dlq=self.queues.rule_target_dlq,
        )
        rule_wiring = EventRules(
            self,
            "Rules",
            specs=rules(deployment),
            project_bus=bus,
            functions={PROMOTER.function_id: self.promoter.function},
            topic=None,  # the training stack wires the notification rule
            dlq=self.queues.rule_target_dlq,
            queues={ANNOUNCEMENT_WITNESS: self.witness},
        )
        self.schedules, self.rules = schedule_wiring.rules, rule_wiring.rules
        self.alarms = FailureAlarms(
            self,
            "Alarms",
            topic=self.topic,
            queues=self.queues.all,
            functions={fid: f.function for fid, f in self.functions.items()},
            rules={**rule_wiring.with_buses, **schedule_wiring.with_buses},
        ).alarms
