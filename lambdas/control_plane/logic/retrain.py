"""The retrain launcher: after attempt n diverged, start attempt n+1 with more regularization.

The new job is the parent with only its hyperparameters changed (as :class:`RetrainPolicy`
says), its name (``o2v_core.naming.job_name(deployment, lineage, n+1)``) and its lineage tags.
What DescribeTrainingJob returns that the user's own request set, and CreateTrainingJob accepts,
is copied as is (:data:`COPIED_FIELDS`: channels, role, resources, output path and KMS key, VPC,
stopping condition, algorithm specification with image and input mode, checkpoint and spot
settings, ...), and so are the parent's tags except its lineage and marker tags. Exceptions:

* a checkpoint S3 URI that contains the parent's job name gets the child's name instead, so an
  attempt never resumes from the diverged parent's checkpoints;
* for a built-in algorithm image the ``MetricDefinitions`` DescribeTrainingJob returns are
  SageMaker's own, and CreateTrainingJob refuses any for such an image (reference section 10a),
  so they are left out;
* Debugger and Profiler settings (:data:`NOT_COPIED_FIELDS`) are not carried over: SageMaker and
  the SDK add them on their own, and Debugger is closed to new customers (section 10f).

The policy compares a relaunch with the lineage's best so far (``RetrainPolicy.on_no_improvement``):
the parent's best value comes from the ``ValidationLossDiverged`` event (or, for the reconciler,
from the parent's ``o2v:best-value`` tag, set with ``o2v:diverged``), the best of the attempts
before it from the parent's ``o2v:lineage-best-value``/``-job`` tags, which the launcher sets on
every child it starts. A lineage started before these tags existed has no known best and keeps
raising the knob as before.

Exactly one job per attempt: the name is deterministic, so a duplicate delivery, a retry or a
concurrent launcher asks SageMaker for the same name and gets ``ResourceInUse``, which means
"already launched" and is success. (The DescribeTrainingJob check before creating only saves a
call; it is not what makes the launch race-free, SageMaker's unique job names are.)
Throttling and ``ResourceLimitExceeded`` propagate: Lambda retries, then the DLQ.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from o2v_core.builtin_algorithms import builtin_algorithm
from o2v_core.business_metrics import ATTEMPTS_LAUNCHED
from o2v_core.events import MalformedEvent, RetrainingExhausted, ValidationLossDiverged
from o2v_core.naming import LINEAGE_TAG_KEYS, Lineage, job_prefix, tag_list
from o2v_core.retrain_policy import ON_NO_IMPROVEMENT_STOP, Exhausted, LineageBest, RetrainPolicy

from control_plane.aws.training_jobs import TrainingJob, TrainingJobs
from control_plane.logic.announce import Announcer
from control_plane.logic.jobs import (
    TAG_BEST_VALUE,
    TAG_DIVERGED,
    TAG_EVALUATED,
    TAG_LINEAGE_BEST_JOB,
    TAG_LINEAGE_BEST_VALUE,
    TAG_PROMOTION,
    TAG_RETRAINING_EXHAUSTED,
    TAG_ROLLED_BACK,
    lineage_of,
    load_job,
)
from control_plane.observability import count

logger = Logger(child=True)

# DescribeTrainingJob fields that CreateTrainingJob takes but the child does not inherit:
# Debugger and Profiler (reference section 10f: Debugger closed to new customers; never copied by
# default).
NOT_COPIED_FIELDS: tuple[str, ...] = (
    "DebugHookConfig",
    "DebugRuleConfigurations",
    "ProfilerConfig",
    "ProfilerRuleConfigurations",
)
# DescribeTrainingJob fields that CreateTrainingJob takes, copied from parent to child.
# tests/control_plane checks this plus NOT_COPIED_FIELDS equals the overlap of botocore's two
# shapes minus the name and hyperparameters, so a new API field is noticed.
COPIED_FIELDS: tuple[str, ...] = (
    "AlgorithmSpecification",
    "CheckpointConfig",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "EnableNetworkIsolation",
    "Environment",
    "ExperimentConfig",
    "InfraCheckConfig",
    "InputDataConfig",
    "MlflowConfig",
    "ModelPackageConfig",
    "OutputDataConfig",
    "RemoteDebugConfig",
    "ResourceConfig",
    "RetryStrategy",
    "RoleArn",
    "ServerlessJobConfig",
    "StoppingCondition",
    "TensorBoardOutputConfig",
    "VpcConfig",
)
# Tags that describe the parent's own place or state; the child gets fresh ones.
NOT_INHERITED_TAGS = frozenset(
    {*LINEAGE_TAG_KEYS, TAG_DIVERGED, TAG_RETRAINING_EXHAUSTED, TAG_EVALUATED, TAG_PROMOTION, TAG_ROLLED_BACK,
     TAG_BEST_VALUE, TAG_LINEAGE_BEST_VALUE, TAG_LINEAGE_BEST_JOB}
)
MAX_TAGS = 50


@dataclass(frozen=True)
class RetrainOutcome:
    action: str  # "launched" | "already_launched" | "exhausted" | "already_exhausted"
    parent: str
    child: str | None
    detail: str

    def as_dict(self) -> dict[str, str | None]:
        return {"action": self.action, "parent": self.parent, "child": self.child, "detail": self.detail}


def child_tags(parent_tags: Mapping[str, str], lineage_tags: Mapping[str, str]) -> dict[str, str]:
    inherited = {
        key: value for key, value in parent_tags.items()
        if not key.startswith("aws:") and key not in NOT_INHERITED_TAGS
    }
    tags = {**inherited, **lineage_tags}
    if len(tags) > MAX_TAGS:
        raise ValueError(f"the child job would carry {len(tags)} tags; SageMaker allows {MAX_TAGS}")
    return tags


def build_child_request(
    parent: Mapping[str, Any], *, name: str, hyperparameters: Mapping[str, str], tags: Mapping[str, str]
) -> dict[str, Any]:
    """CreateTrainingJob's request for the child: the parent's settings, new name, HPs and tags."""
    request: dict[str, Any] = {
        key: copy.deepcopy(parent[key]) for key in COPIED_FIELDS if parent.get(key) is not None
    }
    checkpoint = request.get("CheckpointConfig")
    parent_name = str(parent.get("TrainingJobName", ""))
    if checkpoint and parent_name and parent_name in str(checkpoint.get("S3Uri", "")):
        # Never let the child resume from the diverged parent's checkpoints.
        checkpoint["S3Uri"] = str(checkpoint["S3Uri"]).replace(parent_name, name)
    algorithm = request.get("AlgorithmSpecification")
    if algorithm and builtin_algorithm(str(algorithm.get("TrainingImage", ""))) is not None:
        # SageMaker filled these in itself and refuses them on Create for built-in images (10a).
        algorithm.pop("MetricDefinitions", None)
    request["TrainingJobName"] = name
    # Always isolated, even for a parent launched without it: the retrain launcher's
    # CreateTrainingJob permission requires sagemaker:NetworkIsolation (stacks/guardrails.py).
    request["EnableNetworkIsolation"] = True
    request["HyperParameters"] = dict(hyperparameters)
    request["Tags"] = tag_list(tags)
    return request


def launch_next_attempt(
    diverged: ValidationLossDiverged,
    deployment: str,
    *,
    jobs: TrainingJobs,
    announcer: Announcer,
    policy: RetrainPolicy,
) -> RetrainOutcome:
    if diverged.deployment != deployment:
        raise MalformedEvent(
            f"field 'detail.deployment' is {diverged.deployment!r}: another deployment's event (this is {deployment!r})"
        )
    prefix = job_prefix(deployment)
    if not diverged.trainingJobName.startswith(prefix):
        raise MalformedEvent(
            f"field 'detail.trainingJobName' is {diverged.trainingJobName!r}: another deployment's job "
            f"(this deployment's jobs start with {prefix!r})"
        )
    parent = load_job(jobs, diverged.trainingJobName, field="detail.trainingJobName")
    lineage = lineage_of(parent, deployment)
    if lineage.lineage != diverged.lineage:
        raise MalformedEvent(
            f"field 'detail.lineage' is {diverged.lineage!r}, but job {parent.name!r} is tagged {lineage.lineage!r}"
        )
    if lineage.attempt != diverged.attempt:
        raise MalformedEvent(
            f"field 'detail.attempt' is {diverged.attempt}, but job {parent.name!r} is tagged attempt {lineage.attempt}"
        )
    return continue_lineage(parent, lineage, deployment, jobs=jobs, announcer=announcer, policy=policy,
                            parent_best=diverged.decision.best_value)


def _tagged_value(tags: Mapping[str, str], key: str) -> float | None:
    try:
        return float(tags[key]) if key in tags else None
    except ValueError:
        logger.warning("ignoring an unreadable tag", extra={"tag": key, "value": tags[key]})
        return None


def lineage_best(
    parent: TrainingJob, policy: RetrainPolicy, jobs: TrainingJobs, *, parent_best: float | None
) -> LineageBest:
    """What the policy needs to know of the lineage: the parent's best (``parent_best`` from the event,
    else its ``o2v:best-value`` tag) and the best before it (the tags the launcher set on the parent)."""
    known = LineageBest(
        parent_best if parent_best is not None else _tagged_value(parent.tags, TAG_BEST_VALUE),
        _tagged_value(parent.tags, TAG_LINEAGE_BEST_VALUE),
        parent.tags.get(TAG_LINEAGE_BEST_JOB),
    )
    not_helped = known.parent_helped(policy.min_improvement) is False
    # Only the weight_decay and smaller_step choices start from the best attempt's settings.
    if policy.on_no_improvement != ON_NO_IMPROVEMENT_STOP and not_helped and known.best_job:
        described = jobs.describe(known.best_job)
        if described is not None:
            hps = {str(key): str(value) for key, value in (described.get("HyperParameters") or {}).items()}
            return LineageBest(known.parent_best, known.best_before, known.best_job, hps)
    return known


def continue_lineage(
    parent: TrainingJob, lineage: Lineage, deployment: str, *, jobs: TrainingJobs, announcer: Announcer,
    policy: RetrainPolicy,
    parent_best: float | None = None,
) -> RetrainOutcome:
    """After ``parent`` diverged: its child job, or ``RetrainingExhausted``. Idempotent.

    The launcher calls it on ``ValidationLossDiverged``; the reconciler on a diverged job whose
    child does not exist and which is not tagged exhausted (the event or the launch was lost).
    ``parent_best``: the parent's best validation value, when the caller has the event.
    """
    child = lineage.next_attempt(parent.name)
    known = lineage_best(parent, policy, jobs, parent_best=parent_best)
    best_value, best_job = known.best_after(parent.name)
    outcome = policy.next_hyperparameters(parent.hyperparameters, child.attempt, known)
    if isinstance(outcome, Exhausted):
        if TAG_RETRAINING_EXHAUSTED in parent.tags:
            return RetrainOutcome("already_exhausted", parent.name, None, outcome.reason)
        # Once per lineage, also for concurrent deliveries: the ledger's create-only claim decides.
        announced = announcer.once(
            RetrainingExhausted(deployment, lineage.lineage, parent.name, lineage.attempt, outcome.reason,
                                outcome.stopped_because, best_job, best_value),
        )
        jobs.add_tags(parent.arn, {TAG_RETRAINING_EXHAUSTED: "true"})
        if not announced:
            return RetrainOutcome("already_exhausted", parent.name, None, outcome.reason)
        logger.warning("retraining exhausted", extra={"job": parent.name, "reason": outcome.reason})
        return RetrainOutcome("exhausted", parent.name, None, outcome.reason)

    child_name = child.job_name()
    if jobs.describe(child_name) is not None:
        return RetrainOutcome("already_launched", parent.name, child_name, "the child job exists")
    best_tags = {} if best_value is None or best_job is None else {
        TAG_LINEAGE_BEST_VALUE: repr(best_value), TAG_LINEAGE_BEST_JOB: best_job}
    request = build_child_request(
        parent.description, name=child_name, hyperparameters=outcome,
        tags=child_tags(parent.tags, {**child.tags(), **best_tags}),
    )
    changes = {
        key: f"{parent.hyperparameters.get(key, '(default)')} -> {value}"
        for key, value in outcome.items() if parent.hyperparameters.get(key) != value
    }
    if not jobs.create(request):
        return RetrainOutcome("already_launched", parent.name, child_name, "CreateTrainingJob: ResourceInUse")
    count(ATTEMPTS_LAUNCHED, deployment)
    logger.info("launched the next attempt", extra={"parent": parent.name, "child": child_name, "changes": changes})
    return RetrainOutcome("launched", parent.name, child_name, ", ".join(f"{k} {v}" for k, v in changes.items()))
