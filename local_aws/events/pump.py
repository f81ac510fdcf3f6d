"""The event pump: EventBridge rules -> Lambda handlers, on the local services.

Set-up (:meth:`EventPump.setup`), on the local moto EventBridge:

* the project bus (``ControlPlaneConfig.event_bus_name``) next to the default bus;
* one rule per :class:`o2v_core.events.RuleSpec` of ``rules(deployment)``, on the bus and with
  the pattern the CDK stacks deploy, each delivering to an SQS queue
  (:func:`local_aws.deployment.wire_control_plane`, the wiring the tests and the bench use too,
  which also creates the metric-line judge's curve store table);
* one dead-letter queue.

Running (:meth:`EventPump.start`): one thread per rule long-polls its queue. A message for a
Lambda target goes to that function's warm worker process
(:mod:`local_aws.awslambda.runtime` and ``worker``, the handler imported by its dotted path in
:data:`o2v_core.functions.FUNCTIONS`), with the function's timeout. A failed invocation is
retried twice, as Lambda retries asynchronous invocations (delays compressed), then moved to
the dead-letter queue with the error, and reported: never dropped. A message for the
``notifications`` target is printed and published to the local SNS topic the stacks subscribe
operators to. The announcement witness's queue (``WitnessAnnouncements``) is not delivered
anywhere: the reconciler reads it itself, as in AWS, and its URL goes into the functions' config.
One thread per scheduled function fires its schedule with EventBridge's "Scheduled
Event", compressed to ``minute_seconds`` per minute (the monitor's ``rate(10 minutes)`` every 10 s
by default). One thread per function with a log subscription plays CloudWatch Logs' part
(:mod:`local_aws.logs.subscription`): it hands the function each stream's new matching lines
in the documented Base64 GZIP JSON payload, with the same asynchronous retries and dead-letter queue.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from o2v_core.events import ANNOUNCEMENT_WITNESS
from o2v_core.functions import FUNCTIONS, FunctionSpec
from o2v_core.log_subscription import encode
from o2v_core.runtime_config import ControlPlaneConfig

from local_aws.awslambda.runtime import LambdaFunction, function_name
from local_aws.clients import Clients
from local_aws.deployment import wire_control_plane
from local_aws.events.rules import RuleRoute
from local_aws.logs.subscription import SubscriptionReader

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

NOTIFICATIONS = "notifications"
SCHEDULE = "Schedule"
SUBSCRIPTION = "Subscription"
SCHEDULED_FUNCTIONS = tuple(spec for spec in FUNCTIONS if spec.schedule)
SUBSCRIBED_FUNCTIONS = tuple(spec for spec in FUNCTIONS if spec.subscription)


def rate_minutes(expression: str) -> float:
    """Minutes of an EventBridge ``rate(N minute|minutes|hour|hours)`` expression."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", expression)
    if match is None:
        raise ValueError(f"schedule {expression!r}: local mode knows rate(N minutes|hours) only")
    return float(match.group(1)) * (60 if match.group(2).startswith("hour") else 1)
# Lambda retries a failed asynchronous invocation twice (after about 1 and 2 minutes); compressed.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (3.0, 10.0)


@dataclass
class Delivery:
    """One event handled by the pump: which rule matched it, where it went, what came back."""

    rule_id: str
    target: str
    event: dict[str, Any]
    started: float
    finished: float = 0.0
    ok: bool = True
    attempts: int = 1
    result: Any = None
    error: str | None = None
    dead_lettered: bool = False
    log_stream: str | None = None  # a subscription delivery: the stream its lines came from
    first_line_ms: int | None = None  # ... and the timestamp of its first line

    def as_dict(self) -> dict[str, Any]:
        found = {
            "ruleId": self.rule_id, "target": self.target, "started": self.started, "finished": self.finished,
            "ok": self.ok, "attempts": self.attempts, "result": self.result, "error": self.error,
            "deadLettered": self.dead_lettered, "detailType": self.event.get("detail-type"),
            "source": self.event.get("source"), "detail": self.event.get("detail"),
        }
        if self.log_stream is not None:
            found.update(logStream=self.log_stream, firstLineMs=self.first_line_ms)
        return found


@dataclass
class PumpState:
    deliveries: list[Delivery] = field(default_factory=list)
    in_flight: int = 0


