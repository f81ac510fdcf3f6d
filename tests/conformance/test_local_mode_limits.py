"""What docs/local-mode.md says local mode does not emulate is refused, not half-done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conformance.conftest import LocalEndpoints

pytestmark = pytest.mark.timeout(120)
ROLE = "arn:aws:iam::123456789012:role/training"


def test_tuning_and_batch_transform_are_refused_naming_what_is_implemented(local_endpoints: LocalEndpoints,
                                                                           repo_root: Path) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "CreateHyperParameterTuningJob": lambda: local_endpoints.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="hpo-o2v-test", HyperParameterTuningJobConfig={
                "Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 3,
                                                           "MaxParallelTrainingJobs": 3}}),
        "CreateTransformJob": lambda: local_endpoints.sagemaker.create_transform_job(
            TransformJobName="genres", ModelName="genres",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/test/"}},
                            "ContentType": "application/jsonlines", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": "s3://b/predictions/"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1}),
    }
    for operation, call in calls.items():
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "UnknownOperationException"
        assert f"does not implement {operation}" in str(refused.value) and "CreateTrainingJob" in str(refused.value)
    section = (repo_root / "docs" / "local-mode.md").read_text().split("### What local mode does not emulate")[1]
    assert "Hyperparameter tuning jobs" in section and "Batch transform" in section
