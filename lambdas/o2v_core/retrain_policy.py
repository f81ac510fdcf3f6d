"""The retrain policy: which hyperparameters attempt n+1 gets after attempt n diverged. Defined once.

Only regularization changes: ``dropout`` rises by a step (one number, or one step per retry),
up to ``dropout_cap``; ``weight_decay`` optionally rises the same way. Every other
hyperparameter is copied from the parent as the parent's own string. The result is validated
against :mod:`o2v_core.hyperparameters`. When ``max_attempts`` is reached, or no knob can rise any
more, the answer is :class:`Exhausted` and no job is started.

A knob that stopped helping is not raised again. When a relaunch (attempt 2 or later) diverged
with a best validation value that does not beat the best of the attempts before it (by more than
``min_improvement``, relative; :class:`LineageBest` carries both numbers), ``on_no_improvement``
says what comes next: ``stop`` (the default: keep the lineage's best, which the promoter already
serves or considered, and spend no more GPU), ``weight_decay`` (one attempt with the best
attempt's hyperparameters plus ``weight_decay_step`` of weight decay), ``smaller_step`` (one
attempt at the best attempt's dropout plus half the step) or ``keep_raising`` (the old
behaviour). The first relaunch always happens: attempt 1 has nothing to be compared with. The
choice of default is measured in docs/benchmarks.md (section 6) and explained in docs/detector.md.

Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from o2v_core import hyperparameters
from o2v_core.config_check import ConfigFieldError, FieldChecks

CONFIG_NAME = "retrain policy"
# Largest dropout the policy may ever set: 1.0 passes the schema but drops every activation.
MAX_DROPOUT_CAP = 0.95
MAX_WEIGHT_DECAY = float(hyperparameters.SCHEMA["weight_decay"].maximum or 10000.0)


class RetrainPolicyError(ConfigFieldError):
    """A retrain-policy field is unknown, of the wrong type or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(CONFIG_NAME, field, message)


_FIELDS = FieldChecks(RetrainPolicyError)


# Why a lineage stopped (RetrainingExhausted's stoppedBecause).
STOPPED_MAX_ATTEMPTS = "max_attempts"
STOPPED_NO_REGULARIZATION_LEFT = "no_regularization_left"
STOPPED_NO_IMPROVEMENT = "no_improvement"
STOPPED_BECAUSE = (STOPPED_MAX_ATTEMPTS, STOPPED_NO_REGULARIZATION_LEFT, STOPPED_NO_IMPROVEMENT)

# What follows a relaunch that did not beat the lineage's best.
ON_NO_IMPROVEMENT_STOP = "stop"
ON_NO_IMPROVEMENT_WEIGHT_DECAY = "weight_decay"
ON_NO_IMPROVEMENT_SMALLER_STEP = "smaller_step"
ON_NO_IMPROVEMENT_KEEP_RAISING = "keep_raising"
ON_NO_IMPROVEMENT = (ON_NO_IMPROVEMENT_STOP, ON_NO_IMPROVEMENT_WEIGHT_DECAY, ON_NO_IMPROVEMENT_SMALLER_STEP,
                     ON_NO_IMPROVEMENT_KEEP_RAISING)


@dataclass(frozen=True)
class Exhausted:
    """No further attempt: ``reason`` says which bound was reached; ``stopped_because`` names it
    (one of :data:`STOPPED_BECAUSE`)."""

    reason: str
    stopped_because: str = STOPPED_MAX_ATTEMPTS


@dataclass(frozen=True)
class LineageBest:
    """What the launcher knows of a lineage when its latest attempt (the parent) diverged.

    ``parent_best``: the parent's best validation value (lower is better: the detector's losses);
    ``best_before``: the best value of the attempts before the parent, ``best_job`` the job that
    reached it and ``best_hyperparameters`` its HyperParameters (needed by ``weight_decay`` and
    ``smaller_step`` only). None where unknown: the policy then raises the knob as before.
    """

    parent_best: float | None
    best_before: float | None
    best_job: str | None = None
    best_hyperparameters: Mapping[str, str] | None = None

    def parent_helped(self, min_improvement: float) -> bool | None:
        """Did the parent beat the best before it by more than ``min_improvement`` (relative)? None: unknown."""
        if self.parent_best is None or self.best_before is None:
            return None
        return self.best_before - self.parent_best > min_improvement * abs(self.best_before)

    def best_after(self, parent_job: str) -> tuple[float | None, str | None]:
        """The lineage's best value and job once the parent is counted."""
        if self.parent_best is None:
            return self.best_before, self.best_job
        if self.best_before is None or self.parent_best < self.best_before:
            return self.parent_best, parent_job
        return self.best_before, self.best_job


