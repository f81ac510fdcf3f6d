"""Alarms that tell operators when something lands in a failure queue or a function errors."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)


class FailureAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self._notify = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, queue in queues.items():
            self._alarm_on_any(
                f"{name}Depth",
                f"Messages wait in {name}: inspect them and redrive after fixing the cause",
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            )
        for function_id, function in functions.items():
            self._alarm_on_any(
                f"{function_id}Errors",
                f"The {function_id} function failed; its logs and the failure queues say why",
                function.metric_errors(period=PERIOD, statistic="Sum"),
            )

    def _alarm_on_any(self, alarm_id: str, description: str, metric: cloudwatch.IMetric) -> None:
        """One datapoint of 1 or more alarms and notifies: a failure is never a trend to wait for."""
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._notify)
        self.alarms[alarm_id] = alarm
