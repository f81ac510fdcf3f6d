"""``o2v embed --corpus ... --model``: a corpus embedded in process with a real (tiny) trained model.

Order and ids are kept, the embeddings are ``o2v embed``'s, a sentence with no known token gets its
documented line, an existing output is refused without ``--overwrite``, an interrupt (Ctrl-C in
process, SIGKILL of the command) leaves no final file and the rerun reuses the finished parts, and
S3 works for input and output against a moto server."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest

from training.bulk.corpus import Corpus, corpus_encoder
from training.bulk.local_run import embed_corpus, model_fingerprint
from training.bulk.output import LOCAL_DATA, PARTS_SUFFIX, local_finished_parts
from training.cli import main
from training.model.artifact import LoadedModel, load
from training.serving.client import SentenceEncoder
from training.serving.predictor import Predictor
from training.serving.server import InferenceServer

SENTENCES = ["A man is playing a flute.", "A woman is slicing an onion.", "Two dogs run on the grass.",
             "A man plays the guitar.", "The cat sits on the mat.", "A plane is taking off.",
             "Someone is cooking.", "A boy rides a bike.", "Kids play in the park.", "A dog barks."]
UNKNOWN = "Qwxzv plorthk"  # no token of it is in the STS-B slice's vocabulary


@pytest.fixture(scope="module")
def loaded(served_model: Path) -> LoadedModel:
    return load(served_model)


@pytest.fixture(scope="module")
def server_url(loaded: LoadedModel) -> Iterator[str]:
    """``o2v serve``'s server, for what ``o2v embed`` answers today."""
    instance = InferenceServer(Predictor(loaded), "127.0.0.1", 0, quiet=True)
    instance.start_background()
    try:
        yield instance.url
    finally:
        instance.shutdown()
        instance.server_close()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def embed(*args: str) -> int:
    return main(["embed", *args])


def test_a_jsonl_corpus_comes_out_in_order_with_its_ids_and_o2v_embeds_embeddings(
        tmp_path: Path, served_model: Path, server_url: str, loaded: LoadedModel,
        capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"body": text, "doc": f"d{index}"}) + "\n"
                              for index, text in enumerate(SENTENCES)))
    out = tmp_path / "out.jsonl"
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model), "--text-field", "body",
                 "--id-field", "doc", "--batch-size", "10") == 0
    lines = read_lines(out)
    assert [line["id"] for line in lines] == [f"d{index}" for index in range(len(SENTENCES))]
    assert "10 sentences -> " in capsys.readouterr().err
    assert not (tmp_path / ("out.jsonl" + PARTS_SUFFIX)).exists()
    # o2v embed through o2v serve, for the same sentences
    assert embed(*SENTENCES, "--model", str(served_model), "--url", server_url) == 0
    today = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The same batch as o2v embed's one request, so the very same float32 values (9 digits give them back)
    assert np.array_equal(np.array([line["embedding"] for line in lines], dtype=np.float32),
                          np.array([line["embedding"] for line in today], dtype=np.float32))


def test_input_in1_embeds_with_the_second_encoder_as_o2v_embed_does(
        tmp_path: Path, served_model: Path, server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_text("\n".join(SENTENCES[:4]) + "\n")
    out = tmp_path / "out.jsonl"
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model), "--input", "in1") == 0
    assert embed(*SENTENCES[:4], "--model", str(served_model), "--url", server_url, "--input", "in1") == 0
    today = [json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()]
    ours = [line["embedding"] for line in read_lines(out)]
    assert np.array_equal(np.array(ours, dtype=np.float32), np.array(today, dtype=np.float32))
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model), "--overwrite") == 0
    assert not np.allclose(np.array([line["embedding"] for line in read_lines(out)], dtype=np.float32),
                           np.array(ours, dtype=np.float32))  # in0 is another encoder (hcnn, not bilstm)


def test_a_text_corpus_carries_each_sentence_and_a_sentence_with_no_known_token_gets_null(
        tmp_path: Path, served_model: Path, loaded: LoadedModel, capsys: pytest.CaptureFixture[str]) -> None:
    assert SentenceEncoder.of_model(loaded.assets).known_token_ids(UNKNOWN) is None
    corpus = tmp_path / "s.txt"
    corpus.write_text("\n".join([SENTENCES[0], UNKNOWN, SENTENCES[1]]) + "\n")
    out = tmp_path / "out.jsonl"
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model)) == 0
    lines = read_lines(out)
    assert [line["text"] for line in lines] == [SENTENCES[0], UNKNOWN, SENTENCES[1]]
    assert lines[1] == {"text": UNKNOWN, "embedding": None, "error": "no known token"}
    assert isinstance(lines[0]["embedding"], list) and len(lines[0]["embedding"]) == 24
    assert f"1 sentences have no known token (first at {corpus}:2)" in capsys.readouterr().err