@dataclass(frozen=True)
class RetrainPolicy:
    """Bounds and schedule of automatic retraining.

    ``max_attempts`` counts the first job: 4 means the first job plus three retrains.
    ``dropout_step`` is added to the parent's dropout; a tuple gives the step of each retry in
    turn (the first element for attempt 2), its last element repeating.
    ``weight_decay_step`` 0 leaves weight_decay alone; otherwise it is added up to
    ``weight_decay_cap`` (with every retry, except under ``on_no_improvement="weight_decay"``,
    where it is the weight decay of the one attempt that follows a relaunch that did not help).
    ``on_no_improvement`` and ``min_improvement``: the module docstring.
    """

    max_attempts: int = 4
    dropout_step: float | tuple[float, ...] = 0.1
    dropout_cap: float = 0.5
    weight_decay_step: float = 0.0
    weight_decay_cap: float = 0.0
    on_no_improvement: str = ON_NO_IMPROVEMENT_STOP
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        _FIELDS.integer("max_attempts", self.max_attempts, 1, 20)
        steps = self.dropout_step if isinstance(self.dropout_step, (tuple, list)) else None
        if steps is not None:
            if not 1 <= len(steps) <= 20:
                raise RetrainPolicyError("dropout_step", f"a list needs 1 to 20 steps, got {len(steps)}")
            checked = tuple(
                _FIELDS.number(f"dropout_step[{index}]", step, 0.0, 1.0, low_open=True)
                for index, step in enumerate(steps)
            )
            object.__setattr__(self, "dropout_step", checked)
        else:
            object.__setattr__(
                self, "dropout_step", _FIELDS.number("dropout_step", self.dropout_step, 0.0, 1.0, low_open=True)
            )
        object.__setattr__(
            self, "dropout_cap", _FIELDS.number("dropout_cap", self.dropout_cap, 0.0, MAX_DROPOUT_CAP, low_open=True)
        )
        object.__setattr__(
            self, "weight_decay_step",
            _FIELDS.number("weight_decay_step", self.weight_decay_step, 0.0, MAX_WEIGHT_DECAY),
        )
        object.__setattr__(
            self, "weight_decay_cap", _FIELDS.number("weight_decay_cap", self.weight_decay_cap, 0.0, MAX_WEIGHT_DECAY)
        )
        if self.weight_decay_step > 0 and self.weight_decay_cap <= 0:
            raise RetrainPolicyError(
                "weight_decay_cap",
                f"must be above 0 when weight_decay_step is {self.weight_decay_step:g}; "
                f"allowed: number in (0, {MAX_WEIGHT_DECAY:g}]",
            )
        if self.on_no_improvement not in ON_NO_IMPROVEMENT:
            raise RetrainPolicyError(
                "on_no_improvement",
                f"{self.on_no_improvement!r} is not one of {', '.join(repr(mode) for mode in ON_NO_IMPROVEMENT)}",
            )
        if self.on_no_improvement == ON_NO_IMPROVEMENT_WEIGHT_DECAY and self.weight_decay_step <= 0:
            raise RetrainPolicyError(
                "weight_decay_step",
                "must be above 0 when on_no_improvement is 'weight_decay' (it is the weight decay that attempt "
                f"gets); allowed: number in (0, {MAX_WEIGHT_DECAY:g}]",
            )
        object.__setattr__(
            self, "min_improvement", _FIELDS.number("min_improvement", self.min_improvement, 0.0, 0.5)
        )

    # -- config I/O ----------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RetrainPolicy:
        values = _FIELDS.known_fields(cls, data)
        if isinstance(values.get("dropout_step"), list):
            values["dropout_step"] = tuple(values["dropout_step"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> RetrainPolicy:
        return cls.from_mapping(_FIELDS.json_object(text))

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        if isinstance(self.dropout_step, tuple):
            data["dropout_step"] = list(self.dropout_step)
        return json.dumps(data, sort_keys=True)

    # -- the policy ----------------------------------------------------------------------------

    def step_for(self, attempt: int) -> float:
        """The dropout step that takes attempt ``attempt - 1`` to ``attempt`` (attempt >= 2)."""
        if isinstance(self.dropout_step, tuple):
            return self.dropout_step[min(attempt - 2, len(self.dropout_step) - 1)]
        return self.dropout_step

    def next_hyperparameters(
        self, parent_hps: Mapping[str, str], attempt: int, lineage: LineageBest | None = None
    ) -> dict[str, str] | Exhausted:
        """The hyperparameters of ``attempt`` (2 for the first retrain), or why there is none.

        ``parent_hps`` is the parent job's HyperParameters map (DescribeTrainingJob); ``lineage``
        the best values so far (None, or unknown values: the knob rises as if the parent helped).
        Raises :class:`~o2v_core.hyperparameters.HyperparameterError` when the parent's own values
        are invalid; the result always passes :func:`o2v_core.hyperparameters.validate`.
        """
        if attempt < 2:
            raise ValueError(f"attempt must be >= 2 (the first retrain), got {attempt}")
        if attempt > self.max_attempts:
            return Exhausted(
                f"max_attempts={self.max_attempts} reached: attempt {attempt - 1} diverged and no attempt "
                f"{attempt} is started", STOPPED_MAX_ATTEMPTS,
            )
        helped = lineage.parent_helped(self.min_improvement) if lineage is not None and attempt >= 3 else None
        if helped is False and self.on_no_improvement != ON_NO_IMPROVEMENT_KEEP_RAISING:
            assert lineage is not None
            return self._after_no_improvement(parent_hps, attempt, lineage)
        return self._raised(parent_hps, attempt)

    def _after_no_improvement(
        self, parent_hps: Mapping[str, str], attempt: int, lineage: LineageBest
    ) -> dict[str, str] | Exhausted:
        assert lineage.parent_best is not None and lineage.best_before is not None
        margin = f" by more than {self.min_improvement:g} (min_improvement)" if self.min_improvement else ""
        why = (
            f"attempt {attempt - 1} (best {lineage.parent_best:.6g}) did not beat the lineage's best "
            f"{lineage.best_before:.6g}" + (f" ({lineage.best_job})" if lineage.best_job else "") + margin
        )
        stop = Exhausted(
            f"{why}: raising regularization stopped helping, so no attempt {attempt} is started and the lineage "
            f"keeps its best (on_no_improvement={self.on_no_improvement!r})", STOPPED_NO_IMPROVEMENT,
        )
        if self.on_no_improvement == ON_NO_IMPROVEMENT_STOP or lineage.best_hyperparameters is None:
            return stop
        parent = hyperparameters.validate(parent_hps, where="the parent job's hyperparameters")
        best = hyperparameters.validate(lineage.best_hyperparameters, where="the lineage's best job's hyperparameters")
        result = {str(name): str(value) for name, value in lineage.best_hyperparameters.items()}
        if self.on_no_improvement == ON_NO_IMPROVEMENT_WEIGHT_DECAY:
            best_decay = float(best.get("weight_decay", _default("weight_decay")))
            if float(parent.get("weight_decay", _default("weight_decay"))) > best_decay:
                return stop  # weight decay was the change that did not help
            result["weight_decay"] = _text(_round(best_decay + self.weight_decay_step))
        else:  # smaller_step
            best_dropout = float(best.get("dropout", _default("dropout")))
            half = self.step_for(attempt) / 2
            if float(parent.get("dropout", _default("dropout"))) <= _round(best_dropout + half):
                return stop  # already a small step above the best
            result["dropout"] = _text(min(_round(best_dropout + half), self.dropout_cap))
        hyperparameters.validate(result, where=f"attempt {attempt}'s hyperparameters")
        return result

    def _raised(self, parent_hps: Mapping[str, str], attempt: int) -> dict[str, str] | Exhausted:
        parsed = hyperparameters.validate(parent_hps, where="the parent job's hyperparameters")
        dropout = float(parsed.get("dropout", _default("dropout")))
        weight_decay = float(parsed.get("weight_decay", _default("weight_decay")))

        new_dropout = min(_round(dropout + self.step_for(attempt)), self.dropout_cap)
        new_weight_decay = weight_decay
        if self.weight_decay_step > 0 and self.on_no_improvement != ON_NO_IMPROVEMENT_WEIGHT_DECAY:
            new_weight_decay = min(_round(weight_decay + self.weight_decay_step), self.weight_decay_cap)

        raise_dropout = new_dropout > dropout
        raise_weight_decay = new_weight_decay > weight_decay
        if not raise_dropout and not raise_weight_decay:
            wd_note = (
                f", and weight_decay {weight_decay:g} is at its cap {self.weight_decay_cap:g}"
                if self.weight_decay_step > 0 else " (weight_decay_step is 0)"
            )
            return Exhausted(
                f"dropout {dropout:g} is already at or above dropout_cap={self.dropout_cap:g}{wd_note}; "
                "no regularization left to add", STOPPED_NO_REGULARIZATION_LEFT,
            )
        result = {str(name): str(value) for name, value in parent_hps.items()}
        if raise_dropout:
            result["dropout"] = _text(new_dropout)
        if raise_weight_decay:
            result["weight_decay"] = _text(new_weight_decay)
        hyperparameters.validate(result, where=f"attempt {attempt}'s hyperparameters")
        return result


def _default(name: str) -> float:
    default = hyperparameters.SCHEMA[name].default
    assert isinstance(default, (int, float))
    return float(default)


def _round(value: float) -> float:
    return round(value, 6)  # 0.1 + 0.2 -> 0.3, not 0.30000000000000004


def _text(value: float) -> str:
    return repr(value)  # already rounded, or the cap itself: rounding again could pass the cap
