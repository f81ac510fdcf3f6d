"""The output of ``o2v embed --corpus``: one JSON line per input record, in input order, written so
that an interrupt loses no finished work and never leaves a half-written file under the final name.

Design (resumable in fixed-size parts):

* The records are cut into parts of ``part_records`` consecutive records (part ``k`` holds records
  ``k*N .. k*N+N-1``), written in order. Locally each part is appended to one file,
  ``<out>.parts/output.partial``, made durable (fsync), and then recorded with the offset where it
  ends in ``<out>.parts/finished.json`` (replaced atomically); the bytes of a part that was not
  recorded (an interrupt) are cut off before the next part is written. On S3 each part is put as one
  object ``<out>.parts/part-<k>.jsonl`` (an object appears whole or not at all), so a part that
  exists is a finished part.
* ``<out>.parts/manifest.json`` holds the key the parts belong to: the input's fingerprint (each
  source's name, size and mtime or ETag, and the fields read; :meth:`Corpus.fingerprint`), the
  model's (a SHA-256 of its files), the encoder input and ``part_records``. A rerun with the same
  key skips the finished parts (it still reads their records, to keep its place, but does not
  tokenize or embed them); with a different key the old parts cannot be reused and are removed
  (said on stderr).
* When every part is written, the output appears under ``<out>`` in one step: locally the parts'
  file is renamed to it (the same file system; no copy of the gigabytes a large corpus makes); on
  S3 the parts are concatenated by a multipart upload, which makes the object visible only when it
  completes. Then the parts go.
* An existing ``<out>`` is refused before any work unless ``overwrite``; it stays in place until the
  new output replaces it.

Two runs writing the same ``<out>`` at once are not supported (they would share the parts).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from training.atomic import atomic_file
from training.bulk.corpus import is_s3, split_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

FORMAT = "o2v-bulk-parts/2"  # 2: a local output's parts are one file (_LocalStore)
MANIFEST = "manifest.json"
PARTS_SUFFIX = ".parts"
LOCAL_DATA = "output.partial"
LOCAL_LEDGER = "finished.json"
COPY_BYTES = 8 << 20  # the multipart upload's part size reads in these


class OutputError(ValueError):
    """The output cannot be written as asked (it exists, or the location is not usable)."""


@dataclass(frozen=True)
class PartsKey:
    """What finished parts belong to; a rerun reuses them only when all of it is the same."""

    input_fingerprint: str
    model_fingerprint: str
    side: str
    part_records: int

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "input": self.input_fingerprint, "model": self.model_fingerprint,
                "side": self.side, "part_records": self.part_records}


class _Store(Protocol):
    """Where the parts and the final output live: a local directory or an S3 prefix."""

    def target_exists(self) -> bool: ...
    def read_manifest(self) -> str | None: ...
    def write_manifest(self, text: str) -> None: ...
    def part_names(self) -> set[str]: ...
    def write_part(self, name: str, lines: Iterable[str]) -> None: ...
    def publish(self, names: list[str]) -> None: ...
    def remove_parts(self) -> None: ...


def part_name(index: int) -> str:
    return f"part-{index:06d}.jsonl"


class PartedOutput:
    """The resumable writer; see the module docstring."""

    def __init__(self, location: str, key: PartsKey, *, overwrite: bool = False, s3: S3Client | None = None) -> None:
        self.location = location
        self.key = key
        self.store: _Store = _S3Store(location, s3) if is_s3(location) else _LocalStore(Path(location))
        if self.store.target_exists() and not overwrite:
            raise OutputError(f"{location} already exists; pass --overwrite to replace it")
        self.finished = self._resume()

    def _resume(self) -> set[int]:
        wanted = json.dumps(self.key.to_json(), sort_keys=True)
        found = self.store.read_manifest()
        if found is not None and found != wanted:
            print(f"embed: {self.location}{PARTS_SUFFIX} holds parts of another input or model; removing them",
                  file=sys.stderr)
            self.store.remove_parts()
            found = None
        if found is None:
            self.store.write_manifest(wanted)
            return set()
        return {int(name.removeprefix("part-").removesuffix(".jsonl")) for name in self.store.part_names()
                if name.startswith("part-") and name.endswith(".jsonl")}

    def is_finished(self, index: int) -> bool:
        return index in self.finished

    def write_part(self, index: int, lines: Iterable[str]) -> None:
        self.store.write_part(part_name(index), lines)
        self.finished.add(index)

    def publish(self, part_count: int) -> None:
        """All parts ``0..part_count-1`` -> the final output, in one step; then the parts are removed."""
        missing = [index for index in range(part_count) if index not in self.finished]
        if missing:
            raise OutputError(f"parts {missing[:5]} of {self.location} are missing; nothing was published")
        self.store.publish([part_name(index) for index in range(part_count)])
        self.store.remove_parts()


class _LocalStore:
    """Parts appended to one file, ``<out>.parts/output.partial``, with ``finished.json`` listing each
    finished part and where it ends; publishing renames that file to ``<out>`` (no copy: a million
    lines are 2 GB)."""

    def __init__(self, target: Path) -> None:
        if target.is_dir():
            raise OutputError(f"{target} is a directory; --out names the output file")
        self.target = target
        self.parts = target.with_name(target.name + PARTS_SUFFIX)
        self.data = self.parts / LOCAL_DATA
        self.ledger = self.parts / LOCAL_LEDGER

    def target_exists(self) -> bool:
        return self.target.exists()

    def read_manifest(self) -> str | None:
        path = self.parts / MANIFEST
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_manifest(self, text: str) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.parts / MANIFEST) as staging:
            staging.write_text(text, encoding="utf-8")

    def _finished(self) -> list[tuple[str, int]]:
        if not self.ledger.is_file():
            return []
        return [(name, end) for name, end in json.loads(self.ledger.read_text(encoding="utf-8"))]

    def part_names(self) -> set[str]:
        return {name for name, _ in self._finished()}

    def write_part(self, name: str, lines: Iterable[str]) -> None:
        """Appends the part after the last finished one (bytes of a part an interrupt cut short are
        cut off first, and again if this one is interrupted), makes it durable, then records it."""
        finished = self._finished()
        start = finished[-1][1] if finished else 0
        descriptor = os.open(self.data, os.O_RDWR | os.O_CREAT, 0o666)
        with open(descriptor, "r+b", buffering=COPY_BYTES) as handle:
            handle.truncate(start)
            handle.seek(start)
            try:
                for line in lines:
                    handle.write(line.encode())
                handle.flush()
                os.fsync(handle.fileno())
                end = handle.tell()
            except BaseException:
                with contextlib.suppress(OSError):
                    handle.truncate(start)
                raise
        try:
            with atomic_file(self.ledger) as staging:
                staging.write_text(json.dumps([*finished, (name, end)]), encoding="utf-8")
        except BaseException:
            # Interrupted between the data's fsync and the ledger's rename (SIGTERM, Ctrl-C): the
            # part is not recorded, so its bytes go too, as for an interrupt while writing them.
            # Never cut bytes the ledger already records (the rename may have happened).
            if name not in self.part_names():
                with contextlib.suppress(OSError), open(self.data, "r+b") as handle:
                    handle.truncate(start)
            raise

    def publish(self, names: list[str]) -> None:
        if [name for name, _ in self._finished()] != names:
            raise OutputError(f"{self.parts} does not hold parts {names[0]}..{names[-1]} in order; nothing was "
                              "published")
        os.replace(self.data, self.target)  # in the same file system: the output appears whole in one step
        directory = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def remove_parts(self) -> None:
        shutil.rmtree(self.parts, ignore_errors=True)


class _S3Store:
    def __init__(self, location: str, s3: S3Client | None) -> None:
        self.bucket, self.key = split_s3(location)
        if not self.key or self.key.endswith("/"):
            raise OutputError(f"{location}: --out names an object (s3://BUCKET/KEY.jsonl), not a prefix")
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        self.s3 = s3
        self.parts = self.key + PARTS_SUFFIX + "/"

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def target_exists(self) -> bool:
        return self._exists(self.key)

    def read_manifest(self) -> str | None:
        if not self._exists(self.parts + MANIFEST):
            return None
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=self.parts + MANIFEST)["Body"].read()
        return body.decode()

    def write_manifest(self, text: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.parts + MANIFEST, Body=text.encode())

    def _keys(self) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.parts):
            for item in page.get("Contents", []):
                yield item["Key"]

    def part_names(self) -> set[str]:
        return {key.removeprefix(self.parts) for key in self._keys() if key.endswith(".jsonl")}

    def write_part(self, name: str, lines: Iterable[str]) -> None:
        # Spooled to a local temporary file first: the object is put whole once the part is complete.
        with tempfile.TemporaryFile() as spool:
            for line in lines:
                spool.write(line.encode())
            spool.seek(0)
            self.s3.upload_fileobj(spool, self.bucket, self.parts + name)

    def publish(self, names: list[str]) -> None:
        # upload_fileobj is a multipart upload for large outputs: the object exists only once it completes.
        stream = io.BufferedReader(_Concatenated(self.s3, self.bucket, [self.parts + name for name in names]),
                                   COPY_BYTES)
        self.s3.upload_fileobj(stream, self.bucket, self.key)

    def remove_parts(self) -> None:
        keys = list(self._keys())
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys (botocore's model)
            chunk: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys[start:start + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})


class _Concatenated(io.RawIOBase):
    """The objects ``keys`` read one after another as one raw stream (only a read's worth held at a time)."""

    def __init__(self, s3: S3Client, bucket: str, keys: list[str]) -> None:
        self.s3, self.bucket, self.keys = s3, bucket, list(keys)
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.body is None:
                if not self.keys:
                    return 0
                self.body = self.s3.get_object(Bucket=self.bucket, Key=self.keys.pop(0))["Body"]
            data: bytes = self.body.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self.body.close()
            self.body = None


def local_finished_parts(target: Path) -> list[tuple[str, int]]:
    """The finished parts of a local output in progress, each with the offset where it ends in the
    parts' file (for tests and troubleshooting: what a rerun would reuse)."""
    return _LocalStore(target)._finished()
