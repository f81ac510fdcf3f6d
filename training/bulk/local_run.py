"""Bulk embedding in process: a corpus streamed through a ``model.tar.gz`` into a resumable output.

The model is loaded as ``o2v serve`` loads it (``training.model.artifact.load``) and called as the
server's :class:`~training.serving.predictor.Predictor` calls it (padding, truncation to the
encoder's length, batches sorted by length), so a sentence gets exactly the embedding ``o2v embed``
gets from ``o2v serve``; only the HTTP round trip and the per-sentence Python are left out
(``training.bulk.batches``: a part is embedded into one array and written a batch at a time).

Memory stays flat whatever the corpus size: records are read as a stream, one part
(``part_records`` records, their texts only) is held at a time, and its output lines are written
batch by batch as they are computed (``batch_size`` sentences per batch).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING

from training.bulk import DEFAULT_BATCH_SIZE, DEFAULT_PART_RECORDS
from training.bulk.batches import PartEmbedder, format_embeddings
from training.bulk.corpus import NO_KNOWN_TOKEN, Corpus, CorpusError, CorpusRecord, record_token_ids
from training.bulk.output import PartedOutput, PartsKey
from training.progress import Progress
from training.serving.client import SentenceEncoder

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from training.model.artifact import LoadedModel

@dataclass
class BulkResult:
    records: int = 0  # every record of the corpus read so far
    records_done: int = 0  # of those, written in this run or reused
    embedded: int = 0  # embedded in this run (finished parts of an earlier run are not counted)
    no_known_token: int = 0  # records written with "embedding": null (training/bulk/corpus.py)
    reused_parts: int = 0  # parts an earlier, interrupted run had finished
    parts: int = 0
    seconds: float = 0.0
    first_no_known_token: str | None = None  # where the first such record is, for the summary


def model_fingerprint(path: Path) -> str:
    """SHA-256 of the model's files (the archive, or a directory's files in name order)."""
    digest = hashlib.sha256()
    files = sorted(item for item in path.iterdir() if item.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(item.name.encode() + b"\0")
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class _Rate:
    """Progress on stderr: sentences done, sentences/s in this run, and an ETA from the input's size
    (bytes of text still to read over this run's bytes per second; none for a compressed input)."""

    def __init__(self, progress: Progress, total_bytes: int | None) -> None:
        self.progress = progress
        self.total_bytes = total_bytes
        self.started = time.monotonic()
        self.done_bytes = 0  # text bytes of every record handled, reused parts included
        self.embedded_bytes = 0  # of those, embedded in this run

    def advance(self, part: list[CorpusRecord], *, embedded: bool) -> None:
        size = sum(len(record.text.encode()) + 1 for record in part)  # + the line's end
        self.done_bytes += size
        if embedded:
            self.embedded_bytes += size

    def update(self, result: BulkResult, *, force: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        message = f"{result.records_done:,} sentences, {result.embedded / elapsed:,.0f} sentences/s"
        if self.total_bytes and self.embedded_bytes:
            remaining = max(self.total_bytes - self.done_bytes, 0) * elapsed / self.embedded_bytes
            message += f", {min(self.done_bytes / self.total_bytes, 1.0):.0%} of the input, ETA {_duration(remaining)}"
        self.progress.update(message, force=force)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def embed_corpus(corpus: Corpus, loaded: LoadedModel, encoder: SentenceEncoder, out: str, *,
                 model_id: str, side: str = "in0", batch_size: int = DEFAULT_BATCH_SIZE,
                 part_records: int = DEFAULT_PART_RECORDS, overwrite: bool = False, progress: Progress | None = None,
                 s3: S3Client | None = None) -> BulkResult:
    """Embed every record of ``corpus`` into ``out`` (a path or ``s3://bucket/key``); see the module
    docstring. Raises :class:`CorpusError` for bad input (finished parts stay for the rerun) and
    ``training.bulk.output.OutputError`` for an existing output without ``overwrite``."""
    if batch_size < 1 or part_records < 1:
        raise ValueError("batch size and part size must be at least 1")
    output = PartedOutput(out, PartsKey(corpus.fingerprint(), model_id, side, part_records),
                          overwrite=overwrite, s3=s3)
    embedder = PartEmbedder(loaded, side, batch_size)
    result = BulkResult()
    started = time.monotonic()
    # Local, uncompressed inputs give an ETA from bytes read; compressed ones and S3 objects report rate only.
    local = not corpus.sources[0].name.startswith("s3://")
    total = sum(source.size for source in corpus.sources) if local and not any(
        source.name.endswith(".gz") for source in corpus.sources) else None
    rate = _Rate(progress or Progress("embed", quiet=True), total)
    records = corpus.records()
    for index in itertools.count():
        part = list(itertools.islice(records, part_records))
        if not part:
            break
        result.records += len(part)
        result.parts += 1
        if output.is_finished(index):
            result.reused_parts += 1
            result.records_done += len(part)
            rate.advance(part, embedded=False)
            continue
        output.write_part(index, _lines(part, encoder, embedder, batch_size, result, rate))
    if result.records == 0:
        raise CorpusError(corpus.location, None, "no sentences in the corpus")
    output.publish(result.parts)
    result.seconds = time.monotonic() - started
    rate.update(result, force=True)
    return result


def _lines(part: list[CorpusRecord], encoder: SentenceEncoder, embedder: PartEmbedder, batch_size: int,
           result: BulkResult, rate: _Rate) -> Iterator[str]:
    """The output lines of one part: the part is tokenized and embedded (training/bulk/batches.py), then
    its lines are written a batch at a time, one string per batch."""
    ids = [record_token_ids(encoder, record) for record in part]
    vectors = embedder.embed(ids)
    for start in range(0, len(part), batch_size):
        batch = part[start:start + batch_size]
        numbers = iter(format_embeddings(vectors[start:start + len(batch)]))
        lines = []
        for record, found, values in zip(batch, ids[start:start + len(batch)], numbers, strict=True):
            if found is None:
                result.no_known_token += 1
                result.first_no_known_token = result.first_no_known_token or f"{record.source}:{record.line}"
            lines.append(line_text(record, values if found is not None else None))
        yield "".join(lines)
        result.embedded += len(batch)
        result.records_done += len(batch)
        rate.advance(batch, embedded=True)
        rate.update(result)


def line_text(record: CorpusRecord, numbers: str | None) -> str:
    """One output line: the record's key (``json.dumps(record_key(record))``'s text, by json's own
    string encoder without the dict round trip) and its numbers, or the no-known-token outcome."""
    if record.id is None:
        key = '{"text": ' + encode_basestring_ascii(record.text)
    elif isinstance(record.id, str):
        key = '{"id": ' + encode_basestring_ascii(record.id)
    else:
        key = '{"id": ' + int.__repr__(record.id)
    if numbers is None:
        return f'{key}, "embedding": null, "error": "{NO_KNOWN_TOKEN}"}}\n'
    return f'{key}, "embedding": [{numbers}]}}\n'