def test_an_existing_output_is_refused_unless_overwrite(tmp_path: Path, served_model: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_text("\n".join(SENTENCES[:3]) + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model)) == 2
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model), "--overwrite") == 0
    assert len(read_lines(out)) == 3


@pytest.mark.parametrize(("content", "problem"), [
    (b"A man plays.\n\nA dog.\n", ":2: empty line"),
    (b"A man plays.\nA \xff dog.\n", ":2: not valid UTF-8"),
])
def test_bad_input_names_file_and_line_and_writes_no_output(tmp_path: Path, served_model: Path, content: bytes,
                                                            problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_bytes(content)
    out = tmp_path / "out.jsonl"
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model)) == 2
    assert f"{corpus}{problem}" in capsys.readouterr().err
    assert not out.exists()


def test_corpus_options_that_do_not_go_together_are_refused(tmp_path: Path, served_model: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_text("A man plays.\n")
    assert embed("--corpus", str(corpus), "--model", str(served_model)) == 2
    assert "--corpus needs --out" in capsys.readouterr().err
    assert embed("--corpus", str(corpus), "--out", str(tmp_path / "o.jsonl")) == 2
    assert "--corpus needs --model" in capsys.readouterr().err
    assert embed("A sentence.", "--out", str(tmp_path / "o.jsonl"), "--model", str(served_model)) == 2
    assert "--out and --overwrite go with --corpus" in capsys.readouterr().err


def test_a_missing_input_and_a_vocabulary_of_another_model_are_refused(
        tmp_path: Path, served_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    assert embed("--corpus", str(tmp_path / "none.txt"), "--out", str(out), "--model", str(served_model)) == 2
    assert "none.txt: no such file" in capsys.readouterr().err
    corpus = tmp_path / "s.txt"
    corpus.write_text("A man plays.\n")
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"<pad>": 0, "<unk>": 1, "man": 2, "a": 3}))
    assert embed("--corpus", str(corpus), "--out", str(out), "--model", str(served_model), "--vocab", str(vocab)) == 2
    assert "is not the one" in capsys.readouterr().err and not out.exists()


def _interrupting(corpus: Corpus, after_lines: int) -> Corpus:
    """``corpus`` whose input raises KeyboardInterrupt (Ctrl-C) once ``after_lines`` lines were read."""
    source = corpus.sources[0]

    def chunks() -> Iterator[bytes]:
        count = 0
        for chunk in source.open_chunks():
            for line in chunk.splitlines(keepends=True):
                if count == after_lines:
                    raise KeyboardInterrupt
                count += 1
                yield line

    return dataclasses.replace(corpus, sources=(dataclasses.replace(source, open_chunks=chunks),))


def test_a_rerun_after_an_interrupt_reuses_the_finished_parts(tmp_path: Path, served_model: Path,
                                                              loaded: LoadedModel) -> None:
    corpus_path = tmp_path / "s.txt"
    corpus_path.write_text("\n".join(SENTENCES * 3) + "\n")  # 30 records: parts of 7 -> 5 parts
    out, reference = tmp_path / "out.jsonl", tmp_path / "reference.jsonl"
    encoder = _encoder(loaded)
    model_id = model_fingerprint(served_model)
    corpus = Corpus.open(str(corpus_path))
    embed_corpus(corpus, loaded, encoder, str(reference), model_id=model_id, part_records=7)
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(_interrupting(corpus, 17), loaded, encoder, str(out), model_id=model_id, part_records=7)
    parts = tmp_path / ("out.jsonl" + PARTS_SUFFIX)
    assert not out.exists()
    finished = local_finished_parts(out)
    assert [name for name, _ in finished] == ["part-000000.jsonl", "part-000001.jsonl"]
    assert not [path for path in parts.iterdir() if path.name.startswith(".")]  # no temporary left
    assert (parts / LOCAL_DATA).stat().st_size == finished[-1][1]  # the interrupted part's lines are cut off
    time.sleep(0.01)
    result = embed_corpus(corpus, loaded, encoder, str(out), model_id=model_id, part_records=7)
    assert (result.reused_parts, result.embedded, result.records) == (2, 30 - 14, 30)
    assert out.read_bytes() == reference.read_bytes()
    assert not parts.exists()


