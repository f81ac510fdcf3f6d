"""A corpus for bulk embedding: where it is, its records in order, and their Object2Vec ids.

Inputs (``o2v embed --corpus``):

* a local file: ``.jsonl`` / ``.jsonlines`` / ``.ndjson`` is JSON Lines, anything else is text
  with one sentence per line; a ``.gz`` suffix is decompressed on the fly (the format is then
  read from the suffix before it);
* ``s3://bucket/prefix``: every object under the prefix, in key order (ListObjectsV2 returns
  keys in UTF-8 binary order), each read by its own suffix as above. Keys ending in ``/``
  (console "folders") are skipped. boto3 resolves the endpoint, so local mode works through
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

Each line becomes one :class:`CorpusRecord` (source, 1-based line, the caller's id or None,
the text), streamed: a file or object is read in chunks, never whole. A JSON line's text is its
``text_field`` (default ``text``) and, when ``id_field`` is given, its id (a string or an
integer). Bad input raises :class:`CorpusError` naming ``source:line``: an empty (or blank)
line, text that is not UTF-8 or holds a NUL byte (the same per-line check as ``o2v prepare``),
a JSON line that is not a JSON object, lacks the text or id field or has the wrong type there,
and an input that does not exist or holds no object. A UTF-8 byte order mark before a source's
first line is dropped, and a line's ``\\r\\n`` ending counts as ``\\n``.

Tokenization is ``o2v embed``'s own (:class:`SentenceEncoder`: the model's tokenizer and
vocabulary, ids past the encoder's vocabulary size as ``<unk>``, truncation to its length). A
sentence with no known token (no token at all, or only ``<unk>`` within the encoder's length)
is a documented per-record outcome, not an error: one odd line must not stop a corpus of
millions. Its output line carries ``"embedding": null`` and ``"error": "no known token"``, and
the run counts them (:data:`NO_KNOWN_TOKEN`). The model's embedding of ``<unk>`` alone would
be the same vector for every such sentence, which a similarity search would match to each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.data.errors import DataError
from training.data.readers import check_line, gzip_errors, open_binary
from training.data.tokenizer import Tokenizer
from training.data.vocab import Vocab
from training.serving.client import SentenceEncoder

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

JSON_LINES_SUFFIXES = (".jsonl", ".jsonlines", ".ndjson")
NO_KNOWN_TOKEN = "no known token"
CHUNK_BYTES = 1 << 20  # read size of an S3 object: lines are split from 1 MiB chunks
S3_SCHEME = "s3://"


class CorpusError(DataError):
    """A corpus input cannot be read; ``str()`` reads ``source:line: problem``."""


class VocabularyMismatchError(ValueError):
    """The vocabulary does not belong to the model's encoder: its ids would index the wrong rows."""


@dataclass(frozen=True, slots=True)
class CorpusRecord:
    source: str  # a local path or s3://bucket/key
    line: int  # 1-based physical line of that source
    id: str | int | None  # the id field's value; None without --id-field
    text: str


