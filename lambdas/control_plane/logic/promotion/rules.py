"""Pure promotion rules: no AWS call, no state. Each returns a reason a person can act on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from o2v_core.events import TrainingSucceeded
from o2v_core.metric_lines import SCORE_KIND
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT

from control_plane.aws.serving_record import ServingRecord
from control_plane.aws.training_jobs import TrainingJob
from control_plane.logic.jobs import TAG_ROLLED_BACK


def lower_is_better(metric_name: str) -> bool:
    """``validation:cross_entropy`` and ``validation:mean_squared_error`` are losses; accuracy a score."""
    metric = metric_name.rsplit(":", 1)[-1]
    return SCORE_KIND.get(metric, "loss") == "loss"


def artifact_holds_best_epoch(tags: dict[str, str]) -> bool:
    return tags.get(TAG_BEST_EPOCH_ARTIFACT, "").strip().lower() == "true"


def status_veto(status: str, tags: Mapping[str, str]) -> str | None:
    """Why a job of this status is not promotable, or None when it is."""
    if status == "Completed":
        return None
    if status == "Stopped":
        if artifact_holds_best_epoch(dict(tags)):
            return None
        return (
            "training job was stopped and its artifact may hold a diverged epoch's weights "
            f"(no {TAG_BEST_EPOCH_ARTIFACT}=true tag)"
        )
    return f"training job status is {status!r}; only Completed (or tagged Stopped) jobs are promotable"


def provenance_veto(job: TrainingJob, *, training_role_arn: str, training_output_uri: str) -> str | None:
    """Why a job is not this deployment's to promote, or None: it must have run as the training
    role, and its artifact must lie below the artifact bucket's training prefix (where only that
    role may write). A job started by anyone else, or pointing at another artifact, never serves."""
    if job.role_arn != training_role_arn:
        return (
            f"training job ran with role {job.role_arn!r}, not this deployment's training role "
            f"{training_role_arn!r}; only its jobs are promotable"
        )
    if job.model_data_url is not None and not job.model_data_url.startswith(training_output_uri):
        return (
            f"model artifact {job.model_data_url!r} is not below {training_output_uri}, where this "
            "deployment's training jobs write; only those artifacts are promotable"
        )
    return None


def candidate_value(event: TrainingSucceeded, status: str, tags: Mapping[str, str]) -> float:
    """The validation value that describes the model artifact.

    A Completed job's artifact holds its best epoch (reference section 10d: "Best model based on
    epoch M" is what Object2Vec serializes); a Stopped one's only when tagged so.
    """
    holds_best = status == "Completed" or artifact_holds_best_epoch(dict(tags))
    return event.bestValue if holds_best else event.finalValue


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    threshold: float | None = None  # the value the candidate had to beat


def compare(
    candidate: float, metric_name: str, serving: ServingRecord | None, margin: float, *,
    validation_data: str | None = None,
) -> Verdict:
    """Does ``candidate`` beat the served model by the relative margin, on the same data?"""
    if not math.isfinite(candidate):
        return Verdict(False, f"candidate {metric_name} is not finite ({candidate!r})")
    if serving is None:
        return Verdict(True, "no model is served yet")
    if serving.metricName != metric_name:
        return Verdict(
            False,
            f"not comparable: the served model was measured by {serving.metricName}, the candidate by {metric_name}",
        )
    if serving.validationData and validation_data != serving.validationData:
        return Verdict(
            False,
            f"not comparable: the served model ({serving.trainingJobName}) was validated on "
            f"{serving.validationData}, the candidate on {validation_data or 'no validation channel'}; "
            "validation values of different datasets say nothing about which model is better",
        )
    served = serving.metricValue
    needed = margin * abs(served)
    if lower_is_better(metric_name):
        threshold = served - needed
        better = served - candidate > needed
        relation = "below"
    else:
        threshold = served + needed
        better = candidate - served > needed
        relation = "above"
    numbers = (
        f"candidate {metric_name}={candidate:.6g}, served={served:.6g}, margin={margin:g} (relative): "
        f"needs to be strictly {relation} {threshold:.6g}"
    )
    return Verdict(better, ("better by the margin; " if better else "not better by the margin; ") + numbers, threshold)


def rollback_veto(tags: Mapping[str, str]) -> str | None:
    """A model the endpoint's rollback alarms rejected is never deployed again."""
    if TAG_ROLLED_BACK in tags:
        return f"the endpoint rolled this model back ({TAG_ROLLED_BACK}={tags[TAG_ROLLED_BACK]}); not deployed again"
    return None
