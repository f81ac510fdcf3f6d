"""Readers of sentence-pair files. Each yields, per data row, a :class:`Pair` or the
:class:`DataError` that describes why the row is bad, so the caller decides whether to stop or
skip and count. Files are read line by line (never whole), ``.gz`` files are decompressed on the
fly, and line numbers are 1-based physical lines of the file.

- :func:`read_stsb`: STS Benchmark (tab-separated, no header, 7 fields + optional extras,
  score 0-5, unbalanced quotes in sentences).
- :func:`read_nli`: SNLI / MultiNLI style TSV with a header naming ``sentence1``,
  ``sentence2`` and ``gold_label`` (entailment, neutral, contradiction; ``-`` means no gold label).
- :func:`read_table`: any TSV, CSV or JSON Lines file of pairs, given a :class:`ColumnMap`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.data.errors import DataError

NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
STSB_MIN_SCORE, STSB_MAX_SCORE = 0.0, 5.0
TableFormat = Literal["tsv", "csv", "jsonl"]


@dataclass(frozen=True)
class Pair:
    """One sentence pair. ``label`` is the raw label (a number or a class name); ``None``
    means the row carries no gold label (SNLI's ``-``), which callers skip and count."""

    text0: str
    text1: str
    label: float | str | None
    path: str
    line: int


Row = Pair | DataError


def open_binary(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """Open a file for reading, transparently decompressing ``.gz``."""
    if not path.is_file():
        raise DataError(path, None, "file not found")
    if path.suffix == ".gz":
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


def open_text(path: Path) -> io.TextIOWrapper:
    """Open a text file, transparently decompressing ``.gz``; newlines are kept as written."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="")


def _decoded(path: Path) -> Iterator[tuple[int, str | DataError]]:
    """``(line number, text)`` per physical line, line endings kept; a line that is not UTF-8 or
    holds a NUL byte comes as a :class:`DataError` naming it, so the caller can skip it.

    Lines are decoded one at a time (not in 8 KiB chunks), so an error names its own line. A
    UTF-8 byte order mark before the first line is dropped. NUL bytes are refused rather than
    stripped: they mean the file is not the text it claims to be (UTF-16, a binary), and a row
    with one must not become tokens. A damaged ``.gz`` stops the file with its line."""
    for number, text, problem in _physical(path):
        yield number, text if problem is None else problem


def _physical(path: Path) -> Iterator[tuple[int, str, DataError | None]]:
    """Each physical line decoded (bad bytes as U+FFFD) with what is wrong with it, if anything."""
    number = 0
    with gzip_errors(path, lambda: number + 1), open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
            yield number, text, check_line(path, number, raw, text)


def check_line(path: Path | str, number: int, raw: bytes, text: str) -> DataError | None:
    """What is wrong with one physical line (not UTF-8, a NUL byte), or None; shared with the bulk corpus reader."""
    if "\ufffd" in text:  # U+FFFD: a replaced undecodable byte, or one written as such
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return DataError(path, number, f"not valid UTF-8 ({error.reason} at byte {error.start + 1} of the line)")
    if "\x00" in text:
        return DataError(path, number, f"contains a NUL byte (column {text.index(chr(0)) + 1}); "
                                       "is the file UTF-16 or binary?")
    return None


@contextlib.contextmanager
def gzip_errors(path: Path | str, line: Callable[[], int]) -> Iterator[None]:
    """A truncated or non-gzip ``.gz`` becomes a DataError naming the line it broke at."""
    try:
        yield
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        problem = ("the gzip data ends early (truncated file)" if isinstance(error, EOFError)
                   else f"not valid gzip data ({error})")
        raise DataError(path, line(), problem) from None


def _lines(path: Path) -> Iterator[tuple[int, str | DataError]]:
    for number, text in _decoded(path):
        yield number, text if isinstance(text, DataError) else text.rstrip("\r\n")


def read_stsb(path: Path) -> Iterator[Row]:
    """STS Benchmark rows: ``genre, file, year, id, score, sentence1, sentence2[, extras]``."""
    for number, text in _lines(path):
        if isinstance(text, DataError):
            yield text
            continue
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) < 7:
            yield DataError(path, number, f"expected at least 7 tab-separated fields, found {len(fields)}")
            continue
        try:
            score = float(fields[4])
        except ValueError:
            yield DataError(path, number, f"score {fields[4]!r} is not a number (field 5)")
            continue
        if not (math.isfinite(score) and STSB_MIN_SCORE <= score <= STSB_MAX_SCORE):
            yield DataError(path, number, f"score {score} is outside [{STSB_MIN_SCORE:g}, {STSB_MAX_SCORE:g}]")
            continue
        yield Pair(fields[5], fields[6], score, str(path), number)


def read_nli(path: Path) -> Iterator[Row]:
    """SNLI/MultiNLI rows from a TSV (optionally gzipped) whose header names the columns."""
    lines = _lines(path)
    header_line = next(lines, None)
    if header_line is None:
        raise DataError(path, None, "file is empty; expected a header row")
    if isinstance(header_line[1], DataError):
        raise header_line[1]
    header = header_line[1].split("\t")
    missing = [name for name in ("sentence1", "sentence2", "gold_label") if name not in header]
    if missing:
        raise DataError(path, 1, f"header lacks column(s) {', '.join(missing)}; found {', '.join(header)}")
    i0, i1, il = header.index("sentence1"), header.index("sentence2"), header.index("gold_label")
    needed = max(i0, i1, il) + 1
    for number, text in lines:
        if isinstance(text, DataError):
            yield text
            continue
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) < needed:
            yield DataError(path, number, f"expected at least {needed} tab-separated fields, found {len(fields)}")
            continue
        label = fields[il].strip()
        if label == "-":
            yield Pair(fields[i0], fields[i1], None, str(path), number)
        elif label not in NLI_LABELS:
            yield DataError(path, number, f"gold_label {label!r} is not one of {', '.join(NLI_LABELS)} or '-'")
        else:
            yield Pair(fields[i0], fields[i1], label, str(path), number)


@dataclass(frozen=True)
class ColumnMap:
    """Where ``in0``, ``in1`` and ``label`` sit: header names (or JSON keys), or 0-based
    column indices when the file has no header."""

    in0: str | int
    in1: str | int
    label: str | int

    @classmethod
    def parse(cls, text: str, *, header: bool) -> ColumnMap:
        """Parse ``in0=sentence1,in1=sentence2,label=score`` (indices when ``header`` is False)."""
        parts: dict[str, str | int] = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in ("in0", "in1", "label") or not value:
                raise ValueError(f"column mapping {text!r}: expected in0=COLUMN,in1=COLUMN,label=COLUMN")
            if key in parts:
                raise ValueError(f"column mapping {text!r}: {key} is given twice")
            if header:
                parts[key] = value
            else:
                if not value.isdigit():
                    raise ValueError(f"column mapping {text!r}: without a header, {key} must be a 0-based index")
                parts[key] = int(value)
        missing = [key for key in ("in0", "in1", "label") if key not in parts]
        if missing:
            raise ValueError(f"column mapping {text!r}: missing {', '.join(missing)}")
        return cls(parts["in0"], parts["in1"], parts["label"])


def read_table(path: Path, fmt: TableFormat, columns: ColumnMap, *, header: bool = True) -> Iterator[Row]:
    """Pairs from a TSV (split on tabs, quotes are plain text), a CSV (RFC 4180 quoting) or
    JSON Lines file (one object per line; ``columns`` are its keys)."""
    if fmt == "jsonl":
        yield from _read_jsonl(path, columns)
    elif fmt == "tsv":
        yield from _read_delimited(path, columns, header, _tsv_records(path))
    elif fmt == "csv":
        yield from _read_delimited(path, columns, header, _csv_records(path))
    else:
        raise ValueError(f"format {fmt!r}: allowed tsv, csv, jsonl")


def _tsv_records(path: Path) -> Iterator[tuple[int, list[str] | DataError]]:
    for number, text in _lines(path):
        if isinstance(text, DataError):
            yield number, text
        elif text.strip():
            yield number, text.split("\t")


def _csv_records(path: Path) -> Iterator[tuple[int, list[str] | DataError]]:
    bad: dict[int, DataError] = {}

    def texts() -> Iterator[str]:
        for number, text, problem in _physical(path):
            if problem is not None:
                bad[number] = problem  # the record that spans this line is reported instead
            yield text  # with U+FFFD for bad bytes: the quoting structure stays intact

    reader = csv.reader(texts())
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(path, reader.line_num, f"CSV syntax error: {error}") from None
        spanned = [bad.pop(number) for number in sorted(bad) if start <= number <= reader.line_num]
        if spanned:
            yield start, spanned[0]
        elif record and any(field.strip() for field in record):
            yield start, record
        start = reader.line_num + 1


def _read_delimited(
    path: Path, columns: ColumnMap, header: bool, records: Iterator[tuple[int, list[str] | DataError]]
) -> Iterator[Row]:
    if header:
        first = next(records, None)
        if first is None:
            raise DataError(path, None, "file is empty; expected a header row")
        if isinstance(first[1], DataError):
            raise first[1]
        names = [name.strip() for name in first[1]]
        indices = []
        for key in ("in0", "in1", "label"):
            wanted = getattr(columns, key)
            if wanted not in names:
                raise DataError(
                    path, first[0], f"header has no column {wanted!r} (for {key}); found {', '.join(names)}"
                )
            indices.append(names.index(wanted))
    else:
        indices = [int(columns.in0), int(columns.in1), int(columns.label)]
    needed = max(indices) + 1
    for number, fields in records:
        if isinstance(fields, DataError):
            yield fields
            continue
        if len(fields) < needed:
            yield DataError(path, number, f"expected at least {needed} fields, found {len(fields)}")
            continue
        label = fields[indices[2]].strip()
        if not label:
            yield DataError(path, number, "label is empty")
            continue
        yield Pair(fields[indices[0]], fields[indices[1]], label, str(path), number)


def _read_jsonl(path: Path, columns: ColumnMap) -> Iterator[Row]:
    keys = (str(columns.in0), str(columns.in1), str(columns.label))
    for number, text in _lines(path):
        if isinstance(text, DataError):
            yield text
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            yield DataError(path, number, f"not valid JSON ({error.msg} at column {error.colno})")
            continue
        except RecursionError:
            yield DataError(path, number, "JSON nested too deeply for the parser (a row needs 1 level)")
            continue
        except ValueError as error:  # e.g. an integer past Python's 4300-digit conversion limit
            yield DataError(path, number, f"not usable JSON ({error})")
            continue
        if not isinstance(record, dict):
            yield DataError(path, number, "expected a JSON object")
            continue
        missing = [key for key in keys if key not in record]
        if missing:
            yield DataError(path, number, f"missing key(s) {', '.join(missing)}")
            continue
        text0, text1, label = record[keys[0]], record[keys[1]], record[keys[2]]
        if not isinstance(text0, str) or not isinstance(text1, str):
            yield DataError(path, number, f"{keys[0]!r} and {keys[1]!r} must be strings")
            continue
        if isinstance(label, bool) or not isinstance(label, (str, int, float)):
            yield DataError(path, number, f"label {keys[2]!r} must be a string or a number, got {label!r}")
            continue
        try:
            value = label if isinstance(label, str) else float(label)
        except OverflowError:
            yield DataError(path, number, f"label {keys[2]!r} is an integer of {len(str(label))} digits, too large "
                                          "for a number")
            continue
        yield Pair(text0, text1, value, str(path), number)
