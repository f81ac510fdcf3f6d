"""What a verify run will create, on which instance types, and its upper bound on cost and time;
and the confirmation it asks for before creating anything (``--yes`` skips it).

The training instance type is the cheapest Object2Vec trains on: the developer guide recommends
CPU training on ml.m5.2xlarge (reference section 5, [DG-O2V]: "Training on CPU: start with
ml.m5.2xlarge"). Every attempt gets ``MAX_RUNTIME_SECONDS`` (StoppingCondition; the retrain
launcher copies the parent's to each later attempt, ``control_plane/logic/retrain.py``), so the
training bound is attempts x that runtime. The endpoint runs the serving stack's instance type
(cdk.json ``serving.instance_type``) at ``min_capacity``, two fleets during the rollback check's
blue/green update (botocore ``BlueGreenUpdatePolicy``; reference 11f).

Prices: no source in the reference; the figures below are on-demand list prices of us-east-1
taken from https://aws.amazon.com/sagemaker/pricing/ (UNCONFIRMED for other regions and over
time), so the bound is printed in instance-hours first, then in dollars at those prices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from o2v_core.naming import job_name
from o2v_core.settings import Settings

from training.verify.run_tag import VerifyRun
from training.verify.target import Target

TRAINING_INSTANCE_TYPE = "ml.m5.2xlarge"  # reference section 5
MAX_RUNTIME_SECONDS = 1800  # per attempt: a tiny dataset trains in minutes; this caps a stuck job
ENDPOINT_HOURS = 1.0  # creation and the checks, before the clean-up deletes it
# The rollback check (training.verify.rollback): one more training job (the candidate, at most
# MAX_RUNTIME_SECONDS) and the promoter's decision on it; the blue/green update, bounded by the
# promoter's MaximumExecutionTimeoutInSeconds (o2v_core.endpoint_deployment, 3600 s) with two fleets;
# and the reconciler's next run (every 5 minutes) that rewrites the record.
ROLLBACK_LINEAGE_SUFFIX = "-rb"
ROLLBACK_DECISION_SECONDS = 15 * 60
ROLLBACK_BAKE_SECONDS = 65 * 60
ROLLBACK_RECORD_SECONDS = 15 * 60
# USD per instance-hour, us-east-1 on-demand (see the module doc: UNCONFIRMED, no reference source).
LIST_PRICE_PER_HOUR = {"ml.m5.2xlarge": 0.461, "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.g5.xlarge": 1.41}
FALLBACK_PRICE_PER_HOUR = 2.0  # an instance type not listed above: a deliberately high guess


@dataclass(frozen=True)
class Plan:
    run: VerifyRun
    target: Target
    training_instance_type: str
    serving_instance_type: str
    serving_instances: int
    max_attempts: int
    local: bool

    @property
    def training_hours(self) -> float:
        return (self.max_attempts + 1) * MAX_RUNTIME_SECONDS / 3600  # the attempts and the rollback candidate

    @property
    def endpoint_hours(self) -> float:
        bake_hours = (ROLLBACK_BAKE_SECONDS + ROLLBACK_RECORD_SECONDS) / 3600
        return (ENDPOINT_HOURS + bake_hours) * self.serving_instances * 2  # two fleets during a blue/green update

    @property
    def max_cost_usd(self) -> float:
        def price(instance: str) -> float:
            return LIST_PRICE_PER_HOUR.get(instance, FALLBACK_PRICE_PER_HOUR)
        return self.training_hours * price(self.training_instance_type) + self.endpoint_hours * price(
            self.serving_instance_type)

    @property
    def max_minutes(self) -> float:
        rollback = MAX_RUNTIME_SECONDS + ROLLBACK_DECISION_SECONDS + ROLLBACK_BAKE_SECONDS + ROLLBACK_RECORD_SECONDS
        return (self.max_attempts * MAX_RUNTIME_SECONDS + rollback) / 60 + ENDPOINT_HOURS * 60

    @property
    def rollback_candidate(self) -> str:
        """The rollback check's candidate job (``training.verify.rollback``: lineage ``<run>-rb``)."""
        return job_name(self.target.deployment, f"{self.run.lineage}{ROLLBACK_LINEAGE_SUFFIX}", 1)

    def lines(self) -> list[str]:
        run, target = self.run, self.target
        where = "local mode (no AWS account; nothing is billed)" if self.local else (
            f"AWS account of your credentials, region {target.region}, {target.origin}")
        return [
            f"o2v verify: an acceptance run of deployment {target.deployment!r} in {where}",
            "It will create (each named or tagged o2v:verify-run=" + run.run_id + "):",
            f"  - a tiny STS-B sample at s3://{target.launch.dataset_bucket}/datasets/{run.dataset}/",
            f"  - up to {self.max_attempts} training jobs of lineage {run.lineage} on {self.training_instance_type} "
            f"(at most {MAX_RUNTIME_SECONDS // 60} min each), attempt 1 overfitting on purpose",
            f"  - an SQS queue {run.queue_name} subscribed to the operators' topic, to see the announcements",
            f"  - through the promoter: a model, an endpoint config and endpoint {target.endpoint_name} on "
            f"{self.serving_instances} x {self.serving_instance_type}",
            "  - no rollback candidate: local mode evaluates no alarm, so the rollback check says could not tell"
            if self.local else
            f"  - for the rollback check, one more training job {self.rollback_candidate} (the served attempt's "
            "recipe) whose model.tar.gz it replaces with one that holds no model; the promoter deploys it blue/green "
            "(two fleets) and the run invokes it during the bake",
            f"{'In an account the same run would use at most' if self.local else 'Upper bound:'} "
            f"{self.training_hours:.1f} training instance-hours and {self.endpoint_hours:.1f} endpoint "
            f"instance-hours, about ${self.max_cost_usd:.2f} at us-east-1 list prices; at most "
            f"{self.max_minutes:.0f} minutes.",
            "Everything it creates is removed at the end, on failure and on Ctrl-C (--keep keeps the endpoint); "
            "a later run removes the leftovers of an interrupted one.",
        ]


def make_plan(run: VerifyRun, target: Target, settings: Settings, *, local: bool) -> Plan:
    return Plan(run=run, target=target, training_instance_type=TRAINING_INSTANCE_TYPE,
                serving_instance_type=settings.serving.instance_type,
                serving_instances=settings.serving.min_capacity,
                max_attempts=settings.retrain_policy.max_attempts, local=local)


def confirmed(plan: Plan, *, yes: bool, ask: Callable[[str], str] = input,
              say: Callable[[str], None] = print) -> bool:
    """Print the plan; True when ``--yes`` or the user answers y/yes."""
    for line in plan.lines():
        say(line)
    if yes:
        return True
    try:
        answer = ask("Go ahead? [y/N] ")
    except EOFError:  # no terminal (CI, a pipe): only --yes goes ahead
        return False
    return answer.strip().lower() in ("y", "yes")
