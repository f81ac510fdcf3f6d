"""`o2v preflight` judges the stacks as synthesized: the subscription filters the training stack puts on
SageMaker's training log group are exactly the names preflight counts as ours (so a redeploy's own
filter takes no new slot, and every new one is counted), no stack raises an endpoint's capacity
beyond the max_capacity the endpoint quota check multiplies, and the bootstrap parameter and minimum
version preflight checks are the ones the templates check."""

from __future__ import annotations

from pathlib import Path

from o2v_core.functions import PROMOTER, RECONCILER
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP
from o2v_core.settings import read_cdk_context

from tests.stacks.conftest import Synthesized
from training.preflight.account import MIN_BOOTSTRAP_VERSION, bootstrap_qualifier, bootstrap_version_parameter
from training.preflight.log_slots import our_filter_names

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_preflight_counts_exactly_the_filters_the_stacks_add(synthesized: Synthesized) -> None:
    added = {
        resource["Properties"]["FilterName"]
        for role in ("data", "training", "serving")
        for resource in synthesized.resources(role, "AWS::Logs::SubscriptionFilter").values()
        if resource["Properties"]["LogGroupName"] == TRAINING_JOB_LOG_GROUP
    }
    assert added == our_filter_names(synthesized.settings.deployment)


def test_the_endpoint_scales_up_to_max_capacity_at_most(synthesized: Synthesized) -> None:
    """The reconciler registers the endpoint's scalable target (issue 24: no stack has one) with the
    maximum its environment says, and the promoter's configs start at the minimum."""
    assert not synthesized.resources("serving", "AWS::ApplicationAutoScaling::ScalableTarget")
    serving = synthesized.settings.serving
    functions = synthesized.resources("serving", "AWS::Lambda::Function").values()
    environments = [f["Properties"]["Environment"]["Variables"] for f in functions
                    if f["Properties"]["Handler"] in (PROMOTER.handler, RECONCILER.handler)]
    assert len(environments) == 2
    for env in environments:
        assert int(env["O2V_ENDPOINT_MAX_CAPACITY"]) == serving.max_capacity
        assert int(env["O2V_ENDPOINT_MIN_CAPACITY"]) == serving.min_capacity <= serving.max_capacity


def test_preflight_reads_the_bootstrap_parameter_and_minimum_the_templates_check(synthesized: Synthesized) -> None:
    """Every template resolves the bootstrap version from SSM and its CheckBootstrapVersion rule refuses
    the versions below aws-cdk-lib's minimum: preflight reads the same parameter and minimum."""
    context = read_cdk_context(REPO_ROOT / "cdk.json")
    for role in ("data", "training", "serving"):
        template = synthesized.template_json(role)
        assert template["Parameters"]["BootstrapVersion"]["Default"] == bootstrap_version_parameter(
            bootstrap_qualifier(context))
        refused = template["Rules"]["CheckBootstrapVersion"]["Assertions"][0]["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
        assert sorted(int(v) for v in refused) == list(range(1, MIN_BOOTSTRAP_VERSION))
