"""The inline custom resources answer CloudFormation on every path, and it waits minutes, not an hour
(issue 24 item 6).

AWS rules, from reference 11c: CloudFormation injects ``cfnresponse`` into ZipFile code only for "this
exact import statement" (``import cfnresponse`` at module level; cfn-lambda-function-code-cfnresponsemodule);
a handler that fails before answering holds the stack until the custom resource's ``ServiceTimeout``
(1-3600 s, default 3600), on create and again on the rollback's delete. The answer is a PUT of JSON to
the event's pre-signed ResponseURL ("Custom resource response objects", CloudFormation User Guide).

The tests run the very ZipFile text of the synthesized templates, as Lambda would (a module named
``index``, ``index.handler``), with a local HTTP server as the ResponseURL and moto behind boto3.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from tests.stacks.conftest import Synthesized

CUSTOM_RESOURCE_TYPES = {"Custom::ExistingLogGroup": "training", "Custom::ServingModelRecord": "data"}
MAX_SERVICE_TIMEOUT = 3600  # reference 11c


class ResponseCollector(BaseHTTPRequestHandler):
    answers: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).answers.append(
            {"body": json.loads(self.rfile.read(length)), "content_type": self.headers.get("Content-Type")}
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    answers: list[dict[str, Any]] = []
    collector = type("Collector", (ResponseCollector,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/presigned", answers
    finally:
        server.shutdown()
        server.server_close()


def inline_function(synthesized: Synthesized, cfn_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the custom resource, the function behind its ServiceToken) of the synthesized templates."""
    role = CUSTOM_RESOURCE_TYPES[cfn_type]
    (resource,) = synthesized.resources(role, cfn_type).values()
    function_id = resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    return resource, synthesized.resources(role, "AWS::Lambda::Function")[function_id]


def load_shipped_code(code: str, tmp_path: Path) -> ModuleType:
    """The ZipFile text as Lambda loads it: a file named index.py, imported on its own."""
    path = tmp_path / "index.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("index", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped_handler(synthesized: Synthesized, cfn_type: str, tmp_path: Path) -> ModuleType:
    """The synthesized function's ZipFile code behind ``cfn_type``, loaded as Lambda would."""
    _, function = inline_function(synthesized, cfn_type)
    return load_shipped_code(function["Properties"]["Code"]["ZipFile"], tmp_path)


def cfn_event(request_type: str, url: str, properties: dict[str, Any] | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/o2v-dev-training/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "Group0",
        "ResourceType": "Custom::Test",
    }
    if properties is not None:
        event["ResourceProperties"] = {"ServiceToken": "arn:aws:lambda:...", **properties}
    return event


@pytest.mark.parametrize("cfn_type", sorted(CUSTOM_RESOURCE_TYPES))
def test_the_shipped_code_needs_no_injected_cfnresponse(synthesized: Synthesized, cfn_type: str) -> None:
    _, function = inline_function(synthesized, cfn_type)
    code = function["Properties"]["Code"]["ZipFile"]
    assert "import cfnresponse" not in code  # nothing CloudFormation must inject (11c)
    assert "cfnresponse." not in code
    assert len(code) < 4096  # CloudFormation's limit for inline code
    compile(code, "index.py", "exec")


@pytest.mark.parametrize("cfn_type", sorted(CUSTOM_RESOURCE_TYPES))
def test_custom_resources_wait_minutes_not_an_hour(synthesized: Synthesized, cfn_type: str) -> None:
    resource, function = inline_function(synthesized, cfn_type)
    timeout = resource["Properties"]["ServiceTimeout"]
    assert int(timeout) <= 300
    assert int(timeout) > function["Properties"]["Timeout"]  # the function gets its whole time to answer
    assert int(timeout) <= MAX_SERVICE_TIMEOUT


@pytest.mark.parametrize("cfn_type", sorted(CUSTOM_RESOURCE_TYPES))
@pytest.mark.parametrize("request_type", ["Create", "Delete"])
def test_a_crash_before_anything_still_answers_failed(
    dev: Synthesized, cfn_type: str, request_type: str, response_url: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:  # fmt: skip
    url, answers = response_url
    module = shipped_handler(dev, cfn_type, tmp_path)
    module.handler(cfn_event(request_type, url, properties=None), None)  # no ResourceProperties: KeyError
    (answer,) = answers
    body = answer["body"]
    assert body["Status"] == "FAILED"
    assert "KeyError" in body["Reason"]
    assert body["RequestId"] == "request-1" and body["LogicalResourceId"] == "Group0"
    assert body["StackId"].endswith("stack/o2v-dev-training/guid")
    assert body["PhysicalResourceId"] == "Group0"
    assert answer["content_type"] == ""  # as the pre-signed URL was signed


def test_the_log_group_resource_answers_success_with_what_it_did(
    dev: Synthesized, response_url: tuple[str, list[dict[str, Any]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url, answers = response_url
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module = shipped_handler(dev, "Custom::ExistingLogGroup", tmp_path)
    with mock_aws():
        for _ in range(2):
            module.handler(cfn_event("Create", url, {"LogGroupName": TRAINING_JOB_LOG_GROUP}), None)
        groups = boto3.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [TRAINING_JOB_LOG_GROUP]
    assert [a["body"]["Status"] for a in answers] == ["SUCCESS", "SUCCESS"]
    assert [a["body"]["Data"] for a in answers] == [{"Status": "created"}, {"Status": "exists"}]
    assert {a["body"]["PhysicalResourceId"] for a in answers} == {TRAINING_JOB_LOG_GROUP}


def test_an_aws_call_that_fails_answers_failed_with_the_error(
    dev: Synthesized, response_url: tuple[str, list[dict[str, Any]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """No credentials at all: botocore raises before any request, and the answer is still sent."""
    url, answers = response_url
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    # boto3.client() uses boto3's default session, which keeps the credentials it resolved: one that
    # another test of this process set up would otherwise still hold them.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    module = shipped_handler(dev, "Custom::ExistingLogGroup", tmp_path)
    module.handler(cfn_event("Create", url, {"LogGroupName": TRAINING_JOB_LOG_GROUP}), None)
    (answer,) = answers
    assert answer["body"]["Status"] == "FAILED"
    assert answer["body"]["Reason"].startswith("NoCredentialsError")
    assert answer["body"]["PhysicalResourceId"] == TRAINING_JOB_LOG_GROUP


def test_the_serving_record_resource_answers_success(
    dev: Synthesized, response_url: tuple[str, list[dict[str, Any]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url, answers = response_url
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module = shipped_handler(dev, "Custom::ServingModelRecord", tmp_path)
    properties = {"ParameterName": "/o2v/test/url", "InitialModelDataUrl": "s3://bucket/training-jobs/m.tar.gz"}
    with mock_aws():
        module.handler(cfn_event("Create", url, properties), None)
        value = boto3.client("ssm").get_parameter(Name="/o2v/test/url")["Parameter"]["Value"]
    assert value == "s3://bucket/training-jobs/m.tar.gz"
    (answer,) = answers
    assert answer["body"]["Status"] == "SUCCESS" and answer["body"]["Data"] == {"Status": "created"}
