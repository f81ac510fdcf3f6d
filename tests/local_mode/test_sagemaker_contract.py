"""SageMaker's request contract, the one both SageMaker fakes apply (issue 10).

Each rule comes from the botocore service model of ``sagemaker`` (quoted below from the model
itself, so a botocore upgrade that changes a constraint changes the expectation with it) or from
reference section 10a. The same requests are then sent over HTTP to the one SageMaker fake, as local
mode runs it and as the control-plane and promotion tests run it (scripted, tests/support/sagemaker_fake.py),
which must refuse them alike.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from o2v_core.builtin_algorithms import METRIC_OVERRIDE_MESSAGE, builtin_metric_definitions

from local_aws.sagemaker.contract import (
    ContractViolation,
    check_request,
    described_algorithm_specification,
    service_model,
    unchecked_patterns,
)
from tests.local_mode.test_local_sagemaker import Local, _request
from tests.local_mode.test_local_sagemaker import local as local  # the module fixture: local services

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
BUCKET = "contract"


def metadata(shape: str) -> dict[str, Any]:
    return dict(service_model().shape_for(shape).metadata)


def bad(request: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


def violations() -> list[tuple[str, tuple[str | int, ...], Any, str]]:
    """(case, member path, value, what the message names), each a rule of the service model."""
    name = metadata("TrainingJobName")  # {'min': 1, 'max': 63, 'pattern': '[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}'}
    count = metadata("TrainingInstanceCount")  # {'min': 0}
    runtime = metadata("MaxRuntimeInSeconds")  # {'min': 1}
    assert (name["max"], count["min"], runtime["min"]) == (63, 0, 1)
    return [
        ("missing required member", ("RoleArn",), None, "Value null at 'roleArn'"),
        ("longer than max (63)", ("TrainingJobName",), "a" * 64, "Member must have length less than or equal to 63"),
        ("pattern", ("TrainingJobName",), "o2v_dev_job", "at 'trainingJobName' failed to satisfy constraint: "
         "Member must satisfy regular expression pattern"),
        ("enum", ("ResourceConfig", "InstanceType"), "ml.p3.huge", "at 'resourceConfig.instanceType'"),
        ("minimum value", ("StoppingCondition", "MaxRuntimeInSeconds"), 0,
         "at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have value greater"),
        ("role ARN pattern", ("RoleArn",), "arn:aws:iam::123456789012:user/someone", "at 'roleArn'"),
        ("nested list member", ("InputDataConfig", 0, "ChannelName"), "train!",
         "at 'inputDataConfig.1.channelName'"),
        ("built-in image with MetricDefinitions (10a)", ("AlgorithmSpecification", "MetricDefinitions"),
         [{"Name": "validation:mean_squared_error", "Regex": "x=(\\S+)"}], METRIC_OVERRIDE_MESSAGE),
    ]


CASES = violations()


@pytest.mark.parametrize(("case", "path", "value", "named"), CASES, ids=[case[0] for case in CASES])
def test_the_contract_refuses_what_sagemaker_refuses(case: str, path: tuple[str | int, ...], value: Any,
                                                     named: str) -> None:
    check_request("CreateTrainingJob", _request("o2v-dev--ok-a1", BUCKET))  # the valid request passes
    with pytest.raises(ContractViolation) as raised:
        check_request("CreateTrainingJob", bad(_request("o2v-dev--ok-a1", BUCKET), path, value))
    assert raised.value.code == "ValidationException"
    assert named in raised.value.message


def test_another_image_may_bring_its_own_metric_definitions_and_describe_adds_the_built_in_ones() -> None:
    custom = [{"Name": "validation:loss", "Regex": "loss=(\\S+)"}]
    request = _request("o2v-dev--own-a1", BUCKET)
    request["AlgorithmSpecification"] = {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1",
                                         "TrainingInputMode": "File", "MetricDefinitions": custom}
    check_request("CreateTrainingJob", request)
    assert described_algorithm_specification(request["AlgorithmSpecification"])["MetricDefinitions"] == custom
    builtin = described_algorithm_specification({"TrainingImage": IMAGE, "TrainingInputMode": "File"})
    assert builtin["MetricDefinitions"] == builtin_metric_definitions("object2vec")


def test_only_patterns_no_regex_engine_reads_are_unchecked_and_none_is_on_a_shape_we_send() -> None:
    assert set(unchecked_patterns()) <= {"AthenaCatalog", "Catalog", "Database", "TableName"}


@pytest.mark.parametrize(("case", "path", "value", "named"), CASES, ids=[case[0] for case in CASES])
def test_the_fake_answers_a_refused_request_with_sagemakers_error_in_local_mode_and_in_the_tests(
    local: Local, sagemaker_fake: str, case: str, path: tuple[str | int, ...], value: Any, named: str
) -> None:
    if case in ("missing required member", "minimum value"):
        pytest.skip("boto3 refuses it before sending: botocore checks required members and minimums itself")
    request = bad(_request("o2v-dev--wire-a1", BUCKET), path, value)
    scripted = boto3.client("sagemaker", endpoint_url=sagemaker_fake, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    for client in (local.client("sagemaker"), scripted):
        with pytest.raises(ClientError) as raised:
            client.create_training_job(**request)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert named in raised.value.response["Error"]["Message"]
