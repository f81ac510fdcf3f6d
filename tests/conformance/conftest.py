"""The conformance suite's clients: ``o2v serve`` over HTTP and a local endpoint through boto3.

Each test sends what an AWS source sends (the developer guide's bodies, the notebooks' requests),
through one of two :class:`Transport` s, and parses the answer with the source's own code:

* :class:`ServeTransport`: the server ``o2v serve`` runs (:class:`InferenceServer`), in process.
* :class:`EndpointTransport`: ``sagemaker-runtime`` InvokeEndpoint through boto3 against local mode
  (the local SageMaker API serving the same model from S3), ContentType/Accept omitted when None.

The clients AWS's notebooks use are rebuilt on a transport: :class:`SdkV1Predictor` (SDK v1's
``RealTimePredictor``: no Content-Type unless one was given at construction, no Accept; reference
11g) and :class:`SdkPredictor` (SDK v2/v3 ``Predictor.predict``: the serializer's CONTENT_TYPE and
the deserializer's ACCEPT, using the installed SDK's own serializer classes).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import http.client
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws.services import LocalServices
from training.cli import main as o2v
from training.model.artifact import load
from training.serving.predictor import Predictor
from training.serving.server import InferenceServer
from training.trainer.__main__ import main as trainer_main

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"  # the built-in image (reference 6)
BUCKET = "conformance-models"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)  # ModelError's members, through boto3

    def json(self) -> Any:
        return json.loads(self.body)


class Transport(Protocol):
    def send(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> Reply: ...


class ServeTransport:
    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)

    def send(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> Reply:
        headers = {key: value for key, value in (("Content-Type", content_type), ("Accept", accept)) if value}
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            # On a body over its limit the server answers 413 and closes before the whole body is sent.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            # waitress sends header names in its own case: compare them title-cased
            return Reply(response.status, response.read(), {k.title(): v for k, v in response.getheaders()})
        finally:
            connection.close()


class EndpointTransport:
    def __init__(self, runtime: Any, endpoint: str) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.sent_headers: dict[str, str] = {}
        runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        self.sent_headers = {key: value.decode() if isinstance(value, bytes) else value
                             for key, value in request.headers.items()}

    def send(self, body: bytes, content_type: str | None = None, accept: str | None = None) -> Reply:
        args: dict[str, Any] = {"EndpointName": self.endpoint, "Body": body}
        if content_type is not None:
            args["ContentType"] = content_type
        if accept is not None:
            args["Accept"] = accept
        try:
            response = self.runtime.invoke_endpoint(**args)
        except ClientError as error:
            return Reply(error.response["ResponseMetadata"]["HTTPStatusCode"],
                         str(error.response.get("OriginalMessage", "")).encode(), {}, dict(error.response))
        return Reply(200, response["Body"].read(), {"Content-Type": response["ContentType"]})


class SdkV1Predictor:
    """SageMaker Python SDK v1 ``RealTimePredictor.predict``: the body as serialized, no Content-Type
    (the notebooks set ``serializer`` after construction, or none), no Accept (reference 11g)."""

    def __init__(self, transport: Transport, serializer: Callable[[Any], Any] | None = None,
                 deserializer: Callable[[io.BytesIO], Any] | None = None) -> None:
        self.transport = transport
        self.serializer = serializer
        self.deserializer = deserializer

    def predict(self, data: Any) -> Any:
        body = self.serializer(data) if self.serializer is not None else data
        reply = self.transport.send(body.encode() if isinstance(body, str) else body)
        assert reply.status == 200, reply
        return self.deserializer(io.BytesIO(reply.body)) if self.deserializer is not None else reply.body


def json_serializer(data: Any) -> str:  # SDK v1 sagemaker.predictor.json_serializer, for dicts
    return json.dumps(data)


def json_deserializer(stream: io.BytesIO) -> Any:  # SDK v1 sagemaker.predictor.json_deserializer
    return json.load(io.TextIOWrapper(stream, encoding="utf-8"))


class SdkPredictor:
    """SDK v2/v3 ``Predictor.predict``: ContentType = serializer.CONTENT_TYPE, Accept = the
    deserializer's ACCEPT joined, the reply through ``deserializer.deserialize``."""

    def __init__(self, transport: Transport, serializer: Any, deserializer: Any) -> None:
        self.transport = transport
        self.serializer = serializer
        self.deserializer = deserializer

    def predict(self, data: Any) -> Any:
        accept = ", ".join(self.deserializer.ACCEPT)
        reply = self.transport.send(self.serializer.serialize(data), self.serializer.CONTENT_TYPE, accept)
        assert reply.status == 200, reply
        return self.deserializer.deserialize(io.BytesIO(reply.body), reply.headers.get("Content-Type"))