@dataclass(frozen=True)
class Source:
    """One file or object of a corpus, with what identifies its content for resuming."""

    name: str
    size: int
    version: str  # local: the modification time in ns; S3: the ETag
    open_chunks: Callable[[], Iterator[bytes]]

    @property
    def json_lines(self) -> bool:
        return self.name.removesuffix(".gz").lower().endswith(JSON_LINES_SUFFIXES)


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``."""
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not bucket:
        raise CorpusError(uri, None, "an S3 location is s3://BUCKET/PREFIX")
    return bucket, key


@dataclass(frozen=True)
class Corpus:
    """The sources of ``location`` (listed once, at construction) and how to read their lines."""

    location: str
    sources: tuple[Source, ...]
    text_field: str = "text"
    id_field: str | None = None

    @classmethod
    def open(cls, location: str, *, text_field: str = "text", id_field: str | None = None,
             s3: S3Client | None = None) -> Corpus:
        sources = _s3_sources(location, s3) if is_s3(location) else (_local_source(Path(location)),)
        return cls(location, sources, text_field, id_field)

    def fingerprint(self) -> str:
        """Identifies this input as read: each source's name, size and version, and the fields read.
        A changed file (new mtime or ETag) gets a new fingerprint, so no finished part of it is reused."""
        listing = [[source.name, source.size, source.version] for source in self.sources]
        text = json.dumps({"sources": listing, "text_field": self.text_field, "id_field": self.id_field})
        return hashlib.sha256(text.encode()).hexdigest()

    def records(self) -> Iterator[CorpusRecord]:
        for source in self.sources:
            yield from _records(source, self.text_field, self.id_field)


def _local_source(path: Path) -> Source:
    if not path.is_file():
        raise CorpusError(path, None, "no such file" if not path.exists() else "not a file")
    stat = path.stat()

    def chunks() -> Iterator[bytes]:
        # open_binary decompresses .gz; iterating a binary file yields lines split at b"\n" only.
        with open_binary(path) as handle:
            yield from handle

    return Source(str(path), stat.st_size, str(stat.st_mtime_ns), chunks)


def _s3_sources(location: str, s3: S3Client | None) -> tuple[Source, ...]:
    bucket, prefix = split_s3(location)
    client = s3 if s3 is not None else _s3_client()
    sources: list[Source] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith("/"):
                    sources.append(Source(f"{S3_SCHEME}{bucket}/{key}", item.get("Size", 0), item.get("ETag", ""),
                                          _s3_chunks(client, bucket, key)))
    except client.exceptions.NoSuchBucket:
        raise CorpusError(location, None, f"no such bucket {bucket!r}") from None
    if not sources:
        raise CorpusError(location, None, "no object under this prefix")
    sources.sort(key=lambda source: source.name.encode())  # ListObjectsV2's order, kept whatever the pages
    return tuple(sources)


def _s3_client() -> S3Client:
    import boto3

    return boto3.client("s3")


def _s3_chunks(client: S3Client, bucket: str, key: str) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        if key.endswith(".gz"):
            import gzip

            with gzip.GzipFile(fileobj=body) as unzipped:
                yield from unzipped
        else:
            yield from body.iter_chunks(CHUNK_BYTES)

    return chunks


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines split at ``b"\\n"`` only (not at a lone ``\\r`` or U+2028), endings dropped."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _records(source: Source, text_field: str, id_field: str | None) -> Iterator[CorpusRecord]:
    number = 0
    json_lines = source.json_lines
    with gzip_errors(source.name, lambda: number + 1):
        for number, raw in enumerate(_lines(source.open_chunks()), start=1):
            raw = raw.removesuffix(b"\r")
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
            problem = check_line(source.name, number, raw, text)
            if problem is not None:
                raise CorpusError(source.name, number, problem.problem)
            if not text.strip():
                raise CorpusError(source.name, number, "empty line; every line must hold a sentence")
            if json_lines:
                yield _json_record(source.name, number, text, text_field, id_field)
            else:
                yield CorpusRecord(source.name, number, None, text)


def _json_record(name: str, number: int, line: str, text_field: str, id_field: str | None) -> CorpusRecord:
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, RecursionError, ValueError) as error:
        raise CorpusError(name, number, f"not valid JSON ({str(error)[:120]})") from None
    if not isinstance(item, dict):
        raise CorpusError(name, number, f"expected a JSON object with a {text_field!r} field")
    text = item.get(text_field)
    if text_field not in item:
        raise CorpusError(name, number, f"no {text_field!r} field (--text-field); fields: {', '.join(sorted(item))}")
    if not isinstance(text, str):
        raise CorpusError(name, number, f"field {text_field!r} must be a string, not {type(text).__name__}")
    if not text.strip():
        raise CorpusError(name, number, f"field {text_field!r} is empty")
    identifier: str | int | None = None
    if id_field is not None:
        if id_field not in item:
            raise CorpusError(name, number, f"no {id_field!r} field (--id-field); fields: {', '.join(sorted(item))}")
        identifier = item[id_field]
        if isinstance(identifier, bool) or not isinstance(identifier, str | int):
            raise CorpusError(name, number, f"field {id_field!r} must be a string or an integer")
    return CorpusRecord(name, number, identifier, text)


def corpus_encoder(vocab: Vocab, tokenizer: Tokenizer | None, vocab_size: int | None, max_seq_len: int | None,
                   *, model_vocab: Vocab | None = None, where: str = "the model") -> SentenceEncoder:
    """``o2v embed``'s tokenizer for the corpus, after the model/vocabulary check: a vocabulary with
    more ids than the encoder has rows, or one that differs from the vocabulary the model carries,
    would give ids of other tokens (``o2v embed`` silently maps ids past the size to ``<unk>``; a
    whole corpus embedded that way is wasted, so the bulk path refuses)."""
    if model_vocab is not None and dict(model_vocab.token_to_id) != dict(vocab.token_to_id):
        raise VocabularyMismatchError(f"the vocabulary given ({len(vocab)} tokens) is not the one {where} was "
                                      f"trained with ({len(model_vocab)} tokens); leave out --vocab to use the "
                                      "model's")
    if vocab_size is not None and len(vocab) > vocab_size:
        raise VocabularyMismatchError(f"the vocabulary has {len(vocab)} tokens but {where}'s encoder has "
                                      f"{vocab_size} (enc0_vocab_size); it is not this model's vocabulary")
    return SentenceEncoder(tokenizer or Tokenizer(), vocab, vocab_size, max_seq_len)


def record_token_ids(encoder: SentenceEncoder, record: CorpusRecord) -> list[int] | None:
    """The record's ``in0``/``in1`` ids, or None for a sentence with no known token (module docstring)."""
    return encoder.known_token_ids(record.text)


def record_key(record: CorpusRecord) -> dict[str, str | int]:
    """What an output line says the embedding is of: the caller's id, or else the sentence."""
    return {"id": record.id} if record.id is not None else {"text": record.text}
