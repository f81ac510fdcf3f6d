"""``o2v demo`` interrupted: the clean-up is not cut short, the run directory says what happened,
and the local log forwarder never sends an event CloudWatch Logs refuses."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_aws.clients import Clients, LogForwarder
from training.demo import Console, Demo, DemoOptions, run_demo


def test_the_log_forwarder_never_sends_an_empty_message(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    # botocore's model for PutLogEvents: InputLogEvent.message is an EventMessage with "min": 1,
    # so one blank line made the whole batch fail and every line in it was lost.
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=moto_endpoint, region_name="us-east-1",  # type: ignore[call-overload]
                            aws_access_key_id="x", aws_secret_access_key="x")

    clients = Clients(s3=client("s3"), logs=client("logs"), cloudwatch=client("cloudwatch"),
                      events=client("events"), account="123456789012", region="us-east-1")
    forwarder = LogForwarder(clients, "/aws/sagemaker/TrainingJobs", "job/algo-1", interval=60)
    for line in ("epoch 1", "", "epoch 2", ""):
        forwarder.add(line)
    forwarder.close()
    events = clients.logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="job/algo-1",
                                         startFromHead=True)["events"]
    assert [event["message"] for event in events] == ["epoch 1", "epoch 2"]
    assert "could not put" not in capsys.readouterr().err


class _FinishedDemo(Demo):
    """A demo whose run has succeeded; its clean-up receives SIGTERM halfway (as after a Ctrl-C
    in a terminal whose shell then terminates the process group). The real run_demo drives it."""

    def __init__(self, options: DemoOptions) -> None:
        super().__init__(options)
        self.cleanup_steps: list[str] = []

    def run(self) -> int:
        return 0

    def stop(self) -> list[int]:
        self.cleanup_steps.append("pump stopped")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the signal is handled here, between two steps of the clean-up
        self.cleanup_steps.append("services stopped")
        return []


def test_sigterm_during_cleanup_neither_cuts_it_short_nor_turns_success_into_130(
    tmp_path: Path
) -> None:
    stream = io.StringIO()
    demo = _FinishedDemo(DemoOptions(runs_dir=tmp_path))
    demo.console = Console(stream)
    # What this process had before (another test of the same worker may have set its own handler).
    handler_before = signal.getsignal(signal.SIGTERM)
    assert run_demo(demo.options, demo) == 0
    assert demo.cleanup_steps == ["pump stopped", "services stopped"]
    out = stream.getvalue()
    assert "SIGTERM during the clean-up: finished it first" in out and "every local process stopped" in out
    assert signal.getsignal(signal.SIGTERM) == handler_before  # handlers are restored


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_interrupted_run_leaves_a_partial_report(shared_data: Path, tmp_path: Path, repo_root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(repo_root / "lambdas")])}
    runs = tmp_path / "runs"
    output = (tmp_path / "demo.out").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "training.demo", "--size", "quick", "--runs-dir", str(runs),
         "--data", str(shared_data / "stsbenchmark")],
        cwd=repo_root, env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        output.seek(0)
        if "services " in output.read():  # the local services are up: stage 2 or later
            break
        time.sleep(0.2)
    assert process.poll() is None, "the demo ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=90) == 130
    output.seek(0)
    log = output.read()
    output.close()
    assert "every local process stopped" in log, log[-3000:]
    (run_dir,) = [path for path in runs.iterdir() if path.is_dir()]
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# o2v demo: interrupted")
    assert "interrupted by SIGTERM" in report and "during stage **" in report
    assert "`data/`" in report  # what the run had written so far
    assert f"partial report (interrupted): {run_dir / 'report.md'}" in log
