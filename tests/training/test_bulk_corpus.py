"""The corpus reader of ``o2v embed --corpus``: records in order with their ids, each bad input
named by ``source:line``, S3 prefixes in key order (moto server), and ``o2v embed``'s tokenization."""

from __future__ import annotations

import gzip
from pathlib import Path

import boto3
import pytest

from training.bulk.corpus import (
    Corpus,
    CorpusError,
    VocabularyMismatchError,
    corpus_encoder,
    record_key,
    record_token_ids,
)
from training.data.tokenizer import Tokenizer
from training.data.vocab import Vocab
from training.serving.client import SentenceEncoder


def records(path: Path | str, *, text_field: str = "text",
            id_field: str | None = None) -> list[tuple[str, int, str | int | None, str]]:
    corpus = Corpus.open(str(path), text_field=text_field, id_field=id_field)
    return [(record.source, record.line, record.id, record.text) for record in corpus.records()]


def test_a_text_file_gives_one_record_per_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sentences.txt"
    path.write_bytes("\ufeffA man plays.\r\nA woman sings.\nÜber alles\n".encode())
    assert records(path) == [(str(path), 1, None, "A man plays."), (str(path), 2, None, "A woman sings."),
                             (str(path), 3, None, "Über alles")]


def test_a_json_lines_file_carries_the_named_text_and_id_fields(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"body": "first", "key": "a-1"}\n{"body": "second", "key": 7, "other": null}\n')
    assert records(path, text_field="body", id_field="key") == [(str(path), 1, "a-1", "first"),
                                                                (str(path), 2, 7, "second")]
    assert record_key(next(Corpus.open(str(path), text_field="body").records())) == {"text": "first"}


def test_a_gzipped_file_is_read_by_the_suffix_before_gz(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "zipped"}\n'))
    assert records(path) == [(str(path), 1, None, "zipped")]


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("s.txt", b"one\n\nthree\n", ":2: empty line"),
    ("s.txt", b"one\n   \n", ":2: empty line"),
    ("s.txt", b"one\ntwo\xff\n", ":2: not valid UTF-8"),
    ("s.txt", b"one\nt\x00wo\n", ":2: contains a NUL byte"),
    ("s.jsonl", b'{"text": "ok"}\n{"words": "no text"}\n', ":2: no 'text' field (--text-field); fields: words"),
    ("s.jsonl", b'{"text": "ok"}\n{"text": \n', ":2: not valid JSON"),
    ("s.jsonl", b'["text"]\n', ":1: expected a JSON object"),
    ("s.jsonl", b'{"text": 3}\n', ":1: field 'text' must be a string"),
    ("s.jsonl", b'{"text": " "}\n', ":1: field 'text' is empty"),
    ("s.jsonl", b'[' * 100000 + b'\n', ":1: not valid JSON"),
])
def test_each_bad_line_is_an_error_naming_its_file_and_line(tmp_path: Path, name: str, content: bytes,
                                                            problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError) as raised:
        records(path)
    assert str(raised.value).startswith(str(path) + problem)


def test_a_missing_id_field_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a", "id": 1}\n{"text": "b"}\n{"text": "c", "id": true}\n')
    with pytest.raises(CorpusError, match=r"s\.jsonl:2: no 'id' field"):
        records(path, id_field="id")
    path.write_text('{"text": "c", "id": true}\n')
    with pytest.raises(CorpusError, match=r"s\.jsonl:1: field 'id' must be a string or an integer"):
        records(path, id_field="id")


def test_an_input_that_does_not_exist_is_an_error_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nothing\.txt: no such file"):
        Corpus.open(str(tmp_path / "nothing.txt"))
    with pytest.raises(CorpusError, match="not a file"):
        Corpus.open(str(tmp_path))


def test_the_fingerprint_changes_with_the_content_and_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a"}\n')
    first = Corpus.open(str(path)).fingerprint()
    assert Corpus.open(str(path)).fingerprint() == first
    assert Corpus.open(str(path), text_field="body").fingerprint() != first
    path.write_text('{"text": "ab"}\n')
    assert Corpus.open(str(path)).fingerprint() != first


def test_an_s3_prefix_is_read_object_by_object_in_key_order(s3_bucket: str) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in/b.txt", Body=b"third\nfourth\n")
    s3.put_object(Bucket=s3_bucket, Key="in/a.jsonl", Body=b'{"text": "first"}\n{"text": "second"}')
    s3.put_object(Bucket=s3_bucket, Key="in/", Body=b"")
    s3.put_object(Bucket=s3_bucket, Key="other/c.txt", Body=b"not this\n")
    found = records(f"s3://{s3_bucket}/in/")
    assert [(line, text) for _, line, _, text in found] == [(1, "first"), (2, "second"), (1, "third"),
                                                            (2, "fourth")]
    assert found[0][0] == f"s3://{s3_bucket}/in/a.jsonl"


def test_a_bad_s3_line_and_an_empty_prefix_are_named(s3_bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="in/a.txt", Body=b"fine\n\xc3\n")
    with pytest.raises(CorpusError, match=rf"s3://{s3_bucket}/in/a\.txt:2: not valid UTF-8"):
        records(f"s3://{s3_bucket}/in/")
    with pytest.raises(CorpusError, match="no object under this prefix"):
        Corpus.open(f"s3://{s3_bucket}/none/")
    with pytest.raises(CorpusError, match="no such bucket"):
        Corpus.open(f"s3://{s3_bucket}-missing/in/")


VOCAB = Vocab({"<pad>": 0, "<unk>": 1, "a": 2, "man": 3, "plays": 4, ".": 5})


def test_tokenization_is_o2v_embeds_and_a_sentence_with_no_known_token_gets_none(tmp_path: Path) -> None:
    encoder = corpus_encoder(VOCAB, None, 6, 4)
    path = tmp_path / "s.txt"
    path.write_text("A man plays the flute.\nzebra quux\n")
    first, unknown = Corpus.open(str(path)).records()
    expected = SentenceEncoder(Tokenizer(), VOCAB, 6, 4).token_ids(first.text)
    assert record_token_ids(encoder, first) == expected == [2, 3, 4, 1]
    assert record_token_ids(encoder, unknown) is None


def test_a_vocabulary_that_is_not_the_models_is_refused() -> None:
    with pytest.raises(VocabularyMismatchError, match="has 6 tokens but the model's encoder has 5"):
        corpus_encoder(VOCAB, None, 5, 4)
    other = Vocab({**VOCAB.token_to_id, "plays": 5, ".": 4})
    with pytest.raises(VocabularyMismatchError, match="not the one the model was trained with"):
        corpus_encoder(other, None, 6, 4, model_vocab=VOCAB)


def test_records_are_streamed_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("first\n\n")  # the error on line 2 comes only after line 1 was handed out
    stream = Corpus.open(str(path)).records()
    assert next(stream).text == "first"
    with pytest.raises(CorpusError):
        next(stream)
