"""Stop a diverged job, or let it finish? ``o2v_core.early_stopping.choose_stop`` with Object2Vec's
own early-stopping rule (reference section 10c: bad unless 'tolerance' below the previous
'patience' epochs' minimum; stop when the bad count exceeds the patience)."""

from __future__ import annotations

from o2v_core.early_stopping import choose_stop, epochs_until_own_stop

# Best at epoch 1, then only worse: bad epochs 2, 3, 4, 5 (count 4).
RISING = [1.0, 0.8, 0.85, 0.9, 0.95, 1.0]


def test_the_fewest_epochs_until_the_job_ends_on_its_own() -> None:
    assert epochs_until_own_stop(RISING, patience=5, tolerance=0.01, epochs=30) == 2  # count must reach 6
    assert epochs_until_own_stop(RISING, patience=3, tolerance=0.01, epochs=30) == 0  # 4 > 3: already ended
    assert epochs_until_own_stop(RISING, patience=5, tolerance=0.01, epochs=7) == 1  # the budget ends it first
    # A good epoch (0.79 is 0.06 below the window's minimum 0.85) resets the count: 6 more at least.
    assert epochs_until_own_stop([*RISING, 0.79], patience=5, tolerance=0.01, epochs=30) == 6


def test_a_job_is_stopped_only_when_more_than_the_limit_would_be_paid() -> None:
    finish = choose_stop(RISING, patience=5, tolerance=0.01, epochs=30, finish_within_epochs=2)
    assert not finish.stop and finish.epochs_saved == 0 and finish.epochs_to_own_stop == 2

    stop = choose_stop(RISING, patience=5, tolerance=0.01, epochs=30, finish_within_epochs=1)
    assert stop.stop and stop.epochs_saved == 2
    assert "at least 2 more epochs" in stop.reason

    # Nothing to save: its own rule already ended it, so it is never stopped, whatever the limit.
    assert not choose_stop(RISING, patience=3, tolerance=0.01, epochs=30, finish_within_epochs=0).stop


def test_stopping_off_never_stops() -> None:
    never = choose_stop([*RISING, 0.79], patience=5, tolerance=0.01, epochs=30, finish_within_epochs=None)
    assert not never.stop and never.epochs_to_own_stop == 6
