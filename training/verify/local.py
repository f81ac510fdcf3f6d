"""``o2v verify --local``: the account is local mode, started as ``o2v demo`` starts it.

The one local deployment (:mod:`local_aws.deployment`) and the event pump come up through
:class:`training.demo.local_account.LocalAccount`, this process's boto3 is pointed at the local
services, and :class:`Target` names what the deployment created, as :func:`read_target` names
what the stacks did. From there every check is the real path's.
"""

from __future__ import annotations

from pathlib import Path

from o2v_core.resource_names import job_curve_table_name
from o2v_core.settings import Settings

from local_aws.deployment import LocalNames
from training.demo.local_account import LocalAccount
from training.demo.stack_outputs import stack_outputs
from training.verify.target import Target

# Local mode's stand-ins for the stacks' queues (the pump's on-failure queue plays every rule's and
# function's dead-letter queue; the witness queue is the WitnessAnnouncements rule's, as deployed).
LOCAL_WITNESS = "AnnouncementWitness"
LOCAL_DEAD_LETTERS = "DeadLetters (local: every rule's and function's)"


def start_local_account(run_dir: Path, settings: Settings, region: str,
                        minute_seconds: float = 1.0) -> tuple[LocalAccount, Target]:
    """Start local mode; the caller stops the account (also when this raises: ``account.stop()``)."""
    names = LocalNames(settings.deployment)
    account = LocalAccount(run_dir, region)
    try:
        account.start(settings, names, minute_seconds=minute_seconds)
    except BaseException:
        account.stop()
        raise
    assert account.pump is not None and account.deployment is not None
    account.pump.start()
    config = account.pump.config  # with the witness queue's URL
    target = Target(
        deployment=settings.deployment, region=region,
        launch=stack_outputs(names, settings, account.deployment.training_role_arn),
        topic_arn=config.notification_topic_arn, endpoint_name=names.endpoint,
        serving_parameter=names.serving_parameter, curve_table=job_curve_table_name(settings.deployment),
        queues={LOCAL_WITNESS: config.announcement_witness_queue_url or "", LOCAL_DEAD_LETTERS: account.pump.dlq_url},
        local=True, origin="local mode (local_aws.deployment, the one local deployment)",
    )
    return account, target
