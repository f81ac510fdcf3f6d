"""The retraining control plane of the training stack.

Bus, topic, failure queues, the metric-line judge's curve store (a DynamoDB table), one function
per o2v_core.functions spec (except the promoter, which
the serving stack owns), one rule per o2v_core.events.rules() spec that targets them, the
monitor's schedule, the subscription filter that hands each ``#quality_metric`` line of SageMaker's
training log group to the metric-line judge (with the group made sure to exist), alarms and a dashboard.
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from o2v_core.events import rules
from o2v_core.function_settings import deployment_config
from o2v_core.functions import DIVERGENCE_MONITOR, FUNCTIONS, METRIC_LINE_JUDGE, SERVING_FUNCTIONS
from o2v_core.hyperparameters import DEFAULT_OUTPUT_LAYER
from o2v_core.metric_lines import LOSS_METRIC
from o2v_core.naming import job_prefix
from o2v_core.settings import Settings

from stacks.constructs.control_plane_function import ControlPlaneFunction
from stacks.constructs.control_plane_grants import ControlPlaneScope, grants_for
from stacks.constructs.event_rules import EventRules, ScheduledFunctions
from stacks.constructs.failure_alarms import FailureAlarms
from stacks.constructs.job_curve_store import JobCurveStore
from stacks.constructs.log_subscriptions import LogSubscriptions
from stacks.constructs.notification_topic import NotificationTopic
from stacks.constructs.project_event_bus import ProjectEventBus
from stacks.constructs.retraining_dashboard import RetrainingDashboard
from stacks.constructs.secure_queue import ControlPlaneQueues
from stacks.data_stack import DataRefs
from stacks.guardrails import TrainingJobLimits
from stacks.removal import removal_policy

# The promoter needs the endpoint, so the serving stack owns it (and its rule).
TRAINING_FUNCTIONS = tuple(spec for spec in FUNCTIONS if spec not in SERVING_FUNCTIONS)


def validation_metric_name(settings: Settings) -> str:
    output_layer = str(settings.hyperparameters.get("output_layer", DEFAULT_OUTPUT_LAYER))
    return f"validation:{LOSS_METRIC[output_layer]}"


class RetrainingControlPlane(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataRefs,
        training_role_arn: str,
        image_uri: str,
    ) -> None:
        super().__init__(scope, construct_id)
        deployment = settings.deployment
        removal = removal_policy(settings.retain_data)
        key = kms.Key.from_key_arn(self, "DataKey", data.key_arn)
        # AWS services deliver into the topic and queues: they use the message key (data_key.MessageKey).
        message_key = kms.Key.from_key_arn(self, "MessageKey", data.message_key_arn)

        self.queues = ControlPlaneQueues(self, "FailureQueues", key=message_key)
        self.notifications = NotificationTopic(
            self, "Notifications", deployment=deployment, key=message_key, email=settings.notification_email
        )
        self.topic = self.notifications.topic
        self.event_bus = ProjectEventBus(
            self, "EventBus", deployment=deployment, archive_retention_days=settings.log_retention_days
        ).bus

        self.config = deployment_config(
            settings,
            event_bus_name=self.event_bus.event_bus_name,
            notification_topic_arn=self.topic.topic_arn,
            training_role_arn=training_role_arn,
            image_uri=image_uri,
            artifact_bucket=data.artifact_bucket_name,
        )
        self.curve_store = JobCurveStore(self, "JobCurveStore", deployment=deployment, key=key, removal_policy=removal)
        grant_scope = ControlPlaneScope(
            job_prefix=job_prefix(deployment),
            training_role_arn=training_role_arn,
            event_bus_arn=self.event_bus.event_bus_arn,
            training_limits=TrainingJobLimits(
                instance_types=(settings.training.instance_type,),
                max_runtime_seconds=settings.training.max_runtime_seconds,
                output_key_arn=data.key_arn,
            ),
            curve_table_arn=self.curve_store.table.table_arn,
            artifact_bucket_arn=data.artifact_bucket_arn,
            deployment=deployment,
        )
        self.functions: dict[str, ControlPlaneFunction] = {
            spec.function_id: ControlPlaneFunction(
                self,
                spec.function_id,
                spec=spec,
                deployment=deployment,
                config=self.config,
                grants=grants_for(spec.function_id, grant_scope),
                key_arn=data.key_arn,
                message_key_arn=data.message_key_arn,
                failure_queue=self.queues.async_failure_queue,
                log_retention_days=settings.log_retention_days,
                removal_policy=removal,
            )
            for spec in TRAINING_FUNCTIONS
        }
        lambdas: dict[str, lambda_.IFunction] = {fid: f.function for fid, f in self.functions.items()}

        rule_wiring = EventRules(
            self,
            "Rules",
            specs=rules(deployment),
            project_bus=self.event_bus,
            functions=lambdas,
            topic=self.topic,
            dlq=self.queues.rule_target_dlq,
        )
        schedule_wiring = ScheduledFunctions(
            self,
            "Schedules",
            functions={fid: (f.spec, f.function) for fid, f in self.functions.items()},
            dlq=self.queues.rule_target_dlq,
        )
        self.rules, self.schedules = rule_wiring.rules, schedule_wiring.rules

        self.subscriptions = LogSubscriptions(
            self,
            "LogSubscriptions",
            deployment=deployment,
            functions={fid: (f.spec, f.function) for fid, f in self.functions.items()},
            removal_policy=removal,
            log_retention_days=settings.log_retention_days,
            key_arn=data.key_arn,
        ).filters

        queues = dict(self.queues.all)
        if self.notifications.subscription_dlq is not None:
            queues["EmailDlq"] = self.notifications.subscription_dlq
        self.alarms = FailureAlarms(
            self,
            "Alarms",
            topic=self.topic,
            queues=queues,
            functions=lambdas,
            rules={**rule_wiring.with_buses, **schedule_wiring.with_buses},
        ).alarms
        RetrainingDashboard(
            self,
            "Dashboard",
            deployment=deployment,
            job_prefix=job_prefix(deployment),
            metric_name=validation_metric_name(settings),
            judging_logs=[self.functions[spec.function_id].log_group
                          for spec in (METRIC_LINE_JUDGE, DIVERGENCE_MONITOR)],
            functions=lambdas,
            queues=queues,
        )
