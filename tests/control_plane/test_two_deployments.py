"""Two deployments whose names are prefixes of each other, side by side (issue 10, defect 6).

With the old prefix ``{deployment}-``, deployment ``dev``'s prefix ``dev-`` matched every job of
deployment ``dev-x``: the finished-job rule delivered them, the evaluator refused them (another
deployment's tag) and the event ended in the DLQ. Reference section 10f. Now no deployment's
prefix, rule pattern, ``NameContains`` filter or IAM ARN wildcard covers another's jobs.
"""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from control_plane.handlers import divergence_monitor
from o2v_core.bulk_transform import transform_job_name, transform_job_prefix
from o2v_core.events import rules
from o2v_core.naming import NamingError, job_name, job_prefix

from tests.support import sagemaker_fake
from tests.support.cloud import DIVERGING, Cloud, epoch_lines, log_header
from tests.support.lambda_context import lambda_context

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
# Names that are prefixes of one another, with and without hyphens at the joint.
DEPLOYMENTS = ("o2v", "o2v-dev", "o2v-dev-x", "o2v-d", "o", "o2", "dev", "dev-x")
LINEAGES = ("stsb", "dev-stsb", "x", "m-stsb", "c-stsb")


def test_no_deployments_prefix_starts_another_deployments_job() -> None:
    for ours, theirs in itertools.permutations(DEPLOYMENTS, 2):
        prefix = job_prefix(ours)
        for lineage in LINEAGES:
            for attempt in (1, 2, 10):
                name = job_name(theirs, lineage, attempt)
                assert not name.startswith(prefix), (ours, name)
                # IAM ARN wildcards (training-job/{prefix}*, model/..., endpoint-config/...)
                assert not fnmatch.fnmatchcase(f"training-job/{name}", f"training-job/{prefix}*"), (ours, name)


def test_the_finished_job_rules_prefix_is_the_job_prefix() -> None:
    for deployment in DEPLOYMENTS:
        patterns = {spec.rule_id: spec.pattern for spec in rules(deployment) if spec.bus == "default"}
        assert patterns, deployment
        assert patterns.pop("AnnounceTransformJobEnd")["detail"]["TransformJobName"] == [
            {"prefix": transform_job_prefix(deployment)}]
        for pattern in patterns.values():
            assert pattern["detail"]["TrainingJobName"] == [{"prefix": job_prefix(deployment)}]


def test_no_deployments_transform_job_prefix_starts_another_deployments_transform_job() -> None:
    for ours, theirs in itertools.permutations(DEPLOYMENTS, 2):
        assert not transform_job_name(theirs).startswith(transform_job_prefix(ours)), (ours, theirs)


@pytest.mark.parametrize("deployment", ["o2v--x", "o2v-", "-o2v", "O2V"])
def test_a_deployment_name_holding_the_separator_is_refused(deployment: str) -> None:
    with pytest.raises(NamingError, match="deployment name"):
        job_prefix(deployment)


def test_another_deployments_finished_job_is_ignored_not_dead_lettered(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch)
    assert cloud.deployment == "dev"
    other = cloud.create_job("run", status="Completed", deployment="dev-x")
    ours = cloud.create_job("run", status="Completed")

    cloud.put_on_default_bus(cloud.sagemaker_state_change(other))
    cloud.put_on_default_bus(cloud.sagemaker_state_change(ours))

    delivered = cloud.delivered("finished_job_evaluator")
    assert [event["detail"]["TrainingJobName"] for event in delivered] == [ours]


def test_the_monitor_does_not_even_list_another_deployments_jobs(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    other = cloud.create_job("run", deployment="dev-x")
    cloud.write_log(other, log_header(other) + epoch_lines(DIVERGING, "mean_squared_error"))

    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert other not in report["checked"] + report["skipped"] + report["diverged"]
    assert report["errors"] == []
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 0
