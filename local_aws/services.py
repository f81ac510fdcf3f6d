"""Start and stop the local AWS stand-ins, and the environment that points boto3 at them.

Two child processes, each the leader of its own process group:

* the moto server (S3, EventBridge, SQS, DynamoDB, CloudWatch, Logs, SNS, SSM, IAM, STS),
  reached through ``AWS_ENDPOINT_URL``;
* the local SageMaker API (:mod:`local_aws.sagemaker.api`), reached through
  ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``; its training jobs
  and inference servers run inside its process group.

:meth:`LocalServices.stop` signals each group (SIGTERM, grace, SIGKILL), SageMaker first so that
jobs still reach the logs. It runs on ``stop()``, at interpreter exit (``atexit``), and
``o2v demo`` turns SIGTERM and SIGHUP into the same clean shutdown as Ctrl-C.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from local_aws import procs

DEFAULT_REGION = "us-east-1"
# Variables that would send boto3 somewhere other than the local services, or to real credentials.
_SCRUBBED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")


def aws_environment(base: Mapping[str, str], *, region: str, config_dir: Path,
                    endpoints: Mapping[str, str]) -> dict[str, str]:
    """``base`` with dummy credentials, ``region`` and the given ``AWS_ENDPOINT_URL*`` values.

    Any other ``AWS_ENDPOINT_URL_*`` and the user's AWS config files are hidden, so nothing
    can reach a real account by accident.
    """
    env = {key: value for key, value in base.items()
           if key not in _SCRUBBED and not key.startswith("AWS_ENDPOINT_URL")}
    env.update({
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": str(config_dir / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": ",".join(filter(None, [base.get("NO_PROXY", ""), procs.LOOPBACK, "localhost"])),
        "no_proxy": ",".join(filter(None, [base.get("no_proxy", ""), procs.LOOPBACK, "localhost"])),
    })
    env.update(endpoints)
    return env


@dataclass(frozen=True)
class Endpoints:
    moto: str
    sagemaker: str

    def variables(self) -> dict[str, str]:
        """The ``AWS_ENDPOINT_URL*`` settings that send every boto3 client to local services."""
        return {
            "AWS_ENDPOINT_URL": self.moto,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.sagemaker,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker,
        }


class LocalServices:
    """The local stand-ins for AWS, as child processes; use as a context manager."""

    def __init__(self, state_dir: Path, *, region: str = DEFAULT_REGION, stop_grace_seconds: float = 10.0,
                 ready_timeout: float = 60.0, threads: int = 1) -> None:
        self.state_dir = state_dir
        self.threads = threads
        self.region = region
        self.stop_grace_seconds = stop_grace_seconds
        self.ready_timeout = ready_timeout
        self.moto: subprocess.Popen[bytes] | None = None
        self.sagemaker: subprocess.Popen[bytes] | None = None
        self.endpoints: Endpoints | None = None
        self._registered = False

    # -- lifecycle

    def start(self) -> Endpoints:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        base = aws_environment(os.environ, region=self.region, config_dir=self.state_dir, endpoints={})
        base["PYTHONUNBUFFERED"] = "1"
        logs = self.state_dir / "logs"

        ready = self.state_dir / "moto.ready.json"
        ready.unlink(missing_ok=True)
        self.moto = procs.spawn_group_leader(
            [sys.executable, "-m", "local_aws.moto_server", "--ready-file", str(ready)],
            env=base, log_path=logs / "moto.log")
        moto_url = str(procs.wait_for_ready_file(ready, self.moto, what="the local moto server",
                                                 log_path=logs / "moto.log", timeout=self.ready_timeout)["url"])

        ready = self.state_dir / "sagemaker.ready.json"
        ready.unlink(missing_ok=True)
        env = {**base, "AWS_ENDPOINT_URL": moto_url}
        self.sagemaker = procs.spawn_group_leader(
            [sys.executable, "-m", "local_aws.sagemaker.api", "--state-dir",
             str(self.state_dir / "sagemaker"), "--ready-file", str(ready),
             "--stop-grace-seconds", str(self.stop_grace_seconds), "--threads", str(self.threads)],
            env=env, log_path=logs / "sagemaker.log")
        sagemaker_url = str(procs.wait_for_ready_file(ready, self.sagemaker, what="the local SageMaker API",
                                                      log_path=logs / "sagemaker.log",
                                                      timeout=self.ready_timeout)["url"])
        self.endpoints = Endpoints(moto=moto_url, sagemaker=sagemaker_url)
        return self.endpoints

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at the running services."""
        if self.endpoints is None:
            raise RuntimeError("the local services are not running")
        return aws_environment(os.environ if base is None else base, region=self.region, config_dir=self.state_dir,
                               endpoints=self.endpoints.variables())

    def process_groups(self) -> list[int]:
        """Process-group ids of the services (every local process of a run lives in one of them)."""
        return [process.pid for process in (self.sagemaker, self.moto) if process is not None]

    def stop(self) -> None:
        """Stop SageMaker (and with it every job and inference server), then moto. Idempotent."""
        for process in (self.sagemaker, self.moto):
            if process is not None:
                procs.stop_group(process, grace_seconds=self.stop_grace_seconds + 5)
        self.sagemaker = self.moto = None

    def __enter__(self) -> LocalServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
