"""The fault matrices skip only kills that leave the account as an earlier kill left it (tests/support/faults.py)."""

from __future__ import annotations

from tests.support.faults import MODES, fault_points

CALLS = ["DescribeEndpoint", "PutObject", "GetParameter", "PutEvents"]


def test_a_kill_before_a_call_is_the_kill_after_the_call_before_it() -> None:
    points = fault_points(CALLS, ("kill-before", "kill-after"), every_attempt=True)
    # Every attempt faulted: the retry's i-th call may differ, so read-only calls are not skipped.
    assert points == [(0, "kill-before"), (0, "kill-after"), (1, "kill-after"), (2, "kill-after"),
                      (3, "kill-after")]


def test_with_one_faulted_attempt_kills_and_errors_after_a_read_only_call_are_skipped() -> None:
    points = fault_points(CALLS, MODES)
    kills = [point for point in points if point[1].startswith("kill")]
    # States: nothing applied; PutObject applied; PutObject and PutEvents applied.
    assert kills == [(0, "kill-before"), (1, "kill-after"), (3, "kill-after")]
    # Errors: before every call; after a call only where it changed something.
    assert [point for point in points if point[1].startswith("error")] == [
        (0, "error-before"), (1, "error-before"), (1, "error-after"), (2, "error-before"), (3, "error-before"),
        (3, "error-after"),
    ]


def test_sqs_receive_message_is_not_read_only() -> None:
    """It hides the message it returns for the visibility timeout, so a kill after it differs."""
    assert fault_points(["ReceiveMessage"], ("kill-before", "kill-after")) == [(0, "kill-before"), (0, "kill-after")]