def test_parts_of_another_model_are_not_reused(tmp_path: Path, served_model: Path, loaded: LoadedModel,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus_path = tmp_path / "s.txt"
    corpus_path.write_text("\n".join(SENTENCES) + "\n")
    corpus, out = Corpus.open(str(corpus_path)), tmp_path / "out.jsonl"
    encoder = _encoder(loaded)
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(_interrupting(corpus, 6), loaded, encoder, str(out), model_id="another", part_records=3)
    result = embed_corpus(corpus, loaded, encoder, str(out), model_id=model_fingerprint(served_model),
                          part_records=3)
    assert (result.reused_parts, result.embedded) == (0, 10)
    assert "holds parts of another input or model; removing them" in capsys.readouterr().err


def _encoder(loaded: LoadedModel) -> SentenceEncoder:
    assets = loaded.assets
    assert assets.vocab is not None
    return corpus_encoder(assets.vocab, assets.tokenizer, assets.config.enc0.vocab_size,
                          assets.config.enc0.max_seq_len)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_command_leaves_no_output_and_the_rerun_finishes_it(tmp_path: Path, served_model: Path,
                                                                     repo_root: Path, signal_number: int) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_text("\n".join(SENTENCES * 400) + "\n")  # 4,000 records in parts of 100
    out = tmp_path / "out.jsonl"
    parts = tmp_path / ("out.jsonl" + PARTS_SUFFIX)
    command = [sys.executable, "-m", "training.cli", "embed", "--corpus", str(corpus), "--out", str(out),
               "--model", str(served_model), "--part-size", "100", "--batch-size", "10"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(repo_root / "lambdas")])}
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(local_finished_parts(out)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal_number)
    expected = -signal.SIGKILL if signal_number == signal.SIGKILL else 128 + signal.SIGTERM  # Terminated: 143
    assert process.wait() == expected
    assert not out.exists()
    recorded = local_finished_parts(out)
    if signal_number == signal.SIGTERM:  # the part being written is removed, as on Ctrl-C
        assert not [path.name for path in parts.iterdir() if path.name.startswith(".")]
        assert (parts / LOCAL_DATA).stat().st_size == recorded[-1][1]
    finished = len(recorded)
    assert 2 <= finished < 40
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=True)
    assert f"{finished} of 40 parts reused from the interrupted run" in rerun.stderr
    assert len(read_lines(out)) == 4000 and not parts.exists()


def test_an_s3_corpus_is_embedded_into_an_s3_output(s3_bucket: str, served_model: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="corpus/a.txt", Body="\n".join(SENTENCES[:4]).encode())
    s3.put_object(Bucket=s3_bucket, Key="corpus/b.jsonl", Body=b'{"text": "A dog barks."}\n')
    out = f"s3://{s3_bucket}/embeddings/out.jsonl"
    assert embed("--corpus", f"s3://{s3_bucket}/corpus/", "--out", out, "--model", str(served_model),
                 "--part-size", "2") == 0
    body = s3.get_object(Bucket=s3_bucket, Key="embeddings/out.jsonl")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["text"] for line in lines] == [*SENTENCES[:4], "A dog barks."]
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket, Prefix="embeddings/").get("Contents", [])]
    assert keys == ["embeddings/out.jsonl"]  # the parts are gone
    local = tmp_path / "local.jsonl"
    assert embed("--corpus", f"s3://{s3_bucket}/corpus/", "--out", str(local), "--model", str(served_model),
                 "--part-size", "2") == 0
    assert local.read_text() == body  # the same batches give the same bytes
    assert embed("--corpus", f"s3://{s3_bucket}/corpus/", "--out", out, "--model", str(served_model)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_an_interrupted_s3_run_shows_no_output_and_resumes(s3_bucket: str, served_model: Path,
                                                           loaded: LoadedModel) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="corpus/a.txt", Body="\n".join(SENTENCES).encode())
    corpus = Corpus.open(f"s3://{s3_bucket}/corpus/")
    encoder = _encoder(loaded)
    out = f"s3://{s3_bucket}/out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(_interrupting(corpus, 7), loaded, encoder, out, model_id="m", part_records=3)
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    assert "out.jsonl" not in keys
    assert {"out.jsonl.parts/part-000000.jsonl", "out.jsonl.parts/part-000001.jsonl"} <= keys
    result = embed_corpus(corpus, loaded, encoder, out, model_id="m", part_records=3)
    assert (result.reused_parts, result.embedded) == (2, 4)
    body = s3.get_object(Bucket=s3_bucket, Key="out.jsonl")["Body"].read().decode()
    assert [json.loads(line)["text"] for line in body.splitlines()] == SENTENCES


def test_an_interrupt_between_a_parts_fsync_and_its_record_cuts_the_part_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The window SIGTERM hit once in CI: the part's bytes were durable, the ledger not yet renamed.
    import contextlib

    import training.bulk.output as output

    store = output._LocalStore(tmp_path / "out.jsonl")
    store.parts.mkdir(parents=True)
    store.write_part("part-00000", ['{"text": "a"}\n'])

    @contextlib.contextmanager
    def interrupted(path: Path) -> Iterator[Path]:
        raise KeyboardInterrupt
        yield path  # pragma: no cover

    monkeypatch.setattr(output, "atomic_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.write_part("part-00001", ['{"text": "b"}\n'])
    assert [name for name, _ in local_finished_parts(tmp_path / "out.jsonl")] == ["part-00000"]
    assert (store.parts / LOCAL_DATA).stat().st_size == len('{"text": "a"}\n')
