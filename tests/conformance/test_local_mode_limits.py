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


def test_tuning_is_refused_and_the_notebooks_transform_job_is_read(local_endpoints: LocalEndpoints,
                                                                     repo_root: Path) -> None:
    transform = {  # the genre notebook's request; batch transform is emulated (docs/bulk-embedding.md)
        "TransformJobName": "genres", "ModelName": "genres",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/test/"}},
                           "ContentType": "application/jsonlines", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://b/predictions/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    with pytest.raises(ClientError) as no_model:
        local_endpoints.sagemaker.create_transform_job(**transform)
    # No model "genres" was created here: the request is read, not refused as unknown.
    assert no_model.value.response["Error"]["Code"] == "ValidationException", no_model.value.response
    assert "genres" in str(no_model.value)
    calls: dict[str, Callable[[], Any]] = {
        "CreateHyperParameterTuningJob": lambda: local_endpoints.sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="hpo-o2v-test", HyperParameterTuningJobConfig={
                "Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 3,
                                                           "MaxParallelTrainingJobs": 3}}),
    }
    for operation, call in calls.items():
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "UnknownOperationException"
        assert f"does not implement {operation}" in str(refused.value) and "CreateTrainingJob" in str(refused.value)
    section = (repo_root / "docs" / "local-mode.md").read_text().split("### What local mode does not emulate")[1]
    assert "Hyperparameter tuning jobs" in section and "Batch transform, in part" in section
