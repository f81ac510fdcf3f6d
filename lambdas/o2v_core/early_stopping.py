"""Object2Vec's early-stopping rule, as the real container applies it (reference section 10c).

Defined once: the local trainer applies it, the control plane predicts with it how many epochs a
diverged job would still pay before its own early stopping ends it, and the bench simulates it.
Standard library only.

At each epoch after the first, the watched loss (validation cross-entropy or mean squared error;
the training loss when there is no validation channel) is compared with the minimum of the
previous ``early_stopping_patience`` epochs' losses: a sliding window, so an old best can leave
it. The epoch is *bad* unless its loss is below that minimum by at least
``early_stopping_tolerance`` (an absolute difference). A good epoch resets the bad count.
Training stops when the bad count **exceeds** the patience: with patience 2 the real job
stopped on its third bad epoch in a row, three epochs after its best (section 10b).

The model kept is the best epoch over the whole run (the lowest loss), not the last good one
(section 10d: "Best model based on epoch M").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EarlyStoppingStep:
    """One epoch's check; ``window`` is empty on the first epoch (nothing to compare with)."""

    epoch: int
    loss: float
    window: tuple[float, ...]
    bad: bool
    bad_count: int
    stop: bool

    @property
    def window_min(self) -> float:
        return min(self.window) if self.window else math.inf

    @property
    def difference(self) -> float:
        """The ``absolute loss difference`` the container prints."""
        return abs(self.loss - self.window_min) if self.window else 0.0


@dataclass
class EarlyStopping:
    patience: int
    tolerance: float
    losses: list[float] = field(default_factory=list)
    bad_count: int = 0
    best_epoch: int = -1

    @property
    def best_loss(self) -> float:
        return self.losses[self.best_epoch] if self.best_epoch >= 0 else math.inf

    def observe(self, loss: float) -> EarlyStoppingStep:
        """Record the next epoch's loss and say whether it was bad and whether training stops."""
        epoch = len(self.losses)
        window = tuple(self.losses[-self.patience:]) if self.patience > 0 else ()
        bad = False
        if window:
            bad = not (min(window) - loss >= self.tolerance)
            self.bad_count = self.bad_count + 1 if bad else 0
        self.losses.append(loss)
        if self.best_epoch < 0 or loss < self.best_loss:
            self.best_epoch = epoch
        return EarlyStoppingStep(epoch, loss, window, bad, self.bad_count, self.bad_count > self.patience)


def stopping_epoch(losses: list[float], patience: int, tolerance: float) -> int | None:
    """The epoch after which the rule ends a run with these losses, or None when it runs them all."""
    rule = EarlyStopping(patience, tolerance)
    for loss in losses:
        step = rule.observe(loss)
        if step.stop:
            return step.epoch
    return None


def ended_by_own_early_stopping(losses: list[float], patience: int, tolerance: float, epochs: int) -> bool:
    """Did the rule end a finished run with these losses (its last epoch is where the rule stops it,
    before the ``epochs`` budget ran out)? The detector's ``early_stopped_after_rise`` rule needs it."""
    return len(losses) < epochs and stopping_epoch(losses, patience, tolerance) == len(losses) - 1


def epochs_until_own_stop(losses: list[float], patience: int, tolerance: float, epochs: int) -> int:
    """The fewest further epochs a job with these losses pays before it ends on its own.

    Its own early stopping ends it once the bad count exceeds ``patience``; that takes at least
    ``patience + 1 - bad_count`` more epochs (every one of them bad), fewer when the epoch budget
    (``epochs``) runs out first. 0 when the rule or the budget has already ended the run. A good
    epoch resets the count, so a job can run longer than this: it is the least a stop saves.
    """
    rule = EarlyStopping(patience, tolerance)
    for loss in losses:
        if rule.observe(loss).stop:
            return 0
    budget_left = max(epochs - len(losses), 0)
    return min(patience + 1 - rule.bad_count, budget_left)


# The log line of the metric-line judge and the monitor for each stop-or-finish choice (fields:
# job, stop, epochsSaved, epochsToOwnStop, reason); the training stack's dashboard sums epochsSaved.
STOP_CHOICE_LOG_MESSAGE = "diverged job: stop or finish"


def epochs_saved_query() -> str:
    """CloudWatch Logs Insights query over the judging functions' log groups: epochs saved per day."""
    return (
        f'filter message = "{STOP_CHOICE_LOG_MESSAGE}"\n'
        "| stats sum(epochsSaved) as epochsSaved, count(*) as divergedJobsJudged by bin(1d)"
    )


@dataclass(frozen=True)
class StopChoice:
    """Whether to stop a diverged job now, and how many epochs that saves (at least)."""

    stop: bool
    epochs_to_own_stop: int
    reason: str

    @property
    def epochs_saved(self) -> int:
        return self.epochs_to_own_stop if self.stop else 0

    @property
    def summary(self) -> str:
        return f"stopped, {self.epochs_saved} epochs saved" if self.stop else f"left to finish: {self.reason}"


def choose_stop(
    losses: list[float], *, patience: int, tolerance: float, epochs: int, finish_within_epochs: int | None
) -> StopChoice:
    """Stop a diverged job only when more than ``finish_within_epochs`` epochs would otherwise be paid.

    The next attempt is launched as soon as divergence is seen either way. A job left to finish
    ends Completed with its best epoch in its artifact (reference section 10d), a promotion
    candidate; whether a stopped Object2Vec job keeps one is unconfirmed (10d), so stopping may
    throw that attempt's best model away. ``None``: never stop.
    """
    left = epochs_until_own_stop(losses, patience, tolerance, epochs)
    if finish_within_epochs is None:
        return StopChoice(False, left, "stopping diverged jobs is off")
    if left <= finish_within_epochs:
        return StopChoice(False, left, f"its own early stopping or budget ends it within {left} epoch(s), "
                                       f"at most {finish_within_epochs} are paid to keep its best model")
    return StopChoice(True, left, f"stopped: it would have paid at least {left} more epochs "
                                  f"(more than {finish_within_epochs}) before ending on its own")
