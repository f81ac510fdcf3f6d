"""`o2v embed --endpoint NAME` finds the served model's vocabulary from the endpoint name alone
(issue 10, defect 4): against the moto server, after a real promotion, and for the stack's own
endpoint config (deployed from a model URL, without the promoter's tags)."""

from __future__ import annotations

import json

import pytest
from control_plane.handlers.promoter import handler
from o2v_core import served_assets

from tests.promotion.support import ENDPOINT, Aws, succeeded
from tests.support import sagemaker_fake
from tests.support.lambda_context import lambda_context
from training.data import tokenizer as tokenizer_module
from training.data import vocab as vocab_module
from training.serving.endpoint_assets import EndpointAssetsError, endpoint_assets

AUXILIARY = "s3://demo-data/datasets/sts/auxiliary/"
VOCAB = {"<pad>": 0, "<unk>": 1, "a": 2, "flute": 3}


def upload_auxiliary(aws: Aws, *, tokenizer: bool = True) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="demo-data")
    s3.put_object(Bucket="demo-data", Key="datasets/sts/auxiliary/vocab.json", Body=json.dumps(VOCAB).encode())
    if tokenizer:
        settings = tokenizer_module.Tokenizer(lowercase=False).to_json()
        s3.put_object(Bucket="demo-data", Key="datasets/sts/auxiliary/tokenizer.json", Body=json.dumps(settings))


def test_the_file_names_the_promoter_records_are_the_ones_o2v_prepare_writes() -> None:
    assert served_assets.VOCAB_FILE == vocab_module.VOCAB_FILE
    assert served_assets.TOKENIZER_FILE == tokenizer_module.TOKENIZER_FILE


def test_a_promoted_model_s_vocabulary_is_found_from_the_endpoint_name(aws: Aws) -> None:
    upload_auxiliary(aws)
    job = aws.training_job("sts", 1, auxiliary=AUXILIARY)  # no o2v:vocab tag: SageMaker jobs have none
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    assert handler(event, lambda_context())["outcome"] == "ModelPromoted"
    sagemaker_fake.settle()

    found = endpoint_assets(aws.sagemaker, aws.client("s3"), ENDPOINT)

    assert found.training_job == job
    assert found.vocab_uri == AUXILIARY + "vocab.json"
    assert dict(found.vocab.token_to_id) == VOCAB
    assert found.tokenizer is not None and found.tokenizer.lowercase is False
    assert (aws.record() or {})["vocab"] == found.vocab_uri  # the record and the CLI agree


def test_the_stack_s_own_endpoint_config_is_followed_to_its_job_through_the_model_url(aws: Aws) -> None:
    upload_auxiliary(aws, tokenizer=False)
    job = aws.training_job("sts", 1, auxiliary=AUXILIARY)
    serve_without_tags(aws, aws.model_artifact(job))

    found = endpoint_assets(aws.sagemaker, aws.client("s3"), ENDPOINT)

    assert found.training_job == job and found.tokenizer is None  # the default tokenizer then


@pytest.mark.parametrize("case", ["unknown endpoint", "url of no job", "no auxiliary channel", "no vocab.json"])
def test_what_cannot_be_found_is_named_with_what_to_pass_instead(aws: Aws, case: str) -> None:
    if case == "url of no job":
        serve_without_tags(aws, "s3://someone/else/model.tar.gz")
    elif case == "no auxiliary channel":
        job = aws.training_job("sts", 1)
        serve_without_tags(aws, aws.model_artifact(job))
    elif case == "no vocab.json":
        aws.client("s3").create_bucket(Bucket="demo-data")
        job = aws.training_job("sts", 1, auxiliary=AUXILIARY)
        serve_without_tags(aws, aws.model_artifact(job))

    with pytest.raises(EndpointAssetsError) as raised:
        endpoint_assets(aws.sagemaker, aws.client("s3"), ENDPOINT)

    message = str(raised.value)
    expected = {
        "unknown endpoint": f"DescribeEndpoint({ENDPOINT})",
        "url of no job": "s3://someone/else/model.tar.gz, which is no training job's output",
        "no auxiliary channel": "has no auxiliary channel, so no vocabulary: pass --vocab",
        "no vocab.json": f"{AUXILIARY}vocab.json (training job",
    }[case]
    assert expected in message


def serve_without_tags(aws: Aws, model_data_url: str) -> None:
    """An endpoint the promoter did not make (by hand, or an older serving stack's): no o2v tags."""
    sm = aws.sagemaker
    sm.create_model(ModelName="stack-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/demo-model",
                    PrimaryContainer={"Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1",
                                      "ModelDataUrl": model_data_url})
    sm.create_endpoint_config(EndpointConfigName="stack-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "stack-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="stack-config")
    sagemaker_fake.settle()