def train_channels(data: Path, out: Path, hyperparameters: dict[str, Any]) -> Path:
    """``o2v train --data DIR`` on Object2Vec-format channels (no manifest.json); the model.tar.gz."""
    config = out.parent / f"{out.name}-hyperparameters.json"
    config.write_text(json.dumps(hyperparameters))
    assert o2v(["train", "--data", str(data), "--out", str(out), "--config", str(config), "--quiet"]) == 0
    return out / "model.tar.gz"


def train_container(data: Path, out: Path, hyperparameters: dict[str, Any]) -> Path:
    """The container entry point (``python -m training.trainer``) on channels in ``data``; the model.tar.gz."""
    config = out.parent / f"{out.name}-hyperparameters.json"
    config.write_text(json.dumps({name: str(value) for name, value in hyperparameters.items()}))  # as SageMaker
    assert trainer_main(["--hyperparameters", str(config), "--data-dir", str(data), "--model-dir", str(out / "model"),
                         "--output-dir", str(out / "output"), "--quiet"]) == 0
    return out / "output" / "model.tar.gz"


class LocalEndpoints:
    """Local mode's SageMaker: models from S3, endpoints served by the local SageMaker API."""

    def __init__(self, services: LocalServices) -> None:
        env = services.environment({})
        kwargs = {"region_name": env["AWS_DEFAULT_REGION"], "aws_access_key_id": "testing",
                  "aws_secret_access_key": "testing"}
        self.s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **kwargs)  # type: ignore[call-overload]
        self.sagemaker = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER"],  # type: ignore[call-overload]
                                      **kwargs)
        self.runtime = boto3.client("sagemaker-runtime",  # type: ignore[call-overload]
                                    endpoint_url=env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"], **kwargs)
        self.logs = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"], **kwargs)  # type: ignore[call-overload]
        self.s3.create_bucket(Bucket=BUCKET)
        self.deployed: dict[str, EndpointTransport] = {}

    def deploy(self, name: str, archive: Path) -> EndpointTransport:
        """An endpoint named ``name`` serving ``archive`` (created once per session)."""
        if name not in self.deployed:
            self.deployed[name] = self._create(name, archive)
        return self.deployed[name]

    def _create(self, name: str, archive: Path) -> EndpointTransport:
        self.s3.upload_file(str(archive), BUCKET, f"{name}/model.tar.gz")
        self.sagemaker.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
                                    PrimaryContainer={"Image": IMAGE,
                                                      "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"})
        self.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
        self.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return EndpointTransport(self.runtime, name)


@pytest.fixture(scope="session")
def local_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoints]:
    with LocalServices(tmp_path_factory.mktemp("conformance-local")) as services:
        yield LocalEndpoints(services)


TRANSPORTS = ["o2v serve", "local endpoint"]


@contextlib.contextmanager
def transport_for(kind: str, archive: Path, name: str, request: pytest.FixtureRequest) -> Iterator[Transport]:
    """``kind`` of :data:`TRANSPORTS` serving ``archive`` (a local endpoint is named ``name``)."""
    if kind == "o2v serve":
        with serving(archive) as served:
            yield served
    else:
        endpoints: LocalEndpoints = request.getfixturevalue("local_endpoints")
        yield endpoints.deploy(name, archive)


def snli_rows(shared_data: Path, split: str, start: int, count: int) -> list[dict[str, str]]:
    """Rows of the shared SNLI TSV as SNLI's own JSON Lines release has them (gold_label, sentence1,
    sentence2: the keys AWS's notebooks read); the notebooks download the jsonl release, we have the TSV."""
    with gzip.open(shared_data / "snli" / f"snli_1.0_{split}.tsv.gz", "rt", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = [row for _, row in zip(range(start + count), reader, strict=False)][start:]
    return [{"gold_label": row["gold_label"], "sentence1": row["sentence1"], "sentence2": row["sentence2"]}
            for row in rows]


def stsb_rows(shared_data: Path, split: str, count: int) -> list[tuple[float, str, str]]:
    """(score, sentence1, sentence2) of the first ``count`` rows of an STS Benchmark split."""
    rows = []
    for line in (shared_data / "stsbenchmark" / f"sts-{split}.csv").read_text(encoding="utf-8").splitlines()[:count]:
        fields = line.split("\t")
        rows.append((float(fields[4]), fields[5], fields[6]))
    return rows


def fake_vectors(words: list[str], path: Path, dim: int = 300) -> None:
    """A GloVe-format text file (``word v1 ... vdim``) for ``words``: GloVe itself (2 GB) is not
    available here; the notebooks' own code trims and loads it as it would the real one."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as handle:
        for word in words:
            handle.write(word + " " + " ".join(f"{rng.uniform(-1, 1):.4f}" for _ in range(dim)) + "\n")


@contextlib.contextmanager
def serving(archive: Path) -> Iterator[ServeTransport]:
    """``o2v serve --model ARCHIVE`` (its server, in this process, on a free port)."""
    server = InferenceServer(Predictor(load(archive)), "127.0.0.1", 0, quiet=True)
    server.start_background()
    try:
        yield ServeTransport(server.url)
    finally:
        server.shutdown()
        server.server_close()
