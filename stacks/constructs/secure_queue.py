"""KMS-encrypted, TLS-only SQS queues that end the control plane's retry chains."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge


def _kept_encrypted_queue(scope: Construct, key: kms.IKey) -> sqs.Queue:
    """KMS-encrypted with the data key, TLS only, messages kept 14 days (SQS's maximum)."""
    return sqs.Queue(
        scope,
        "Queue",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.hours(1),
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )


class FailureQueue(Construct):
    """Where events and invocations land after their last retry; kept 14 days for redrive."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, purpose: str) -> None:
        super().__init__(scope, construct_id)
        self.queue = _kept_encrypted_queue(self, key)
        reason = (
            f"This queue is itself the final stop ({purpose}); messages wait here for an operator to "
            "inspect and redrive them, so another dead-letter queue behind it would add nothing."
        )
        acknowledge(self.queue, "AwsSolutions-SQS3", reason)
        acknowledge(self.queue, "Serverless-SQSRedrivePolicy", reason)


class WitnessQueue(Construct):
    """The WitnessAnnouncements rule's queue: a copy of each operator announcement put, which the
    reconciler reads and deletes (control_plane.aws.announcements). Kept 14 days, longer than any
    reconciler outage it must bridge; undeliverable copies go to the rule-target DLQ."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.queue = _kept_encrypted_queue(self, key)
        reason = (
            "The reconciler reads this queue and deletes each message once its announcement is marked "
            "sent; a message it cannot handle stays and is read again on the next run (its error alarm "
            "fires), so a dead-letter queue behind it would only hide it."
        )
        acknowledge(self.queue, "AwsSolutions-SQS3", reason)
        acknowledge(self.queue, "Serverless-SQSRedrivePolicy", reason)


class ControlPlaneQueues(Construct):
    """The two failure queues of one stack's control plane."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.rule_target_dlq = FailureQueue(
            self, "RuleTargetDlq", key=key, purpose="dead-letter queue of every EventBridge rule target"
        ).queue
        self.async_failure_queue = FailureQueue(
            self, "AsyncFailureQueue", key=key, purpose="on-failure destination of every asynchronous invocation"
        ).queue

    @property
    def all(self) -> dict[str, sqs.IQueue]:
        return {"RuleTargetDlq": self.rule_target_dlq, "AsyncFailureQueue": self.async_failure_queue}
