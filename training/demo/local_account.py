"""The local "account": the local services, the local deployment and the event pump, started once.

``o2v demo`` and ``o2v verify --local`` both run the loop here: this module starts the services
(:class:`local_aws.services.LocalServices`), points this process's boto3 at them, creates what the
stacks would create (:func:`local_aws.deployment.deploy`) and sets up the event pump that plays
EventBridge, Lambda and the Logs subscription. The caller starts the pump once its own listeners
are in place, and :meth:`LocalAccount.stop` stops every process on every path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import boto3
from o2v_core.settings import Settings

from local_aws.deployment import LocalDeployment, LocalNames, deploy
from local_aws.events.pump import Delivery, EventPump
from local_aws.sagemaker.api import make_clients
from local_aws.services import Endpoints, LocalServices
from training.launcher.launch import training_image


class LocalAccount:
    """The local stand-ins for one run; :meth:`start`, then the caller's ``pump.start()``."""

    def __init__(self, run_dir: Path, region: str) -> None:
        self.run_dir = run_dir
        self.region = region
        # Created before anything starts, so that a failed start still stops what did start.
        self.services = LocalServices(run_dir / "services", region=region)
        self.pump: EventPump | None = None
        self.deployment: LocalDeployment | None = None

    def start(self, settings: Settings, names: LocalNames, *, minute_seconds: float = 1.0,
              on_delivery: Callable[[Delivery], None] | None = None,
              on_handler_log: Callable[[str, str], None] | None = None) -> Endpoints:
        """Start the services, point this process's boto3 at them, deploy and set up the pump."""
        endpoints = self.services.start()
        os.environ.update(self.services.environment())
        session = boto3.session.Session()
        self.deployment = deploy(session, settings, names, training_image(self.region))
        self.pump = EventPump(self.deployment.config, env=self.services.environment(), clients=make_clients(),
                              sqs=session.client("sqs"), events=session.client("events"),
                              sns=session.client("sns"), run_dir=self.run_dir, minute_seconds=minute_seconds,
                              on_delivery=on_delivery, on_handler_log=on_handler_log)
        self.pump.setup()
        return endpoints

    def process_groups(self) -> list[int]:
        """Process-group ids of every local process of the run (services, then the pump's workers)."""
        groups = list(self.services.process_groups())
        if self.pump is not None:
            groups += self.pump.process_groups()
        return groups

    def stop(self) -> None:
        """Stop the pump's workers, then the services (and with them every job and endpoint)."""
        if self.pump is not None:
            self.pump.stop()
        self.services.stop()
