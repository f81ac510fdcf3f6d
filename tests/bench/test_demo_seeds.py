"""The demo's seed study replays the deployed loop (cdk.json's detector, early stopping and retrain
policy) on recorded curves: here the default demo's seed-0 curves, as `make demo` printed them."""

from __future__ import annotations

import pytest

from bench.demo_seeds import Curves, NotRecorded, recipe_hyperparameters, replay

# Validation loss per epoch of the default demo's attempts (README.md's sample run, seed 0).
ATTEMPT_1 = [1.3891, 1.4007, 1.4562, 1.4847, 1.4692, 1.4485, 1.4631, 1.47, 1.48, 1.49, 1.5, 1.51]
ATTEMPT_2 = [1.4650, 1.5883, 1.4540, 1.4465, 1.4494, 1.3771, 1.3825, 1.3317, 1.3723, 1.3704, 1.3158, 1.3785]
# The default demo's recipe (standard size: 128-d, 12 epochs) on STS-B's prepared channels.
MANIFEST = {"enc0_max_seq_len": 40, "enc1_max_seq_len": 40, "enc0_vocab_size": 11473, "enc1_vocab_size": 11473}
HPS = recipe_hyperparameters({"dims": 128, "epochs": 12, "overrides": {}}, MANIFEST, 0.0)


def curves(dropout: float, validation: list[float]) -> Curves:
    return Curves(seed=0, dropout=dropout, validation=validation, spearman=[0.40 + dropout] * len(validation))


def test_the_replay_relaunches_the_diverged_attempt_1_with_more_dropout_and_stops_at_the_healthy_attempt_2() -> None:
    attempts = replay({0.0: curves(0.0, ATTEMPT_1), 0.1: curves(0.1, ATTEMPT_2)}, HPS)
    assert [a.dropout for a in attempts] == [0.0, 0.1]
    assert attempts[0].diverged and attempts[0].best_epoch == 0
    assert not attempts[1].diverged and attempts[1].best_value == pytest.approx(1.3158)


def test_the_replay_asks_for_the_curve_the_loop_reaches_next() -> None:
    with pytest.raises(NotRecorded) as missing:
        replay({0.0: curves(0.0, ATTEMPT_1)}, HPS)
    assert missing.value.dropout == 0.1


def test_the_demos_attempt_1_is_found_when_it_ends_not_in_flight() -> None:
    # The rise hovers at the judge's 5% bar: no prefix diverges, the finished-job evaluator does.
    attempts = replay({0.0: curves(0.0, ATTEMPT_1), 0.1: curves(0.1, ATTEMPT_2)}, HPS)
    assert attempts[0].diverged and not attempts[0].in_flight


def test_a_rise_the_judge_sees_before_the_job_ends_is_found_in_flight() -> None:
    sharp = [1.30, 1.32, 1.45, 1.47, 1.48, 1.50, 1.52, 1.53, 1.54, 1.55, 1.56, 1.57]
    attempts = replay({0.0: curves(0.0, sharp), 0.1: curves(0.1, ATTEMPT_2)}, HPS)
    assert attempts[0].diverged and attempts[0].in_flight


def test_the_replay_stops_a_lineage_whose_relaunch_did_not_help_as_the_launcher_does() -> None:
    # cdk.json's on_no_improvement is "stop": attempt 2 diverged without beating attempt 1, so
    # the launcher starts no attempt 3 (and the replay must not ask for dropout 0.2's curve).
    worse = [1.50, 1.52, 1.65, 1.67, 1.68, 1.70, 1.72, 1.73, 1.74, 1.75, 1.76, 1.77]  # diverges, best 1.50
    attempts = replay({0.0: curves(0.0, ATTEMPT_1), 0.1: curves(0.1, worse)}, HPS)
    assert [a.dropout for a in attempts] == [0.0, 0.1]
    assert attempts[1].diverged
