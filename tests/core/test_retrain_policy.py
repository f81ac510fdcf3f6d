"""The retrain policy: schedule, bounds, config errors, and properties over any valid parent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from o2v_core import hyperparameters
from o2v_core.config_check import ConfigFieldError
from o2v_core.hyperparameters import HyperparameterError
from o2v_core.retrain_policy import (
    MAX_DROPOUT_CAP,
    STOPPED_NO_IMPROVEMENT,
    Exhausted,
    LineageBest,
    RetrainPolicy,
)

PARENT = {"enc0_max_seq_len": "40", "enc0_vocab_size": "20000", "output_layer": "mean_squared_error",
          "dropout": "0.2", "epochs": "30", "_kvstore": "device"}


def test_defaults() -> None:
    policy = RetrainPolicy()
    assert (policy.max_attempts, policy.dropout_step, policy.dropout_cap) == (4, 0.1, 0.5)
    assert policy.weight_decay_step == 0.0


def test_only_dropout_changes_and_everything_else_is_the_parents_own_text() -> None:
    result = RetrainPolicy().next_hyperparameters(PARENT, 2)
    assert result == {**PARENT, "dropout": "0.3"}


def test_a_walk_through_a_lineage_reaches_the_cap_then_exhausts() -> None:
    policy = RetrainPolicy(max_attempts=10, dropout_step=0.15, dropout_cap=0.5)
    hps: dict[str, str] = dict(PARENT)
    seen = []
    for attempt in range(2, 11):
        outcome = policy.next_hyperparameters(hps, attempt)
        if isinstance(outcome, Exhausted):
            assert "dropout_cap=0.5" in outcome.reason
            break
        hps = outcome
        seen.append(hps["dropout"])
    assert seen == ["0.35", "0.5"]


def test_max_attempts_exhausts_before_anything_else() -> None:
    outcome = RetrainPolicy(max_attempts=4).next_hyperparameters(PARENT, 5)
    assert isinstance(outcome, Exhausted) and "max_attempts=4" in outcome.reason


def test_a_list_schedule_gives_each_retry_its_step_and_repeats_the_last() -> None:
    policy = RetrainPolicy(max_attempts=6, dropout_step=(0.05, 0.1), dropout_cap=0.9)
    assert [policy.step_for(attempt) for attempt in range(2, 7)] == [0.05, 0.1, 0.1, 0.1, 0.1]
    assert policy.next_hyperparameters({**PARENT, "dropout": "0.0"}, 2) == {**PARENT, "dropout": "0.05"}


def test_weight_decay_rises_when_configured_and_alone_once_dropout_is_capped() -> None:
    policy = RetrainPolicy(dropout_cap=0.3, weight_decay_step=0.001, weight_decay_cap=0.002)
    first = policy.next_hyperparameters({**PARENT, "dropout": "0.3"}, 2)
    assert first == {**PARENT, "dropout": "0.3", "weight_decay": "0.001"}
    assert isinstance(first, dict)
    second = policy.next_hyperparameters(first, 3)
    assert isinstance(second, dict) and second["weight_decay"] == "0.002"
    third = policy.next_hyperparameters(second, 4)
    assert isinstance(third, Exhausted) and "weight_decay 0.002 is at its cap" in third.reason


def test_a_parent_above_the_cap_is_never_lowered() -> None:
    outcome = RetrainPolicy(dropout_cap=0.5).next_hyperparameters({**PARENT, "dropout": "0.7"}, 2)
    assert isinstance(outcome, Exhausted)


def test_an_invalid_parent_is_an_error_naming_the_field() -> None:
    with pytest.raises(HyperparameterError, match=r"'dropout'.*parent job"):
        RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "lots"}, 2)
    with pytest.raises(HyperparameterError, match="'enc0_vocab_size'"):
        RetrainPolicy().next_hyperparameters({"enc0_max_seq_len": "40"}, 2)
    with pytest.raises(ValueError, match="attempt must be >= 2"):
        RetrainPolicy().next_hyperparameters(PARENT, 1)


def test_json_round_trip() -> None:
    policy = RetrainPolicy(max_attempts=5, dropout_step=(0.1, 0.2), dropout_cap=0.6, weight_decay_step=0.01,
                           weight_decay_cap=0.1)
    assert RetrainPolicy.from_json(policy.to_json()) == policy
    assert RetrainPolicy.from_json("") == RetrainPolicy()


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ('{"max_attempts": 0}', "max_attempts", "int in [1, 20]"),
        ('{"max_attempts": "4"}', "max_attempts", "int in [1, 20]"),
        ('{"dropout_step": 0}', "dropout_step", "number in (0, 1]"),
        ('{"dropout_step": [0.1, -0.1]}', "dropout_step[1]", "number in (0, 1]"),
        ('{"dropout_step": []}', "dropout_step", "1 to 20 steps"),
        ('{"dropout_cap": 1.0}', "dropout_cap", "number in (0, 0.95]"),
        ('{"weight_decay_step": 0.1}', "weight_decay_cap", "must be above 0"),
        ('{"weight_decay_cap": 20000}', "weight_decay_cap", "number in [0, 10000]"),
        ('{"dropout": 0.1}', "dropout", "known fields: max_attempts"),
    ],
)
def test_config_errors_name_the_field_and_range(text: str, field: str, allowed: str) -> None:
    with pytest.raises(ConfigFieldError) as raised:
        RetrainPolicy.from_json(text)
    assert raised.value.field == field and allowed in str(raised.value)
    assert str(raised.value).startswith(f"retrain policy field {field!r}")


# ---------------------------------------------------------------------------------------------
# Properties

policies = st.builds(
    RetrainPolicy,
    max_attempts=st.integers(1, 20),
    dropout_step=st.one_of(
        st.floats(0.001, 1.0),
        st.lists(st.floats(0.001, 1.0), min_size=1, max_size=5).map(tuple),
    ),
    dropout_cap=st.floats(0.001, MAX_DROPOUT_CAP),
    weight_decay_step=st.one_of(st.just(0.0), st.floats(0.0001, 10.0)),
    weight_decay_cap=st.floats(0.001, 10000.0),
)
parents = st.fixed_dictionaries(
    {"enc0_max_seq_len": st.integers(1, 5000).map(str), "enc0_vocab_size": st.integers(2, 3_000_000).map(str)},
    optional={
        "dropout": st.floats(0.0, 1.0).map(repr),
        "weight_decay": st.floats(0.0, 10000.0).map(repr),
        "output_layer": st.sampled_from(["softmax", "mean_squared_error"]),
        "mini_batch_size": st.integers(1, 10000).map(str),
    },
)


@given(policies, parents, st.integers(2, 25))
def test_dropout_never_decreases_never_exceeds_the_cap_and_the_result_is_valid(
    policy: RetrainPolicy, parent: dict[str, str], attempt: int
) -> None:
    outcome = policy.next_hyperparameters(parent, attempt)
    if isinstance(outcome, Exhausted):
        assert outcome.reason
        return
    assert attempt <= policy.max_attempts
    hyperparameters.validate(outcome)  # raises if invalid
    before = float(parent.get("dropout", 0.0))
    after = float(outcome.get("dropout", 0.0))
    assert after >= before
    assert after <= policy.dropout_cap or after == before
    wd_before, wd_after = float(parent.get("weight_decay", 0.0)), float(outcome.get("weight_decay", 0.0))
    assert wd_after >= wd_before
    assert wd_after <= policy.weight_decay_cap or wd_after == wd_before
    assert after > before or wd_after > wd_before  # a retry always adds regularization
    assert {key: value for key, value in outcome.items() if key not in ("dropout", "weight_decay")} == {
        key: value for key, value in parent.items() if key not in ("dropout", "weight_decay")
    }


@given(policies, parents)
def test_a_lineage_always_ends(policy: RetrainPolicy, parent: dict[str, str]) -> None:
    hps = parent
    for attempt in range(2, 30):
        outcome = policy.next_hyperparameters(hps, attempt)
        if isinstance(outcome, Exhausted):
            assert attempt <= policy.max_attempts + 1
            return
        hps = outcome
    raise AssertionError("the policy never exhausted")


# ---------------------------------------------------------------------------------------------
# A knob that stopped helping (issue 29)

BEST = {**PARENT, "dropout": "0.1"}


def _lineage(parent_best: float | None, best_before: float | None) -> LineageBest:
    return LineageBest(parent_best, best_before, "dev--l-a2", BEST)


def test_the_default_stops_a_lineage_whose_relaunch_did_not_beat_its_best() -> None:
    outcome = RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.39, 1.30))
    assert isinstance(outcome, Exhausted) and outcome.stopped_because == STOPPED_NO_IMPROVEMENT
    assert "attempt 3 (best 1.39) did not beat the lineage's best 1.3 (dev--l-a2)" in outcome.reason
    equal = RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.30, 1.30))
    assert isinstance(equal, Exhausted)  # no better is not better


def test_a_relaunch_that_helped_keeps_raising_the_knob() -> None:
    outcome = RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.25, 1.30))
    assert outcome == {**PARENT, "dropout": "0.3"}


def test_attempt_1_always_gets_a_relaunch_whatever_the_lineage_says() -> None:
    # after attempt 1 there is nothing to compare with (the demo's attempt 2 must start)
    outcome = RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "0.0"}, 2, _lineage(9.0, 1.0))
    assert outcome == {**PARENT, "dropout": "0.1"}


def test_unknown_values_raise_the_knob_as_before() -> None:
    for lineage in (None, _lineage(None, 1.3), _lineage(1.39, None)):
        assert RetrainPolicy().next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, lineage) == {
            **PARENT, "dropout": "0.3"}


def test_min_improvement_asks_for_a_relative_gain() -> None:
    policy = RetrainPolicy(min_improvement=0.01)
    assert isinstance(policy.next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.295, 1.30)), Exhausted)
    assert isinstance(policy.next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.28, 1.30)), dict)


def test_smaller_step_tries_half_a_step_above_the_best_once() -> None:
    policy = RetrainPolicy(max_attempts=6, on_no_improvement="smaller_step")
    first = policy.next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.39, 1.30))
    assert first == {**BEST, "dropout": "0.15"}
    assert isinstance(first, dict)
    again = policy.next_hyperparameters(first, 5, _lineage(1.35, 1.30))
    assert isinstance(again, Exhausted) and again.stopped_because == STOPPED_NO_IMPROVEMENT


def test_weight_decay_starts_from_the_best_once() -> None:
    policy = RetrainPolicy(max_attempts=6, on_no_improvement="weight_decay", weight_decay_step=0.001,
                           weight_decay_cap=0.01)
    first = policy.next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, _lineage(1.39, 1.30))
    assert first == {**BEST, "weight_decay": "0.001"}
    assert isinstance(first, dict)
    assert isinstance(policy.next_hyperparameters(first, 5, _lineage(1.35, 1.30)), Exhausted)
    # a normal retry under this choice raises dropout only: weight decay is kept for the switch
    assert policy.next_hyperparameters({**PARENT, "dropout": "0.0"}, 2) == {**PARENT, "dropout": "0.1"}


def test_without_the_best_jobs_settings_the_other_choices_stop() -> None:
    policy = RetrainPolicy(on_no_improvement="smaller_step")
    outcome = policy.next_hyperparameters({**PARENT, "dropout": "0.2"}, 4, LineageBest(1.39, 1.30))
    assert isinstance(outcome, Exhausted)


def test_lineage_best_after_counts_the_parent() -> None:
    assert LineageBest(1.25, 1.30, "a2").best_after("a3") == (1.25, "a3")
    assert LineageBest(1.39, 1.30, "a2").best_after("a3") == (1.30, "a2")
    assert LineageBest(1.43, None).best_after("a1") == (1.43, "a1")
    assert LineageBest(None, None).best_after("a1") == (None, None)


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"on_no_improvement": "pause"}, "on_no_improvement", "'pause' is not one of 'stop', 'weight_decay'"),
    ({"on_no_improvement": "weight_decay"}, "weight_decay_step", "must be above 0 when on_no_improvement"),
    ({"min_improvement": 0.9}, "min_improvement", "out of range"),
])
def test_bad_no_improvement_settings_name_the_field(data: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ConfigFieldError) as raised:
        RetrainPolicy.from_mapping(data)
    assert raised.value.field == field and message in str(raised.value)
