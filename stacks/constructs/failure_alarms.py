"""Alarms that tell operators when something lands in a failure queue, a function errors, or a rule
fails to deliver."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
# EventBridge's metrics of a rule's deliveries (AWS/Events; "Monitoring Amazon EventBridge",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html): FailedInvocations,
# "invocations that failed permanently", not counting those in DeadLetterInvocations; and
# InvocationsFailedToBeSentToDlq, failed invocations that could not be moved to the rule target's
# dead-letter queue ("permissions errors, unavailable resources, or size limits", a key policy that
# refuses EventBridge among them). Those that reached the DLQ raise its depth alarm instead. The doc:
# "Metrics that specify only the RuleName dimension refer to the default event bus. Metrics that
# specify both the EventBusName and RuleName dimensions refer to a custom event bus." EventBridge sends
# them only when non-zero, hence FILL(..., 0).
EVENTS_NAMESPACE = "AWS/Events"
RULE_DELIVERY_FAILURE_METRICS = ("FailedInvocations", "InvocationsFailedToBeSentToDlq")


def rule_delivery_failures(rule: events.IRule, bus_name: str | None) -> cloudwatch.MathExpression:
    """The sum of a rule's permanently failed invocations and of those its DLQ could not take."""
    dimensions = {"RuleName": rule.rule_name}
    if bus_name is not None:
        dimensions["EventBusName"] = bus_name
    metrics = {
        f"m{index}": cloudwatch.Metric(
            namespace=EVENTS_NAMESPACE, metric_name=name, dimensions_map=dimensions, statistic="Sum", period=PERIOD
        )
        for index, name in enumerate(RULE_DELIVERY_FAILURE_METRICS)
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({metric_id}, 0)" for metric_id in metrics),
        using_metrics=metrics,
        label="Failed deliveries",
        period=PERIOD,
    )


class FailureAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        rules: Mapping[str, tuple[events.IRule, str | None]],
    ) -> None:
        """``rules``: every rule with a target, with the name of its bus (None: the default bus)."""
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

        for rule_id, (rule, bus_name) in rules.items():
            self._alarm_on_any(
                f"{rule_id}RuleDeliveryFailures",
                f"The {rule_id} rule failed to deliver events to its target (and to its dead-letter queue); "
                "check the target's resource policy and its KMS key policy",
                rule_delivery_failures(rule, bus_name),
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
