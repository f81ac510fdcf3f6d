"""The developer guide's Object2Vec request bodies, byte for byte, to ``o2v serve`` and a local endpoint.

Sources: "Data Formats for Object2Vec Inference" (docs.aws.amazon.com/sagemaker/latest/dg/
object2vec-inference-formats.html, markdown at docs.amazonaws.cn/en_us/sagemaker/latest/dg/
object2vec-inference-formats.md), "Encoder Embeddings for Object2Vec" (…/object2vec-encoder-embeddings),
"Data Formats for Object2Vec Training" (…/object2vec-training-formats); reference sections 2, 4a, 4b.
The model is trained by the container entry point (``python -m training.trainer``) on the training
page's three records, byte for byte.

Where the service's behaviour is not documented, the test says so and pins our documented choice
(training/serving/predictor.py's docstring; docs/local-mode.md "Conformance").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.conftest import EndpointTransport, LocalEndpoints, Reply, Transport, serving, train_container
from training.model.artifact import load
from training.serving.predictor import Predictor, RequestError

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # trains real models

# object2vec-training-formats: "Content-type: application/jsonlines"
TRAINING_RECORDS = b"""\
{"label": 0, "in0": [6, 17, 606, 19, 53, 67, 52, 12, 5, 10, 15, 10178, 7, 33, 652, 80, 15, 69, 821, 4], "in1": [16, 21, 13, 45, 14, 9, 80, 59, 164, 4]}
{"label": 1, "in0": [22, 1016, 32, 13, 25, 11, 5, 64, 573, 45, 5, 80, 15, 67, 21, 7, 9, 107, 4], "in1": [22, 32, 13, 25, 1016, 573, 3252, 4]}
{"label": 1, "in0": [774, 14, 21, 206], "in1": [21, 366, 125]}
"""  # noqa: E501
# object2vec-inference-formats, "Input: Classification or Regression Request Format"
PAIRS_JSON = b"""\
{
  "instances" : [
    {"in0": [6, 17, 606, 19, 53, 67, 52, 12, 5, 10, 15, 10178, 7, 33, 652, 80, 15, 69, 821, 4], "in1": [16, 21, 13, 45, 14, 9, 80, 59, 164, 4]},
    {"in0": [22, 1016, 32, 13, 25, 11, 5, 64, 573, 45, 5, 80, 15, 67, 21, 7, 9, 107, 4], "in1": [22, 32, 13, 25, 1016, 573, 3252, 4]},
    {"in0": [774, 14, 21, 206], "in1": [21, 366, 125]}
  ]
}
"""  # noqa: E501
PAIRS_JSONLINES = b"""\
{"in0": [6, 17, 606, 19, 53, 67, 52, 12, 5, 10, 15, 10178, 7, 33, 652, 80, 15, 69, 821, 4], "in1": [16, 21, 13, 45, 14, 9, 80, 59, 164, 4]}
{"in0": [22, 1016, 32, 13, 25, 11, 5, 64, 573, 45, 5, 80, 15, 67, 21, 7, 9, 107, 4], "in1": [22, 32, 13, 25, 1016, 573, 3252, 4]}
{"in0": [774, 14, 21, 206], "in1": [21, 366, 125]}
"""  # noqa: E501
# object2vec-encoder-embeddings, "Input: Encoder Embeddings"
EMBED_JSON = b"""\
{
  "instances" : [
    {"in0": [6, 17, 606, 19, 53, 67, 52, 12, 5, 10, 15, 10178, 7, 33, 652, 80, 15, 69, 821, 4]},
    {"in0": [22, 1016, 32, 13, 25, 11, 5, 64, 573, 45, 5, 80, 15, 67, 21, 7, 9, 107, 4]},
    {"in0": [774, 14, 21, 206]}
  ]
}
"""
EMBED_JSONLINES = b"""\
{"in0": [6, 17, 606, 19, 53, 67, 52, 12, 5, 10, 15, 10178, 7, 33, 652, 80, 15, 69, 821, 4]}
{"in0": [22, 1016, 32, 13, 25, 11, 5, 64, 573, 45, 5, 80, 15, 67, 21, 7, 9, 107, 4]}
{"in0": [774, 14, 21, 206]}
"""
JSON, JSONLINES = "application/json", "application/jsonlines"
INVOKE_ENDPOINT_MAX_BODY_BYTES = 6_291_456  # botocore sagemaker-runtime 2017-05-13 BodyBlob "max"
MAX_SEQ_LEN, ENC_DIM, NUM_CLASSES = 12, 8, 2
HYPERPARAMETERS = {"enc0_max_seq_len": MAX_SEQ_LEN, "enc0_vocab_size": 11000, "enc0_network": "pooled_embedding",
                   "enc1_network": "enc0", "enc0_token_embedding_dim": ENC_DIM, "enc_dim": ENC_DIM, "mlp_dim": 8,
                   "output_layer": "softmax", "num_classes": NUM_CLASSES, "epochs": 1, "mini_batch_size": 2}


@pytest.fixture(scope="session")
def guide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("guide-channels")
    for channel in ("train", "validation"):
        (data / channel).mkdir()
        (data / channel / "records.jsonl").write_bytes(TRAINING_RECORDS)
    return train_container(data, data.parent / "guide-run", HYPERPARAMETERS)


@pytest.fixture(scope="session")
def guide_endpoint(local_endpoints: LocalEndpoints, guide_model: Path) -> EndpointTransport:
    return local_endpoints.deploy("guide", guide_model)


@pytest.fixture(scope="module", params=["o2v serve", "local endpoint"])
def transport(request: pytest.FixtureRequest, guide_model: Path) -> Iterator[Transport]:
    if request.param == "o2v serve":
        with serving(guide_model) as served:
            yield served
    else:
        yield request.getfixturevalue("guide_endpoint")


def lines(reply: Reply) -> list[dict[str, list[float]]]:
    return [json.loads(line) for line in reply.body.decode().splitlines()]


def test_the_documented_pair_requests_get_scores(transport: Transport) -> None:
    as_json = transport.send(PAIRS_JSON, JSON, JSON)
    assert as_json.status == 200 and as_json.headers["Content-Type"] == JSON
    scores = [item["scores"] for item in as_json.json()["predictions"]]
    assert len(scores) == 3 and all(len(row) == NUM_CLASSES and sum(row) == pytest.approx(1) for row in scores)
    as_lines = transport.send(PAIRS_JSONLINES, JSONLINES, JSONLINES)
    assert as_lines.headers["Content-Type"] == JSONLINES
    np.testing.assert_allclose([row["scores"] for row in lines(as_lines)], scores, rtol=1e-6)


def test_the_documented_embedding_requests_get_enc_dim_embeddings(transport: Transport) -> None:
    as_json = transport.send(EMBED_JSON, f"{JSON}; infer_max_seqlens={MAX_SEQ_LEN},{MAX_SEQ_LEN}", JSON)
    embeddings = [item["embeddings"] for item in as_json.json()["predictions"]]
    assert [len(row) for row in embeddings] == [ENC_DIM] * 3
    as_lines = transport.send(EMBED_JSONLINES, f"{JSONLINES}; infer_max_seqlens={MAX_SEQ_LEN},{MAX_SEQ_LEN}",
                              JSONLINES)
    np.testing.assert_allclose([row["embeddings"] for row in lines(as_lines)], embeddings, rtol=1e-6)


def test_no_content_type_and_octet_stream_are_read_as_json(transport: Transport) -> None:
    # Reference 11g: SDK v1-era samples send no Content-Type and a real container parsed such a
    # body (400 "unable to evaluate payload provided" for a malformed one, not 415). What it does
    # with application/octet-stream (an SDK v2/v3 default Predictor) is not documented: our choice.
    expected = transport.send(PAIRS_JSON, JSON).json()
    for content_type in (None, "application/octet-stream"):
        reply = transport.send(PAIRS_JSON, content_type)
        assert reply.status == 200 and reply.json() == expected, content_type
    if isinstance(transport, EndpointTransport):
        transport.send(PAIRS_JSON)
        assert "Content-Type" not in transport.sent_headers  # boto3 sends none: the server decides


def test_extra_keys_are_ignored_and_json_lines_answer_json_lines(transport: Transport) -> None:
    # No source says what the container does with keys other than in0/in1: ignored, so a replayed
    # training file (with "label") runs. JSON Lines with no Accept is answered in JSON Lines, as the
    # guide pairs them and as AWS's genre notebook reads a batch transform's output (reference 11g).
    plain = transport.send(PAIRS_JSONLINES, JSONLINES, JSONLINES)
    replayed = transport.send(TRAINING_RECORDS, JSONLINES)
    assert replayed.status == 200 and replayed.headers["Content-Type"] == JSONLINES
    assert lines(replayed) == lines(plain)
    labelled = json.dumps({"instances": [json.loads(line) for line in TRAINING_RECORDS.splitlines()]}).encode()
    assert transport.send(labelled, JSON).json()["predictions"] == [row for row in lines(plain)]


def test_a_request_is_bounded_by_its_body_not_by_a_count_of_instances(transport: Transport) -> None:
    # Reference 11g: the movie notebook sends 9,430 instances in one request (about 330 KB).
    instances = [{"in0": [1 + i % 900], "in1": [1 + (i * 7) % 1600]} for i in range(9430)]
    reply = transport.send(json.dumps({"instances": instances}).encode(), JSON, JSON)
    assert reply.status == 200 and len(reply.json()["predictions"]) == 9430
    # InvokeEndpoint's body limit: botocore sagemaker-runtime BodyBlob "max": 6291456.
    too_big = json.dumps({"instances": [{"in0": [5] * 1000}] * 2200}).encode()
    assert len(too_big) > INVOKE_ENDPOINT_MAX_BODY_BYTES
    refused = transport.send(too_big, JSON)
    if isinstance(transport, EndpointTransport):  # the service's wording is not published; its code is
        assert refused.status == 400 and refused.error["Error"]["Code"] == "ValidationError"
    else:
        assert refused.status == 413


def test_the_memory_bound_refuses_with_413_naming_the_setting(guide_model: Path) -> None:
    predictor = Predictor(load(guide_model), max_output_values=100)
    predictor.parse(json.dumps({"instances": [{"in0": [1]}] * 12}).encode(), JSON)  # 12 x 8 = 96
    with pytest.raises(RequestError) as refused:
        predictor.parse(json.dumps({"instances": [{"in0": [1]}] * 13}).encode(), JSON)
    assert refused.value.status == 413 and "--max-output-values" in refused.value.message


def test_infer_max_seqlens_above_the_training_maximum_is_lowered_and_reported(
        guide_model: Path, guide_endpoint: EndpointTransport, local_endpoints: LocalEndpoints,
        capfd: pytest.CaptureFixture[str]) -> None:
    above = f"{JSON}; infer_max_seqlens=5000,40"
    note = f"infer_max_seqlens 5000 for in0 is above the model's enc0_max_seq_len {MAX_SEQ_LEN}"
    with serving(guide_model) as served:
        clamped = served.send(EMBED_JSON, above)
        at_max = served.send(EMBED_JSON, f"{JSON}; infer_max_seqlens={MAX_SEQ_LEN},{MAX_SEQ_LEN}")
    assert clamped.json() == at_max.json()
    assert note in clamped.headers["X-O2V-Infer-Max-Seqlens"] and "X-O2V-Infer-Max-Seqlens" not in at_max.headers
    assert f"serve: warning: {note}" in capfd.readouterr().err
    # Behind InvokeEndpoint only the modelled headers come back; the log line reaches the endpoint's log group.
    assert guide_endpoint.send(EMBED_JSON, above).json() == at_max.json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = local_endpoints.logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/guide",
                                                        filterPattern='"infer_max_seqlens 5000 for in0"')["events"]
        if events:
            break
        time.sleep(0.5)
    assert events and note in events[0]["message"]


def test_a_container_error_is_a_model_error_with_the_original_status_and_log_stream(
        guide_endpoint: EndpointTransport) -> None:
    reply = guide_endpoint.send(b'{"instances": [{"in0": [11000]}]}', JSON)
    assert reply.status == 424 and reply.error["Error"]["Code"] == "ModelError"
    # botocore sagemaker-runtime ModelError members: OriginalStatusCode, OriginalMessage, LogStreamArn.
    assert reply.error["OriginalStatusCode"] == 400
    assert "token id 11000 is outside the vocabulary" in reply.error["OriginalMessage"]
    assert reply.error["LogStreamArn"].startswith("arn:aws:logs:us-east-1:")
    assert ":log-group:/aws/sagemaker/Endpoints/guide:log-stream:AllTraffic/" in reply.error["LogStreamArn"]
