"""A redeploy never changes the served model: CloudFormation's update replayed against the fakes.

Issue 24 item 2. The serving stack used to own a model and endpoint config whose ``ModelDataUrl``
came from a ``{{resolve:ssm:...}}`` dynamic reference; "During stack updates, CloudFormation doesn't
retrieve the value of the dynamic reference unless a change is made to the dynamic reference
itself" (``../shared/reference/object2vec.md`` section 11c), so an update that replaced the config
(a changed instance type or capacity) served the stack's stale model. Now the promoter and the
reconciler own the endpoint (docs/promotion.md, "Who owns what").

The test synthesizes the dev app twice, before and after a change of ``serving.instance_type`` and
the capacities, and replays the update as CloudFormation would apply it after a promotion: every
resource of a type that can decide what an endpoint serves (SageMaker models, endpoint configs and
endpoints, Application Auto Scaling targets and policies) is created or updated through the same
APIs, and every changed Lambda environment variable is changed. Then: the promoted model is still
served, autoscaling follows the new capacities, and the next promotion deploys on the new instance
type after deregistering the scalable target, as SageMaker requires ("If the update would change
the instance type for any model that is a target for auto scaling, the update fails", section 11d,
from the SageMaker DG's endpoint-scaling-update.html; enforced below, since the SageMaker fake does
not see Application Auto Scaling).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane.aws.endpoint import SageMakerServing
from control_plane.handlers.wiring import reconciler_from_config
from control_plane.logic.promotion import serving_name
from o2v_core.events import MODEL_PROMOTED
from o2v_core.function_settings import ReconcilerSettings
from o2v_core.functions import PROMOTER, RECONCILER
from o2v_core.resource_names import serving_stack_name
from o2v_core.settings import read_cdk_context

from stacks.app_builder import CDK_JSON, build_app
from tests.promotion.promoting import promote, serve_first_model
from tests.promotion.support import DEPLOYMENT, ENDPOINT, Aws
from tests.stacks.conftest import no_network
from tests.support import sagemaker_fake
from tests.support.aws_calls import attributed_to

CHANGED_SERVING = {"instance_type": "ml.c5.xlarge", "min_capacity": 2, "max_capacity": 4,
                   "target_invocations_per_instance": 70}  # fmt: skip
# Resource types whose create or update changes what an endpoint serves or how it scales.
SERVING_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)


def serving_template(outdir: str, serving: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dev serving stack's template, synthesized offline (``serving``: overrides of its settings)."""
    context = read_cdk_context(CDK_JSON)
    environments = copy.deepcopy(context["environments"])
    environments["dev"]["serving"].update(serving or {})
    with no_network():
        deployment = build_app("dev", context={"environments": environments}, outdir=outdir)
        deployment.app.synth()
    name = serving_stack_name(deployment.settings.deployment)
    template: dict[str, Any] = json.loads((Path(outdir) / f"{name}.template.json").read_text())
    return template


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    before = serving_template(str(tmp_path_factory.mktemp("before")))
    after = serving_template(str(tmp_path_factory.mktemp("after")), CHANGED_SERVING)
    return before, after


def function_environment(template: dict[str, Any], handler: str) -> dict[str, Any]:
    (function,) = [r["Properties"] for r in template["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler]
    variables: dict[str, Any] = function["Environment"]["Variables"]
    return variables


def resolve(value: Any, physical: dict[str, str]) -> Any:
    """Refs and GetAtts among the replayed resources; anything else (imports) stays as the test's."""
    if isinstance(value, dict) and "Ref" in value:
        return physical.get(value["Ref"], value)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return physical.get(value["Fn::GetAtt"][0], value)
    if isinstance(value, dict):
        return {key: resolve(item, physical) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, physical) for item in value]
    return value


def replay_update(aws: Aws, before: dict[str, Any], after: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply the stack update ``before`` -> ``after`` as CloudFormation would, to what can change serving.

    A model or endpoint config whose properties changed is replaced (a new one, under a new
    physical name); an endpoint moves to its new config with UpdateEndpoint; scalable targets
    and policies are registered / put again. The promoter's and reconciler's changed environment
    variables are set (their next invocations run with them).
    """
    physical: dict[str, str] = {}
    sm, aas = aws.sagemaker, aws.client("application-autoscaling")
    for logical_id, resource in after["Resources"].items():
        kind = resource["Type"]
        if kind not in SERVING_TYPES or before["Resources"].get(logical_id) == resource:
            continue
        props = resolve(resource.get("Properties", {}), physical)
        name = f"{logical_id}-replaced"
        physical[logical_id] = name
        if kind == "AWS::SageMaker::Model":
            sm.create_model(ModelName=name, ExecutionRoleArn=os.environ["O2V_MODEL_ROLE_ARN"],
                            PrimaryContainer={"Image": os.environ["O2V_IMAGE_URI"],
                                              "ModelDataUrl": str(props["PrimaryContainer"]["ModelDataUrl"])})
        elif kind == "AWS::SageMaker::EndpointConfig":
            sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=props["ProductionVariants"])
        elif kind == "AWS::SageMaker::Endpoint":
            sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=props["EndpointConfigName"],
                               RetainAllVariantProperties=True)
        elif kind == "AWS::ApplicationAutoScaling::ScalableTarget":
            aas.register_scalable_target(**{k: v for k, v in props.items() if k != "RoleARN"})
        else:
            aas.put_scaling_policy(**props)
    for handler in (PROMOTER.handler, RECONCILER.handler):
        old, new = function_environment(before, handler), function_environment(after, handler)
        for key, value in new.items():
            if old.get(key) != value:
                assert isinstance(value, str), f"{key} changed to a value known only at deploy time: {value!r}"
                monkeypatch.setenv(key, value)


def reconcile() -> dict[str, object]:
    with attributed_to(RECONCILER.function_id):
        return reconciler_from_config(ReconcilerSettings.from_env()).run().as_dict()


@pytest.fixture
def autoscaling_rule(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UpdateEndpoint fails when it would change the instance type of an autoscaled variant (11d)."""
    update = SageMakerServing.update_endpoint

    def checked(self: SageMakerServing, name: str, *, config_name: str, deployment_config: Any) -> None:
        live = aws.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]

        def instance_type(config: str) -> str:
            variants = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
            return str(variants[0]["InstanceType"])

        if aws.scaling() is not None and instance_type(live) != instance_type(config_name):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "instance type change of an "
                               "autoscaled variant: deregister the scalable target first"}}, "UpdateEndpoint")
        update(self, name, config_name=config_name, deployment_config=deployment_config)

    monkeypatch.setattr(SageMakerServing, "update_endpoint", checked)
    yield


