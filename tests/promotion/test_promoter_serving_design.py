"""The promoter's serving design, end to end against the SageMaker fake and a moto server: the record
is the one parameter written, and the live endpoint config's KMS key and data capture are carried
over to every config the promoter creates."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane.aws import clients
from control_plane.handlers.promoter import handler
from control_plane.logic.promotion import serving_name
from o2v_core.endpoint_deployment import data_capture_config
from o2v_core.events import MODEL_PROMOTED, PROMOTION_SKIPPED

from tests.promotion.promoting import promote, serve_first_model
from tests.promotion.support import (
    CAPTURE_URI,
    CONFIG,
    DEPLOYMENT,
    ENDPOINT,
    IMAGE,
    KEY_ARN,
    PARAMETER,
    Aws,
    succeeded,
)
from tests.support import sagemaker_fake
from tests.support.lambda_context import lambda_context

# ---------------------------------------------------------------------------------------------
# The live config's KMS key and data capture carried over


def live_endpoint(aws: Aws, *, kms_key_id: str | None, capture: dict[str, Any] | None) -> str:
    """An endpoint on a config with a KMS key and data capture the settings do not have (an operator
    changed them), with the deployment's names but none of the promoter's tags, InService, no record."""
    job = aws.training_job("boot", 1)
    model = serving_name(DEPLOYMENT, job, "model")
    config = serving_name(DEPLOYMENT, job, "config")
    aws.sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn=CONFIG.model_role_arn,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": aws.model_artifact(job)},
    )
    extra: dict[str, Any] = {}
    if kms_key_id:
        extra["KmsKeyId"] = kms_key_id
    if capture:
        extra["DataCaptureConfig"] = capture
    aws.sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"
        }],
        **extra,
    )
    aws.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    sagemaker_fake.settle()
    return config


OTHER_KEY = f"arn:aws:kms:us-east-1:{sagemaker_fake.ACCOUNT}:key/99999999-8888-7777-6666-555555555555"
LIVE_CAPTURE: dict[str, Any] = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 37,
    "DestinationS3Uri": "s3://operator-bucket/capture/",
    "KmsKeyId": OTHER_KEY,
    "CaptureOptions": [{"CaptureMode": "Input"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
}


@pytest.mark.parametrize(
    ("kms_key_id", "capture"),
    [(OTHER_KEY, LIVE_CAPTURE), (None, None)],
    ids=["key-and-capture", "neither (local-storage instance, capture off)"],
)
def test_new_config_copies_kms_key_and_data_capture_from_the_live_config(
    aws: Aws, kms_key_id: str | None, capture: dict[str, Any] | None
) -> None:
    live_endpoint(aws, kms_key_id=kms_key_id, capture=capture)
    job = aws.training_job("sts", 1)

    assert promote(aws, job, 0.4)["outcome"] == MODEL_PROMOTED

    config_name = serving_name(DEPLOYMENT, job, "config")
    assert aws.log.endpoint_updates[0][1] == config_name
    # The live config's values, not the settings' (KEY_ARN, 20 % to CAPTURE_URI), and nothing added.
    assert aws.config_settings(config_name) == (kms_key_id, capture)


def test_later_promotions_keep_copying_from_the_config_the_promoter_deployed(aws: Aws) -> None:
    live_endpoint(aws, kms_key_id=OTHER_KEY, capture=LIVE_CAPTURE)
    first = aws.training_job("sts", 1)
    promote(aws, first, 0.5)
    sagemaker_fake.settle()
    second = aws.training_job("sts", 2)

    assert promote(aws, second, 0.4)["outcome"] == MODEL_PROMOTED

    assert aws.config_settings(serving_name(DEPLOYMENT, second, "config")) == (OTHER_KEY, LIVE_CAPTURE)


def test_a_live_config_that_is_gone_falls_back_to_the_settings_with_a_warning(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    live = live_endpoint(aws, kms_key_id=OTHER_KEY, capture=LIVE_CAPTURE)
    aws.sagemaker.delete_endpoint_config(EndpointConfigName=live)  # SageMaker allows it; the endpoint runs on
    job = aws.training_job("sts", 1)

    assert promote(aws, job, 0.4)["outcome"] == MODEL_PROMOTED

    assert aws.config_settings(serving_name(DEPLOYMENT, job, "config")) == (
        KEY_ARN,
        data_capture_config(CAPTURE_URI, 20, KEY_ARN),
    )
    assert any("current config is gone" in r.getMessage() for r in caplog.records)


def test_promotion_writes_the_record_and_no_other_parameter(aws: Aws) -> None:
    job = serve_first_model(aws)

    record = aws.record()
    assert record is not None and record["trainingJobName"] == job
    assert record["modelDataUrl"] == aws.model_artifact(job)
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Type"] == "String"
    # Older versions also wrote the URL alone for the serving stack's dynamic reference; nothing reads it now.
    assert aws.parameter("/o2v/demo/serving-model-data-url") is None


class FailingPut:
    """The SSM client, except that PutParameter on one name fails (throttled, say)."""

    def __init__(self, real: Any, name: str) -> None:
        self.real, self.name = real, name

    def put_parameter(self, **kwargs: Any) -> Any:
        if kwargs["Name"] == self.name:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutParameter")
        return self.real.put_parameter(**kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.real, attribute)


def test_a_failed_record_write_leaves_the_old_record_and_never_deploys_twice(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = PARAMETER
    first = serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    real_client = clients.client
    with monkeypatch.context() as patch:
        patch.setattr(
            clients, "client", lambda service: FailingPut(real_client(service), failing) if service == "ssm" else
            real_client(service)
        )  # fmt: skip
        with pytest.raises(ClientError, match="Rate exceeded"):
            handler(event, lambda_context())

    record = aws.record()
    assert record is not None and record["trainingJobName"] == first  # the record still names the old model
    # ModelPromoted goes out before the record is written (the record marks it done), never after.
    announced = [e["detail-type"] for e in aws.events()]
    assert announced == [MODEL_PROMOTED]

    result = handler(event, lambda_context())  # Lambda's retry

    assert result["outcome"] == PROMOTION_SKIPPED
    assert str(result["reason"]).startswith("already deploying (Updating)")
    assert len(aws.log.endpoint_updates) == 1
    record = aws.record()  # the reconciler rewrites it once the endpoint serves the new config
    assert record is not None and record["trainingJobName"] == first
