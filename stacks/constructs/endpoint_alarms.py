"""Alarms on the embedding endpoint; a blue/green update rolls back when one fires."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

NAMESPACE = "AWS/SageMaker"


class EndpointAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        max_model_latency_ms: int,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}
        minute = Duration.minutes(1)
        self.server_errors = cloudwatch.Alarm(
            self,
            "Invocation5xxErrors",
            alarm_description=f"{endpoint_name} answers with 5xx errors; rolls a blue/green update back",
            metric=cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=minute,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency = cloudwatch.Alarm(
            self,
            "ModelLatency",
            alarm_description=f"{endpoint_name} model latency above {max_model_latency_ms} ms; rolls an update back",
            # ModelLatency is reported in microseconds.
            metric=cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name="ModelLatency",
                dimensions_map=dimensions,
                statistic="Average",
                period=minute,
            ),
            threshold=max_model_latency_ms * 1000,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in self.all:
            alarm.add_alarm_action(actions.SnsAction(topic))

    @property
    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        return (self.server_errors, self.latency)
