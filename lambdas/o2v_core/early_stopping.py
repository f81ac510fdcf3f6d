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
