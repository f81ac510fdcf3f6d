"""EventBridge rules from o2v_core.events.rules(): patterns, buses and targets are never retyped.

Each stack wires the specs whose target it owns; the app checks that every spec is wired once.
Rule targets retry and then dead-letter into the stack's rule-target DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from o2v_core.events import RuleSpec
from o2v_core.functions import FunctionSpec

NOTIFICATIONS = "notifications"
TARGET_RETRY_ATTEMPTS = 8
TARGET_MAX_EVENT_AGE = Duration.hours(2)


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """The spec's pattern as CDK's EventPattern (top-level keys use '_' for '-'); rendered back unchanged."""
    return events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()})


def function_target(function: lambda_.IFunction, dlq: sqs.IQueue) -> events.IRuleTarget:
    return targets.LambdaFunction(
        function, dead_letter_queue=dlq, retry_attempts=TARGET_RETRY_ATTEMPTS, max_event_age=TARGET_MAX_EVENT_AGE
    )


def queue_target(scope: Construct, queue: sqs.IQueue, dlq: sqs.IQueue) -> events.IRuleTarget:
    """A queue a function reads itself (the announcement witness), as a rule target.

    For a KMS-encrypted queue ``targets.SqsQueue`` allows ``events.amazonaws.com`` on the account
    only (aws:SourceAccount). It is handed a reference to the queue instead (on which CDK adds no
    policy), and :func:`allow_rule_to_send` allows exactly this rule, as for the topic. The
    queue's key already lets EventBridge encrypt (stacks/constructs/data_key.py).
    """
    reference = sqs.Queue.from_queue_attributes(
        scope, "QueueRef", queue_arn=queue.queue_arn, queue_url=queue.queue_url
    )
    return targets.SqsQueue(
        reference, dead_letter_queue=dlq, retry_attempts=TARGET_RETRY_ATTEMPTS, max_event_age=TARGET_MAX_EVENT_AGE
    )


def allow_rule_to_send(queue: sqs.IQueue, rule: events.Rule, sid: str) -> None:
    """Confused-deputy guard: EventBridge may send for this rule of this account only
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions)."""
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnEquals": {"aws:SourceArn": rule.rule_arn},
            },
        )
    )


def topic_target(scope: Construct, topic: sns.ITopic, dlq: sqs.IQueue) -> events.IRuleTarget:
    """The topic as a rule target, without CDK's own unconditioned topic-policy statement.

    ``targets.SnsTopic`` grants ``events.amazonaws.com`` sns:Publish with no source condition:
    any EventBridge rule of any account could then publish. It is handed a reference to the topic
    by ARN instead (on which CDK adds no policy); :func:`allow_rule_to_publish` then allows exactly
    this rule of this account.
    """
    reference = sns.Topic.from_topic_arn(scope, "TopicRef", topic.topic_arn)
    return targets.SnsTopic(
        reference, dead_letter_queue=dlq, retry_attempts=TARGET_RETRY_ATTEMPTS, max_event_age=TARGET_MAX_EVENT_AGE
    )


def allow_rule_to_publish(topic: sns.ITopic, rule: events.Rule, sid: str) -> None:
    """Confused-deputy guard: EventBridge may publish for this rule of this account only
    (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html, aws:SourceArn)."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnEquals": {"aws:SourceArn": rule.rule_arn},
            },
        )
    )


class EventRules(Construct):
    """One rule per spec whose target this stack owns: a function in ``functions``, a queue in
    ``queues``, or the topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: list[RuleSpec],
        project_bus: events.IEventBus,
        functions: Mapping[str, lambda_.IFunction],
        topic: sns.ITopic | None,
        dlq: sqs.IQueue,
        queues: Mapping[str, sqs.IQueue] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        # The name of each rule's bus, None for the account's default bus (its metrics' dimensions).
        self.bus_names: dict[str, str | None] = {}
        for spec in specs:
            if spec.target == NOTIFICATIONS and topic is not None:
                target = topic_target(Construct(self, f"{spec.rule_id}Target"), topic, dlq)
            elif spec.target in functions:
                target = function_target(functions[spec.target], dlq)
            elif queues and spec.target in queues:
                target = queue_target(Construct(self, f"{spec.rule_id}Target"), queues[spec.target], dlq)
            else:
                continue  # wired by the stack that owns this target
            self.rules[spec.rule_id] = events.Rule(
                self,
                spec.rule_id,
                description=spec.description,
                event_bus=project_bus if spec.bus == "project" else None,  # None: the account's default bus
                event_pattern=event_pattern(spec.pattern),
                targets=[target],
            )
            self.bus_names[spec.rule_id] = project_bus.event_bus_name if spec.bus == "project" else None
            if spec.target == NOTIFICATIONS and topic is not None:
                allow_rule_to_publish(topic, self.rules[spec.rule_id], sid=f"AllowRule{spec.rule_id}")
            if queues and spec.target in queues:
                allow_rule_to_send(queues[spec.target], self.rules[spec.rule_id], sid=f"AllowRule{spec.rule_id}")

    @property
    def with_buses(self) -> dict[str, tuple[events.IRule, str | None]]:
        """Each rule with the name of its bus (None: the account's default bus)."""
        return {rule_id: (rule, self.bus_names[rule_id]) for rule_id, rule in self.rules.items()}


class ScheduledFunctions(Construct):
    """A rule on the default bus for each function spec that runs on a schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, tuple[FunctionSpec, lambda_.IFunction]],
        dlq: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for function_id, (spec, function) in functions.items():
            if spec.schedule is None:
                continue
            self.rules[function_id] = events.Rule(
                self,
                function_id,
                description=f"Run {function_id} on its schedule: {spec.description}"[:512],
                schedule=events.Schedule.expression(spec.schedule),
                targets=[function_target(function, dlq)],
            )

    @property
    def with_buses(self) -> dict[str, tuple[events.IRule, str | None]]:
        """Each rule with its bus name (scheduled rules are on the default bus: None)."""
        return {function_id: (rule, None) for function_id, rule in self.rules.items()}
