"""The local inference server on a free loopback port, and o2v embed against it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from training.cli import main
from training.data.tokenizer import Tokenizer
from training.model.artifact import LoadedModel, load
from training.serving.client import LocalInvoker, SageMakerInvoker, SentenceEncoder
from training.serving.predictor import Predictor
from training.serving.server import InferenceServer

MAX_BODY = 20_000
MAX_INSTANCES = 50
ENC_DIM = 24  # the served_model fixture's
READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def loaded(served_model: Path) -> LoadedModel:
    return load(served_model)


@pytest.fixture(scope="module")
def server(loaded: LoadedModel) -> Iterator[InferenceServer]:
    predictor = Predictor(loaded, max_output_values=MAX_INSTANCES * ENC_DIM, batch_size=16)
    instance = InferenceServer(predictor, "127.0.0.1", 0, max_body_bytes=MAX_BODY, quiet=True,
                               read_timeout=READ_TIMEOUT)
    instance.start_background()
    try:
        yield instance
    finally:
        instance.shutdown()
        instance.server_close()


def request(server: InferenceServer, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        connection.request(method, path, body=body.encode() if isinstance(body, str) else body,
                           headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        connection.close()


def invoke(server: InferenceServer, payload: object, content_type: str = "application/json",
           accept: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    body = payload if isinstance(payload, str) else json.dumps(payload)
    status, text, _ = request(server, "POST", "/invocations", body, headers)
    return status, text


def healthy(server: InferenceServer) -> None:
    assert request(server, "GET", "/ping")[0] == 200
    status, text = invoke(server, {"instances": [{"in0": [2, 3, 4]}]})
    assert status == 200 and len(json.loads(text)["predictions"][0]["embeddings"]) == 24


def test_ping(server: InferenceServer) -> None:
    assert request(server, "GET", "/ping")[0] == 200


def test_embeddings_have_enc_dim_values(server: InferenceServer, loaded: LoadedModel) -> None:
    enc_dim = loaded.config.enc_dim
    status, text = invoke(server, {"instances": [{"in0": [2, 3, 4, 5]}, {"in1": [6, 7]}, {"in0": [8]}]})
    assert status == 200
    predictions = json.loads(text)["predictions"]
    assert [list(item) for item in predictions] == [["embeddings"]] * 3
    assert all(len(item["embeddings"]) == enc_dim == 24 for item in predictions)
    # in0 goes through encoder 0 (hcnn) and in1 through encoder 1 (bilstm): different vectors.
    _, again = invoke(server, {"instances": [{"in1": [2, 3, 4, 5]}]})
    assert json.loads(again)["predictions"][0]["embeddings"] != predictions[0]["embeddings"]


def test_pairs_get_scores(server: InferenceServer) -> None:
    status, text = invoke(server, {"instances": [{"in0": [2, 3, 4], "in1": [2, 3, 5]}, {"in0": [9], "in1": [10]}]})
    assert status == 200
    predictions = json.loads(text)["predictions"]
    assert all(list(item) == ["scores"] and len(item["scores"]) == 1 for item in predictions)  # regression


def test_jsonlines_in_and_out(server: InferenceServer) -> None:
    body = '{"in0": [2, 3]}\n\n{"in0": [4, 5], "in1": [6]}\n'
    status, text = invoke(server, body, "application/jsonlines", accept="application/jsonlines")
    assert status == 200
    lines = [json.loads(line) for line in text.splitlines()]
    assert list(lines[0]) == ["embeddings"] and list(lines[1]) == ["scores"]


def test_batches_match_single_requests(server: InferenceServer) -> None:
    instances = [{"in0": [2 + (i % 30), 3 + (i % 7), 4 + (i % 11)][: 1 + i % 3]} for i in range(MAX_INSTANCES)]
    status, text = invoke(server, {"instances": instances})
    assert status == 200
    batched = [item["embeddings"] for item in json.loads(text)["predictions"]]
    for index in (0, 1, 17, MAX_INSTANCES - 1):
        _, single = invoke(server, {"instances": [instances[index]]})
        assert json.loads(single)["predictions"][0]["embeddings"] == pytest.approx(batched[index], abs=1e-5)


def test_long_inputs_are_truncated(server: InferenceServer, loaded: LoadedModel) -> None:
    limit = loaded.config.enc0.max_seq_len
    ids = [2 + i % 20 for i in range(limit)]
    _, exact = invoke(server, {"instances": [{"in0": ids}]})
    _, longer = invoke(server, {"instances": [{"in0": ids + [5] * 30}]})
    assert json.loads(exact) == json.loads(longer)
    _, capped = invoke(server, {"instances": [{"in0": ids}]}, "application/json; infer_max_seqlens=2,2")
    _, two = invoke(server, {"instances": [{"in0": ids[:2]}]})
    assert json.loads(capped) == json.loads(two)


BAD_PAYLOADS = [
    ("not json", "{", "application/json", 400, "not valid JSON"),
    ("not an object", "[1, 2]", "application/json", 400, '{"instances": [...]}'),
    ("instances not a list", {"instances": {"in0": [1]}}, "application/json", 400, '{"instances": [...]}'),
    ("unknown top-level field", {"instances": [{"in0": [1]}], "configuration": {}}, "application/json", 400,
     "unknown request field(s) configuration"),
    ("no instances", {"instances": []}, "application/json", 400, "no instances"),
    ("instance not an object", {"instances": [[1, 2]]}, "application/json", 400, "instance 0: must be a JSON object"),
    ("missing input", {"instances": [{"in0": [1]}, {}]}, "application/json", 400, "instance 1: needs in0, in1 or both"),
    ("only unknown inputs", {"instances": [{"in2": [1]}]}, "application/json", 400,
     "instance 0: needs in0, in1 or both"),
    ("strings", {"instances": [{"in0": ["a", "cat"]}]}, "application/json", 400,
     "instance 0: in0 must hold integer token ids; found 'a'"),
    ("floats", {"instances": [{"in0": [1.5]}]}, "application/json", 400, "in0 must hold integer token ids"),
    ("booleans", {"instances": [{"in0": [True]}]}, "application/json", 400, "in0 must hold integer token ids"),
    ("not a list", {"instances": [{"in0": 5}]}, "application/json", 400, "in0 must be a non-empty list"),
    ("empty list", {"instances": [{"in0": []}]}, "application/json", 400, "in0 must be a non-empty list"),
    ("id outside vocab", {"instances": [{"in0": [1, 10_000_000]}]}, "application/json", 400,
     "instance 0: in0 token id 10000000 is outside the vocabulary"),
    ("negative id", {"instances": [{"in1": [-1]}]}, "application/json", 400, "in1 token id -1 is outside"),
    ("bad jsonlines line", '{"in0": [1]}\n{oops\n', "application/jsonlines", 400, "line 2: not valid JSON"),
    ("more output than the memory bound", {"instances": [{"in0": [1]}] * (MAX_INSTANCES + 1)}, "application/json",
     413, f"{MAX_INSTANCES + 1} instances would return {(MAX_INSTANCES + 1) * ENC_DIM} numbers; this server answers "
          f"at most {MAX_INSTANCES * ENC_DIM} per request (--max-output-values"),
    ("oversized body", {"instances": [{"in0": [1] * (MAX_BODY // 2)}]}, "application/json", 413,
     f"exceeds max_body of {MAX_BODY}"),  # answered by waitress itself, in plain text
    ("unsupported content type", "1,2,3", "text/csv", 415, "Content-Type 'text/csv' is not supported"),
    ("bad infer_max_seqlens", {"instances": [{"in0": [1]}]}, "application/json; infer_max_seqlens=0,x", 400,
     "infer_max_seqlens"),
    ("not utf-8", "\udcff", "application/json", 400, "not valid UTF-8"),
    # These two were 500s (RecursionError; ValueError past Python's 4300-digit limit).
    ("deeply nested json", '{"instances": [{"in0": ' + "[" * 5000 + "1" + "]" * 5000 + "}]}", "application/json",
     400, "JSON nested 5003 levels deep (counting every [ and {); the limit is 16"),
    ("deeply nested json lines", '{"in0": [1]}\n' + "[" * 3000 + "]" * 3000 + "\n", "application/jsonlines", 400,
     "line 2: JSON nested 3000 levels deep"),
    ("token id of thousands of digits", '{"instances": [{"in0": [' + "7" * 5000 + "]}]}", "application/json", 400,
     "an integer of 5000 digits (777777777777...); token ids have at most 18 digits"),
    ("token id just past the digit limit", {"instances": [{"in1": [10**18]}]}, "application/json", 400,
     "an integer of 19 digits"),
]


@pytest.mark.parametrize(("payload", "content_type", "status", "message"),
                         [case[1:] for case in BAD_PAYLOADS], ids=[case[0] for case in BAD_PAYLOADS])
def test_bad_payloads_get_a_clear_4xx_and_the_server_keeps_serving(
    server: InferenceServer, payload: object, content_type: str, status: int, message: str
) -> None:
    if payload == "\udcff":
        code, text, _ = request(server, "POST", "/invocations", b'{"instances": [{"in0": [1]}]}\xff',
                                {"Content-Type": content_type})
    else:
        code, text = invoke(server, payload, content_type)
    assert code == status, text
    assert message in (text if status == 413 else json.loads(text)["error"])
    healthy(server)


def test_unsupported_accept_and_methods(server: InferenceServer) -> None:
    code, text = invoke(server, {"instances": [{"in0": [1]}]}, accept="text/csv")
    assert code == 406 and "Accept 'text/csv' is not supported" in json.loads(text)["error"]
    assert request(server, "GET", "/invocations")[0] == 405
    assert request(server, "PUT", "/invocations", "{}", {"Content-Type": "application/json"})[0] == 405
    assert request(server, "GET", "/nothing")[0] == 404
    assert request(server, "POST", "/nothing", "{}")[0] == 404
    healthy(server)


def test_missing_content_length_and_truncated_body(server: InferenceServer) -> None:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as raw:
        raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 411")
    healthy(server)


def raw_exchange(server: InferenceServer, data: bytes, timeout: float = 3 * READ_TIMEOUT + 5) -> str:
    """Send ``data`` on a fresh connection, then read until the server closes it (or ``timeout``)."""
    host, port = server.server_address[:2]
    chunks = []
    with socket.create_connection((str(host), port), timeout=timeout) as raw:
        raw.sendall(data)
        try:
            while chunk := raw.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<no answer: the server kept the connection open>")
    return b"".join(chunks).decode(errors="replace")


POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(("head", "expected"), [
    (b"Content-Length: -1\r\n\r\n{}", "HTTP/1.1 400"),
    (b"Content-Length: abc\r\n\r\n{}", "HTTP/1.1 400"),
    (b"Content-Length: 1+1\r\n\r\n{}", "HTTP/1.1 400"),
])
def test_malformed_content_length_gets_400_not_a_hang(server: InferenceServer, head: bytes, expected: str) -> None:
    answer = raw_exchange(server, POST + head)
    assert answer.startswith(expected), answer
    assert "Content-Length is invalid" in answer
    healthy(server)


@pytest.mark.parametrize("data", [
    POST + b"Content-Length: 500\r\n\r\n" + b'{"instances": [{"in0": [1]}]}',  # fewer bytes than announced
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty",  # headers that stop midway
], ids=["content-length larger than the body", "headers cut short"])
def test_a_request_that_stops_arriving_gets_408(server: InferenceServer, data: bytes) -> None:
    answer = raw_exchange(server, data)
    assert answer.startswith("HTTP/1.1 408 Request Timeout"), answer
    assert f"did not arrive within {READ_TIMEOUT} s" in answer
    healthy(server)


def test_connections_are_capped_and_idle_ones_closed(loaded: LoadedModel) -> None:
    capped = InferenceServer(Predictor(loaded), "127.0.0.1", 0, quiet=True, max_connections=4, idle_timeout=3)
    capped.start_background()
    host, port = capped.server_address
    try:
        idle = [socket.create_connection((host, port), timeout=10) for _ in range(4)]
        time.sleep(1.5)  # the I/O loop notices the cap on its next pass
        waiting = socket.create_connection((host, port), timeout=1.5)  # queued in the listen backlog
        waiting.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(TimeoutError):
            waiting.recv(100)  # not served while 4 connections are open
        waiting.settimeout(15)
        # The idle connections are closed by the server after idle_timeout; then the queued one is served.
        assert idle[0].recv(100) == b""
        assert waiting.recv(100).startswith(b"HTTP/1.1 200")
        for item in [*idle, waiting]:
            item.close()
    finally:
        capped.shutdown()
        capped.server_close()


def test_embed_tokenizes_with_the_training_vocab(server: InferenceServer, loaded: LoadedModel,
                                                 served_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert loaded.assets.vocab is not None and loaded.assets.tokenizer is not None
    encoder = SentenceEncoder(loaded.assets.tokenizer, loaded.assets.vocab, loaded.config.enc0.vocab_size,
                              loaded.config.enc0.max_seq_len)
    sentence = "A man is playing a flute."
    ids = encoder.token_ids(sentence)
    assert ids == loaded.assets.vocab.encode(Tokenizer().tokenize(sentence))
    vectors = encoder.embed(LocalInvoker(server.url), [sentence, "A dog runs."], batch_size=1)
    _, direct = invoke(server, {"instances": [{"in0": ids}]})
    assert vectors[0] == json.loads(direct)["predictions"][0]["embeddings"]
    assert main(["embed", sentence, "Two dogs run.", "--model", str(served_model), "--url", server.url]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["sentence"] for line in lines] == [sentence, "Two dogs run."]
    assert lines[0]["embedding"] == pytest.approx(vectors[0], abs=1e-5)  # batched with another sentence
    assert len(lines[1]["embedding"]) == 24
    with pytest.raises(ValueError, match=r"sentence 3 \('   '\) has no tokens"):
        encoder.token_ids("   ", 2)


def test_embed_reports_errors_clearly(served_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    assert main(["embed", "hello", "--model", str(served_model), "--url", f"http://127.0.0.1:{free_port}"]) == 2
    assert "is `o2v serve` running?" in capsys.readouterr().err
    assert main(["embed", "hello", "--url", "http://127.0.0.1:9"]) == 2
    assert "no vocabulary" in capsys.readouterr().err


def test_embed_against_a_sagemaker_endpoint(loaded: LoadedModel) -> None:
    assert loaded.assets.vocab is not None
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    encoder = SentenceEncoder(Tokenizer(), loaded.assets.vocab)
    body = encoder.request(["A plane is taking off."])
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": _streaming(b'{"predictions": [{"embeddings": [0.5, 0.25]}]}'), "ContentType": "application/json"},
            {"EndpointName": "o2v-dev-embeddings", "Body": body, "ContentType": "application/json",
             "Accept": "application/json"},
        )
        vectors = encoder.embed(SageMakerInvoker(client, "o2v-dev-embeddings"), ["A plane is taking off."])
    assert vectors == [[0.5, 0.25]]


def _streaming(data: bytes) -> object:
    import io

    from botocore.response import StreamingBody

    return StreamingBody(io.BytesIO(data), len(data))


@pytest.mark.slow
def test_python_m_training_serving(served_model: Path, repo_root: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "training.serving", "--model", str(served_model), "--port",
                                str(port), "--quiet"], cwd=repo_root, env=dict(os.environ), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("POST", "/invocations", body=json.dumps({"instances": [{"in0": [2, 3]}]}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        assert len(json.loads(response.read())["predictions"][0]["embeddings"]) == 24
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
