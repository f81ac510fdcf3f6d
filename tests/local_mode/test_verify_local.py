"""``o2v verify --local``: the acceptance run of a deployment, end to end against local mode.

The command runs as a user types it (``python -m training.cli verify --env dev --local --yes``)
in a subprocess with no AWS variables, so every check of the real path runs here on every change:
only the account differs. Then the test looks for what the run must have left behind: nothing (no
process of the run, every resource it created removed, as its clean-up lines say).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import processes_mentioning

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOOP_CHECKS = (
    "announcement subscriber", "dataset upload", "attempt 1", "the loop settles", "metric lines reach the judge",
    "divergence detected, attempt 2 with more dropout", "promotion of the best attempt",
    "endpoint serves the promoted model", "o2v embed --endpoint", "announcements reach the operators' topic",
    "witness and dead-letter queues",
)


def _verify(work: Path, *extra: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.Popen([sys.executable, "-m", "training.cli", "verify", "--env", "dev", "--local",
                             "--work-dir", str(work), *extra], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[int, str, Path]:
    work = tmp_path_factory.mktemp("verify")
    process = _verify(work, "--yes", "--data", str(shared_data / "stsbenchmark"))
    output, _ = process.communicate(timeout=280)
    return process.returncode, output, work


def _line(output: str, check: str) -> str:
    found = [line for line in output.splitlines() if f" {check}: " in line]
    assert found, f"no line for check {check!r}:\n{output}"
    return found[0]


def test_every_loop_check_passes_against_local_mode(verified: tuple[int, str, Path]) -> None:
    code, output, _ = verified
    assert code == 0, output
    for check in LOOP_CHECKS:
        assert _line(output, check).startswith("passed "), output
    assert "11 passed, 0 failed, 8 could not tell" in output


def test_each_point_only_a_real_account_settles_says_so_in_local_mode(verified: tuple[int, str, Path]) -> None:
    from training.verify.account_checks import POINTS

    _, output, _ = verified
    for point in POINTS:
        line = _line(output, point.name)
        assert line.startswith("could not tell ") and ": local mode: " in line, line
    rollback = _line(output, "blue/green rollback on a tripped alarm")
    assert "the local SageMaker API does not bake an update or evaluate its rollback alarms" in rollback


def test_the_plan_comes_before_anything_is_created_and_names_types_and_bounds(verified: tuple[int, str, Path]) -> None:
    _, output, _ = verified
    plan = output.index("It will create")
    assert plan < output.index(" announcement subscriber: ")
    head = output[:output.index(" announcement subscriber: ")]
    assert "on ml.m5.2xlarge" in head and "1 x ml.m5.large" in head
    assert "In an account the same run would use at most" in head
    assert "training instance-hours" in head and "minutes" in head
    assert "no rollback candidate: local mode evaluates no alarm" in head  # an account's run makes one


def test_attempt_2_has_more_dropout_and_the_embeddings_have_enc_dim_values(verified: tuple[int, str, Path]) -> None:
    _, output, _ = verified
    assert "dropout 0.0 -> 0.1" in _line(output, "divergence detected, attempt 2 with more dropout")
    assert "2 sentences -> 32 values each" in _line(output, "o2v embed --endpoint")


def test_the_run_removes_what_it_created_and_stops_every_process(verified: tuple[int, str, Path]) -> None:
    _, output, work = verified
    cleanup = next(line for line in output.splitlines() if line.startswith("clean-up: removed"))
    for what in ("SNS subscription", "SQS queue", "under s3://o2v-dev-datasets-local/datasets/verify-",
                 "served-model record", "endpoint o2v-dev-embeddings", "endpoint config", "model "):
        assert what in cleanup, cleanup
    assert "every local process stopped" in output
    assert processes_mentioning(str(work)) == []


def test_without_yes_and_no_answer_nothing_is_created(tmp_path: Path, shared_data: Path) -> None:
    process = _verify(tmp_path, "--data", str(shared_data / "stsbenchmark"))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2, output
    assert "not confirmed; nothing was created" in output
    assert " announcement subscriber: " not in output


def test_ctrl_c_stops_the_run_cleans_up_and_exits_130(tmp_path: Path, shared_data: Path) -> None:
    process = _verify(tmp_path, "--yes", "--data", str(shared_data / "stsbenchmark"))
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if " attempt 1: " in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    output = "".join(lines) + rest
    assert process.returncode == 130, output
    assert "interrupted by Ctrl-C (SIGINT)" in output
    cleanup = next(line for line in output.splitlines() if line.startswith("clean-up: removed"))
    assert "SQS queue" in cleanup and "datasets/verify-" in cleanup
    assert processes_mentioning(str(tmp_path)) == []
