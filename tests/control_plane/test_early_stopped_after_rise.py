"""A job that Object2Vec's own early stopping ended after its validation loss rose is a reason to
retrain (and, Completed, a promotion candidate), even when the detector's patience never saw the
rise in flight: the detector's ``early_stopped_after_rise`` rule, applied by the finished-job
evaluator.

The curve is a recorded one (bench/results/results.json: ``stsb/pooled_embedding-64``, dropout 0,
seed 3), as far as its own early stopping (patience 5, tolerance 0.01, reference section 10c) ran it.
"""

from __future__ import annotations

import pytest
from control_plane.handlers import finished_job_evaluator
from o2v_core.detector import REASON_EARLY_STOPPED_AFTER_RISE, REASON_HEALTHY, DetectorConfig, detect
from o2v_core.early_stopping import ended_by_own_early_stopping
from o2v_core.events import VALIDATION_LOSS_DIVERGED

from tests.control_plane.test_finished_job_evaluator import finish
from tests.support.cloud import BASE_HYPERPARAMETERS, Cloud, epoch_lines, log_header
from tests.support.lambda_context import lambda_context

ENDED_AFTER_A_RISE = [1.463, 1.502, 1.352, 1.420, 1.420, 1.455, 1.483, 1.492, 1.508]
ENDED_ON_A_PLATEAU = [1.9, 1.5, 1.30, 1.31, 1.305, 1.32, 1.31, 1.315, 1.312]
PATIENCE, TOLERANCE, BUDGET = 5, 0.01, 16


def points(values: list[float]) -> list[tuple[int, float]]:
    return list(enumerate(values))


def test_the_rule_recognises_a_run_its_own_early_stopping_ended() -> None:
    # Best at epoch 2, then six epochs that do not beat the window minimum: the sixth bad epoch
    # exceeds patience 5 and ends the job at epoch 8 (10c); with a 9-epoch budget the budget ended it.
    assert ended_by_own_early_stopping(ENDED_AFTER_A_RISE, PATIENCE, TOLERANCE, BUDGET)
    assert not ended_by_own_early_stopping(ENDED_AFTER_A_RISE, PATIENCE, TOLERANCE, len(ENDED_AFTER_A_RISE))
    assert not ended_by_own_early_stopping(ENDED_AFTER_A_RISE[:-1], PATIENCE, TOLERANCE, BUDGET)


def test_a_rise_too_short_for_the_detectors_patience_fires_once_early_stopping_ended_the_job() -> None:
    in_flight = detect(points(ENDED_AFTER_A_RISE))
    assert in_flight.status == "healthy"  # the last 3 epochs are not all 5 % above the smoothed minimum

    finished = detect(points(ENDED_AFTER_A_RISE), ended_by_early_stopping=True)
    assert finished.diverged and finished.reason == REASON_EARLY_STOPPED_AFTER_RISE
    assert finished.detected_at_epoch == 8 and (finished.best_epoch, finished.best_value) == (2, 1.352)
    assert "median of epochs 3-8" in finished.explanation


def test_a_run_that_stopped_on_a_plateau_stays_healthy() -> None:
    assert ended_by_own_early_stopping(ENDED_ON_A_PLATEAU, PATIENCE, TOLERANCE, BUDGET)
    decision = detect(points(ENDED_ON_A_PLATEAU), ended_by_early_stopping=True)
    assert decision.status == "healthy" and decision.reason == REASON_HEALTHY


def test_the_bar_is_the_detectors_rise_bar() -> None:
    # median after the best: 1.483, +9.7 % over 1.352: fires at 5 %, not at 10 %
    strict = DetectorConfig(min_relative_rise=0.10)
    assert not detect(points(ENDED_AFTER_A_RISE), config=strict, ended_by_early_stopping=True).diverged


@pytest.mark.parametrize(("epochs", "retrains"), [(BUDGET, True), (len(ENDED_AFTER_A_RISE), False)],
                         ids=["ended-by-its-early-stopping", "ended-by-its-budget"])
def test_the_evaluator_retrains_a_job_its_own_early_stopping_ended_after_a_rise(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, epochs: int, retrains: bool
) -> None:
    cloud.use_config(monkeypatch)
    hyperparameters = {**BASE_HYPERPARAMETERS, "epochs": str(epochs), "early_stopping_patience": str(PATIENCE),
                       "early_stopping_tolerance": str(TOLERANCE)}
    job = cloud.create_job("stsb", status="Completed", hyperparameters=hyperparameters)
    curve = [(epoch, value, None) for epoch, value in enumerate(ENDED_AFTER_A_RISE)]
    cloud.write_log(job, log_header(job) + epoch_lines(curve, "mean_squared_error"))

    result = finished_job_evaluator.handler(finish(cloud, job), lambda_context())

    diverged = cloud.delivered("retrain_launcher")
    offered = cloud.delivered("promoter")
    assert len(offered) == 1 and offered[0]["detail"]["bestValue"] == 1.352  # a candidate either way
    if retrains:
        assert result["action"] == "diverged_candidate"
        assert [event["detail-type"] for event in diverged] == [VALIDATION_LOSS_DIVERGED]
        assert diverged[0]["detail"]["decision"]["reason"] == REASON_EARLY_STOPPED_AFTER_RISE
        assert offered[0]["detail"]["diverged"] is True
    else:  # its budget ended it: the detector's patience rule alone judges it, and it holds
        assert result["action"] == "succeeded" and diverged == []
        assert offered[0]["detail"]["diverged"] is False