def test_a_redeploy_that_changes_instance_type_and_capacity_keeps_the_promoted_model_and_promotion_works(
    aws: Aws, templates: tuple[dict[str, Any], dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
    autoscaling_rule: None,
) -> None:
    before, after = templates
    # The change touches the promoter's environment; no template has anything of SERVING_TYPES.
    assert function_environment(after, PROMOTER.handler)["O2V_ENDPOINT_INSTANCE_TYPE"] == "ml.c5.xlarge"
    assert not [r for r in after["Resources"].values() if r["Type"] in SERVING_TYPES]

    # The first good model creates the endpoint; once it is InService the reconciler scales it.
    first = serve_first_model(aws, 0.5)
    assert reconcile()["autoscaling"] == "registered"
    assert aws.scaling() == (1, 3, 100.0)  # the test deployment's capacities (tests/promotion/support.py)
    served = serving_name(DEPLOYMENT, first, "config")

    replay_update(aws, before, after, monkeypatch)

    endpoint = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", served)
    assert aws.log.endpoint_updates == []  # the redeploy touched nothing SageMaker serves
    report = reconcile()
    assert (report["record"], report["autoscaling"]) == ("unchanged", "registered")
    assert aws.scaling() == (2, 4, 70.0)  # the new capacities, on the same model
    assert (aws.record() or {})["trainingJobName"] == first

    # Promotion still works, onto the new instance type: the scalable target goes first (11d).
    better = aws.training_job("sts", 2)
    assert promote(aws, better, 0.4)["outcome"] == MODEL_PROMOTED
    config = serving_name(DEPLOYMENT, better, "config")
    assert [update[1] for update in aws.log.endpoint_updates] == [config]
    variants = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    assert (variants[0]["InstanceType"], variants[0]["InitialInstanceCount"]) == ("ml.c5.xlarge", 2)
    assert aws.scaling() is None
    sagemaker_fake.settle()
    report = reconcile()
    assert report["autoscaling"] == "registered"
    assert aws.scaling() == (2, 4, 70.0)
    assert (aws.record() or {})["trainingJobName"] == better
    assert aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == config


def test_a_deleted_endpoint_comes_back_with_the_recorded_model(aws: Aws) -> None:
    """An endpoint deleted outside the promoter (by hand, or by the update that removes an older
    serving stack's endpoint resource) is created again on the record's config."""
    first = serve_first_model(aws, 0.5)
    aws.sagemaker.delete_endpoint(EndpointName=ENDPOINT)

    assert reconcile()["record"] == "endpoint_recreated"

    endpoint = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == serving_name(DEPLOYMENT, first, "config")
    sagemaker_fake.settle()
    assert reconcile()["record"] == "unchanged"


def test_with_no_record_a_missing_endpoint_waits_for_the_first_model(aws: Aws) -> None:
    assert reconcile()["record"] == "no_endpoint"
    assert aws.sagemaker.list_endpoints()["Endpoints"] == []


def test_autoscaling_off_deregisters_the_target(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_first_model(aws, 0.5)
    reconcile()
    assert aws.scaling() is not None
    monkeypatch.setenv("O2V_ENDPOINT_MAX_CAPACITY", "0")  # no autoscaling

    assert reconcile()["autoscaling"] == "deregistered"
    assert aws.scaling() is None
    assert reconcile()["autoscaling"] == "unchanged"