class EventPump:
    """Creates the rules on the local EventBridge and delivers what they match; see the module doc."""

    def __init__(
        self,
        config: ControlPlaneConfig,
        *,
        env: Mapping[str, str],
        clients: Clients,
        sqs: SQSClient,
        events: EventBridgeClient,
        sns: SNSClient,
        run_dir: Path,
        minute_seconds: float = 1.0,
        subscription_poll_seconds: float = 0.25,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        on_delivery: Callable[[Delivery], None] | None = None,
        on_handler_log: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.env = dict(env)
        self.clients = clients
        self.sqs = sqs
        self.events = events
        self.sns = sns
        self.run_dir = run_dir
        self.minute_seconds = minute_seconds
        self.subscription_poll_seconds = subscription_poll_seconds
        self.readers: list[SubscriptionReader] = []
        self.retry_delays = tuple(retry_delays)
        self.on_delivery = on_delivery
        self.on_handler_log = on_handler_log
        self.routes: list[RuleRoute] = []
        self.functions: dict[str, LambdaFunction] = {}
        self.dlq_url = ""
        self.state = PumpState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._journal = (run_dir / "events.jsonl").open("a", encoding="utf-8")

    # -- set-up

    def setup(self) -> None:
        config = self.config
        deployment = config.deployment
        self.dlq_url = self.sqs.create_queue(QueueName=f"{deployment}-local-dead-letters")["QueueUrl"]
        # The judge's curve store, the bus and the rules, as the stack has them.
        for route in wire_control_plane(self.events, self.sqs, boto3.client("dynamodb"), deployment,
                                        config.event_bus_name):
            if route.spec.target == ANNOUNCEMENT_WITNESS:
                # Not delivered to a function: the reconciler reads this queue itself, as in AWS.
                self.config = replace(self.config, announcement_witness_queue_url=route.queue_url)
                continue
            self.routes.append(route)
        # Each schedule exists as a rule too (moto does not fire schedules; the pump does).
        for scheduled in SCHEDULED_FUNCTIONS:
            self.events.put_rule(Name=self._schedule_rule_name(scheduled), ScheduleExpression=str(scheduled.schedule),
                                 State="ENABLED", Description=scheduled.description)
        for subscribed in SUBSCRIBED_FUNCTIONS:
            reader = SubscriptionReader(subscribed, deployment, self.clients.logs, self.clients.account)
            reader.ensure_log_group()
            self.readers.append(reader)
        log_dir = self.run_dir / "logs" / "lambda"
        log_dir.mkdir(parents=True, exist_ok=True)
        for function in FUNCTIONS:
            name = function_name(deployment, function)
            env = {
                **self.env,
                **function.environment(self.config),  # with the witness queue URL
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "_HANDLER": function.handler,
                "AWS_SDK_UA_APP_ID": function.function_id,  # shows in the local SageMaker API's call log
                "LOCAL_LAMBDA_ACCOUNT_ID": self.clients.account,
                "POWERTOOLS_SERVICE_NAME": name,
                "PYTHONUNBUFFERED": "1",
            }
            self.functions[function.function_id] = LambdaFunction(function, env, self.clients, log_dir,
                                                                  self.on_handler_log)

    def _schedule_rule_name(self, spec: FunctionSpec) -> str:
        return f"{self.config.deployment}-{spec.function_id}-schedule"

    def _interval(self, spec: FunctionSpec) -> float:
        """The schedule compressed: ``minute_seconds`` per minute of the expression."""
        return self.minute_seconds * rate_minutes(str(spec.schedule))

    # -- running

    def start(self) -> None:
        for function in self.functions.values():
            function.start()
        for route in self.routes:
            thread = threading.Thread(target=self._poll, args=(route,), name=f"pump:{route.spec.rule_id}", daemon=True)
            self._threads.append(thread)
        for scheduled in SCHEDULED_FUNCTIONS:
            self._threads.append(threading.Thread(target=self._schedule, args=(scheduled,),
                                                  name=f"pump:schedule:{scheduled.function_id}", daemon=True))
        for reader in self.readers:
            self._threads.append(threading.Thread(target=self._subscription, args=(reader,),
                                                  name=f"pump:subscription:{reader.spec.function_id}", daemon=True))
        for thread in self._threads:
            thread.start()

    def _poll(self, route: RuleRoute) -> None:
        while not self._stop.is_set():
            try:
                answer = self.sqs.receive_message(QueueUrl=route.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
            except Exception as error:
                if self._stop.is_set():
                    return
                print(f"event pump: cannot read {route.queue_url}: {error}", file=sys.stderr)
                time.sleep(1)
                continue
            for message in answer.get("Messages", []):
                with self._lock:
                    self.state.in_flight += 1
                try:
                    self._deliver(route, message)
                finally:
                    with self._lock:
                        self.state.in_flight -= 1

    def _deliver(self, route: RuleRoute, message: Mapping[str, Any]) -> None:
        event = json.loads(message["Body"])
        delivery = Delivery(route.spec.rule_id, route.spec.target, event, time.time())
        if route.spec.target == NOTIFICATIONS:
            self._notify(delivery)
        else:
            self._invoke(self.functions[route.spec.target], delivery)
        if not delivery.ok:
            self._dead_letter(delivery, message["Body"])
        self.sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self._record(delivery)

    def _invoke(self, function: LambdaFunction, delivery: Delivery) -> None:
        delays = (0.0, *self.retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay and self._stop.wait(delay):
                break
            reply = function.invoke(delivery.event)
            delivery.attempts = attempt
            if reply.get("ok"):
                delivery.ok, delivery.result, delivery.error = True, reply.get("result"), None
                break
            delivery.ok = False
            delivery.error = f"{reply.get('errorType')}: {reply.get('errorMessage')}"
        delivery.finished = time.time()

    def _notify(self, delivery: Delivery) -> None:
        try:
            self.sns.publish(TopicArn=self.config.notification_topic_arn,
                             Subject=str(delivery.event.get("detail-type", "notification"))[:100],
                             Message=json.dumps(delivery.event))
            delivery.result = "published to " + self.config.notification_topic_arn
        except Exception as error:
            delivery.ok, delivery.error = False, f"{type(error).__name__}: {error}"
        delivery.finished = time.time()

    def _dead_letter(self, delivery: Delivery, body: str) -> None:
        delivery.dead_lettered = True
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=body, MessageAttributes={
            "RuleId": {"DataType": "String", "StringValue": delivery.rule_id},
            "Target": {"DataType": "String", "StringValue": delivery.target},
            "ErrorMessage": {"DataType": "String", "StringValue": (delivery.error or "unknown")[:4000]},
        })

    def _schedule(self, spec: FunctionSpec) -> None:
        rule_arn = (f"arn:aws:events:{self.clients.region}:{self.clients.account}:rule/"
                    f"{self._schedule_rule_name(spec)}")
        function = self.functions[spec.function_id]
        interval = self._interval(spec)
        next_fire = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_fire - time.monotonic())):
            next_fire = time.monotonic() + interval
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                "account": self.clients.account, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.clients.region, "resources": [rule_arn], "detail": {},
            }
            delivery = Delivery(SCHEDULE, spec.function_id, event, time.time())
            self._invoke_once(function, delivery)
            if not delivery.ok:
                self._dead_letter(delivery, json.dumps(event))
            self._record(delivery)

    def _subscription(self, reader: SubscriptionReader) -> None:
        function = self.functions[reader.spec.function_id]
        while not self._stop.wait(self.subscription_poll_seconds):
            with self._lock:
                self.state.in_flight += 1  # lines read but not yet handed over count as work
            try:
                try:
                    batches = reader.read()
                except Exception as error:
                    if self._stop.is_set():
                        return
                    print(f"event pump: cannot read {reader.subscription.log_group}: {error}", file=sys.stderr)
                    continue
                for batch in batches:
                    event = encode(batch)
                    delivery = Delivery(SUBSCRIPTION, reader.spec.function_id, event, time.time(),
                                        log_stream=batch.log_stream,
                                        first_line_ms=min(e.timestamp for e in batch.log_events))
                    self._invoke(function, delivery)
                    if not delivery.ok:
                        self._dead_letter(delivery, json.dumps(event))
                    self._record(delivery)
            finally:
                with self._lock:
                    self.state.in_flight -= 1

    def _invoke_once(self, function: LambdaFunction, delivery: Delivery) -> None:
        reply = function.invoke(delivery.event)
        delivery.ok = bool(reply.get("ok"))
        delivery.result = reply.get("result")
        delivery.error = None if delivery.ok else f"{reply.get('errorType')}: {reply.get('errorMessage')}"
        delivery.finished = time.time()

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.state.deliveries.append(delivery)
            self._journal.write(json.dumps(delivery.as_dict(), default=str) + "\n")
            self._journal.flush()
        if self.on_delivery is not None:
            self.on_delivery(delivery)

    # -- status

    def idle(self) -> bool:
        """No event waiting in any rule's queue and none being handled (the schedule aside)."""
        with self._lock:
            if self.state.in_flight:
                return False
        for route in self.routes:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=route.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attributes.get("ApproximateNumberOfMessages", "0")) or int(
                    attributes.get("ApproximateNumberOfMessagesNotVisible", "0")):
                return False
        with self._lock:
            return self.state.in_flight == 0

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.state.deliveries)

    def process_groups(self) -> list[int]:
        return [function.process.pid for function in self.functions.values() if function.process is not None]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for function in self.functions.values():
            function.stop()
        with self._lock:
            if not self._journal.closed:
                self._journal.close()
