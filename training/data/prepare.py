"""The ``prepare`` pipeline: pair files -> Object2Vec channels, vocabulary and manifest.

It streams: the training split is read twice (once to count tokens and discover classes,
once to write), the other splits once, one row at a time, so memory holds only the token
counts and never the data. All output goes to a temporary directory that is renamed into
place at the end (:func:`training.atomic.atomic_directory`).

Output layout (the same keys are used in S3, see :mod:`training.data.upload`)::

    <out>/train/train.jsonl            {"label": 3.8, "in0": [12, 7, ...], "in1": [12, 9, ...]}
    <out>/validation/validation.jsonl
    <out>/test/test.jsonl
    <out>/auxiliary/vocab.json         {"<pad>": 0, "<unk>": 1, "a": 2, ...}
    <out>/auxiliary/tokenizer.json     tokenizer settings (training.data.tokenizer)
    <out>/manifest.json                counts, vocab size, lengths, label kind, hyperparameters
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from o2v_core.hyperparameters import validate_partial

from training.atomic import atomic_directory
from training.data.errors import DataError
from training.data.labels import LabelSpec, label_key, sorted_classes
from training.data.readers import Pair, Row
from training.data.stsb import sha256_file
from training.data.tokenizer import TOKENIZER_FILE, Tokenizer
from training.data.vocab import UNK_ID, VOCAB_FILE, Vocab
from training.progress import Progress

SPLITS = ("train", "validation", "test")
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "o2v-dataset/1"
MAX_ERROR_EXAMPLES = 20

Reader = Callable[[Path], Iterator[Row]]


@dataclass(frozen=True)
class PrepareConfig:
    """How text becomes token ids. ``max_seq_len`` truncates both inputs."""

    max_seq_len: int = 40
    vocab_max_size: int = 50_000
    min_count: int = 1
    tokenizer: Tokenizer = field(default_factory=Tokenizer)
    skip_bad_rows: bool = False
    validation_fraction: float = 0.0
    split_seed: int = 0

    def __post_init__(self) -> None:
        # The written lengths and vocabulary feed enc0_max_seq_len / enc0_vocab_size: same ranges.
        validate_partial({"enc0_max_seq_len": self.max_seq_len}, where="--max-seq-len")
        validate_partial({"enc0_vocab_size": self.vocab_max_size}, where="--vocab-size")
        if self.min_count < 1:
            raise ValueError(f"--min-count {self.min_count}: must be at least 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"--validation-fraction {self.validation_fraction}: must be in [0, 1)")


@dataclass(frozen=True)
class Source:
    """What to read: a reader, the files of each split, and how labels are interpreted.

    For classification with ``labels.classes`` empty, the classes are the distinct labels of
    the training split (sorted; numerically when all are integers)."""

    description: str
    reader: Reader
    splits: dict[str, list[Path]]
    labels: LabelSpec


@dataclass
class SplitStats:
    records: int = 0
    skipped_bad_rows: int = 0
    skipped_unlabeled: int = 0
    truncated_in0: int = 0
    truncated_in1: int = 0
    longest_in0: int = 0
    longest_in1: int = 0
    written_max_len_in0: int = 0
    written_max_len_in1: int = 0
    tokens: int = 0
    unknown_tokens: int = 0
    label_min: float | None = None
    label_max: float | None = None
    errors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class _Skipper:
    """Raises bad rows, or counts them (with a few examples) when the user asked to skip."""

    def __init__(self, skip: bool, stats: SplitStats, log: TextIO | None) -> None:
        self.skip, self.stats, self.log = skip, stats, log

    def bad(self, error: DataError) -> None:
        if not self.skip:
            raise error
        self.stats.skipped_bad_rows += 1
        if len(self.stats.errors) < MAX_ERROR_EXAMPLES:
            self.stats.errors.append(str(error))
            if self.log is not None:
                print(f"prepare: skipped bad row: {error}", file=self.log, flush=True)


def _in_validation(pair: Pair, config: PrepareConfig) -> bool:
    """Deterministic, content-based hold-out: equal pairs always land in the same split."""
    if config.validation_fraction <= 0:
        return False
    digest = zlib.crc32(f"{config.split_seed}\x00{pair.text0}\x00{pair.text1}".encode())
    return digest / 2**32 < config.validation_fraction


def _split_rows(source: Source, split: str, config: PrepareConfig) -> Iterator[Row]:
    """Rows of ``split``; with a validation fraction, train rows are divided between the two."""
    carved = config.validation_fraction > 0 and "validation" not in source.splits
    if split == "validation" and carved:
        for row in _rows(source, "train"):
            if isinstance(row, Pair) and _in_validation(row, config):
                yield row
        return
    for row in _rows(source, split):
        if split == "train" and carved and isinstance(row, Pair) and _in_validation(row, config):
            continue
        yield row


def _rows(source: Source, split: str) -> Iterator[Row]:
    for path in source.splits.get(split, []):
        yield from source.reader(path)


def prepare(
    source: Source, output: Path, config: PrepareConfig, *, overwrite: bool = False, log: TextIO | None = None
) -> dict[str, Any]:
    """Write the dataset to ``output`` atomically and return its manifest."""
    if not source.splits.get("train"):
        raise ValueError("a training split is required (--train, or the STS-B directory)")
    unknown = set(source.splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; allowed {', '.join(SPLITS)}")
    if overwrite:
        check_replaceable(output, [path for paths in source.splits.values() for path in paths])
    started = time.monotonic()
    vocab, labels = _count_pass(source, config, log)
    splits = [split for split in SPLITS if source.splits.get(split)]
    if "validation" not in splits and config.validation_fraction > 0:
        splits.insert(1, "validation")
    stats: dict[str, SplitStats] = {}
    with atomic_directory(output, overwrite=overwrite) as staging:
        for split in splits:
            stats[split] = _write_split(source, split, staging, vocab, labels, config, log)
        aux = staging / "auxiliary"
        aux.mkdir()
        vocab.save(aux / VOCAB_FILE)
        (aux / TOKENIZER_FILE).write_text(json.dumps(config.tokenizer.to_json(), indent=2), encoding="utf-8")
        manifest = _manifest(source, config, vocab, labels, stats, staging)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if log is not None:
        counts = ", ".join(f"{name} {item.records}" for name, item in stats.items())
        print(f"prepare: wrote {output} ({counts}; vocab {len(vocab)}) in {time.monotonic() - started:.1f}s",
              file=log, flush=True)
    return manifest


def _count_pass(source: Source, config: PrepareConfig, log: TextIO | None) -> tuple[Vocab, LabelSpec]:
    counts: Counter[str] = Counter()
    classes: set[str] = set()
    progress = Progress("prepare: counting tokens (train)", quiet=log is None, stream=log)
    skipper = _Skipper(config.skip_bad_rows, SplitStats(), None)
    seen = 0
    for row in _split_rows(source, "train", config):
        seen += 1
        if isinstance(row, DataError):
            skipper.bad(row)
            continue
        if row.label is None:
            continue
        if source.labels.kind == "classification" and not source.labels.classes:
            classes.add(label_key(row.label))
        counts.update(config.tokenizer.tokenize(row.text0))
        counts.update(config.tokenizer.tokenize(row.text1))
        progress.update(f"{seen:,} rows, {len(counts):,} distinct tokens")
    labels = source.labels
    if labels.kind == "classification" and not labels.classes:
        labels = LabelSpec("classification", sorted_classes(classes))
    if labels.kind == "classification" and len(labels.classes) < 2:
        raise ValueError(f"classification needs at least 2 classes; the training split has {list(labels.classes)}")
    validate_partial({"num_classes": len(labels.classes)} if labels.kind == "classification" else {},
                     where="the training labels")
    return Vocab.build(counts, max_size=config.vocab_max_size, min_count=config.min_count), labels


def _write_split(
    source: Source, split: str, staging: Path, vocab: Vocab, labels: LabelSpec, config: PrepareConfig,
    log: TextIO | None,
) -> SplitStats:
    stats = SplitStats(files=[str(path) for path in source.splits.get(split, source.splits["train"])])
    skipper = _Skipper(config.skip_bad_rows, stats, log)
    progress = Progress(f"prepare: writing {split}", quiet=log is None, stream=log)
    folder = staging / split
    folder.mkdir()
    limit = config.max_seq_len
    with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
        for row in _split_rows(source, split, config):
            if isinstance(row, DataError):
                skipper.bad(row)
                continue
            if row.label is None:
                stats.skipped_unlabeled += 1
                continue
            try:
                label = labels.convert(row.label, row.path, row.line)
                tokens0 = config.tokenizer.tokenize(row.text0)
                tokens1 = config.tokenizer.tokenize(row.text1)
                for name, tokens in (("sentence 1", tokens0), ("sentence 2", tokens1)):
                    if not tokens:
                        raise DataError(row.path, row.line, f"{name} has no tokens")
            except DataError as error:
                skipper.bad(error)
                continue
            ids0, ids1 = vocab.encode(tokens0), vocab.encode(tokens1)
            stats.records += 1
            stats.longest_in0 = max(stats.longest_in0, len(ids0))
            stats.longest_in1 = max(stats.longest_in1, len(ids1))
            stats.truncated_in0 += len(ids0) > limit
            stats.truncated_in1 += len(ids1) > limit
            ids0, ids1 = ids0[:limit], ids1[:limit]
            stats.written_max_len_in0 = max(stats.written_max_len_in0, len(ids0))
            stats.written_max_len_in1 = max(stats.written_max_len_in1, len(ids1))
            stats.tokens += len(ids0) + len(ids1)
            stats.unknown_tokens += ids0.count(UNK_ID) + ids1.count(UNK_ID)
            if isinstance(label, float):
                stats.label_min = label if stats.label_min is None else min(stats.label_min, label)
                stats.label_max = label if stats.label_max is None else max(stats.label_max, label)
            out.write(json.dumps({"label": label, "in0": ids0, "in1": ids1}, separators=(",", ":")) + "\n")
            progress.update(f"{stats.records:,} records")
    if stats.records == 0:
        raise ValueError(f"split {split!r} has no usable records (files: {', '.join(stats.files)})")
    return stats


def _manifest(
    source: Source, config: PrepareConfig, vocab: Vocab, labels: LabelSpec, stats: dict[str, SplitStats],
    staging: Path,
) -> dict[str, Any]:
    max0 = max(item.written_max_len_in0 for item in stats.values())
    max1 = max(item.written_max_len_in1 for item in stats.values())
    hyperparameters: dict[str, Any] = {
        "enc0_max_seq_len": max0,
        "enc0_vocab_size": len(vocab),
        "enc1_max_seq_len": max1,
        "enc1_vocab_size": len(vocab),
        "output_layer": "mean_squared_error" if labels.kind == "regression" else "softmax",
    }
    if labels.kind == "classification":
        hyperparameters["num_classes"] = len(labels.classes)
    validate_partial(hyperparameters, where=MANIFEST_FILE)
    files = sorted(path for path in staging.rglob("*") if path.is_file())
    return {
        "format": MANIFEST_FORMAT,
        "source": source.description,
        "label": labels.to_json(),
        "vocab_size": len(vocab),
        "vocab": {"max_size": config.vocab_max_size, "min_count": config.min_count, "built_from": "train"},
        "max_seq_len": config.max_seq_len,
        "max_len": {"in0": max0, "in1": max1},
        "tokenizer": config.tokenizer.to_json(),
        "validation_fraction": config.validation_fraction,
        "split_seed": config.split_seed,
        "splits": {name: vars(item) for name, item in stats.items()},
        "hyperparameters": hyperparameters,
        "files": {str(path.relative_to(staging)): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                  for path in files},
    }


def check_replaceable(output: Path, inputs: list[Path]) -> None:
    """``--force`` replaces only an ``o2v prepare`` output: a directory whose manifest says so,
    that holds none of this run's inputs and no file the manifest does not list."""
    if not output.exists():
        return
    where = output.resolve()
    refuse = f"--force will not replace {output}"
    for path in inputs:
        resolved = path.resolve()
        if resolved == where or where in resolved.parents:
            raise FileExistsError(f"{refuse}: it holds the input {path}; choose another --out")
    if not output.is_dir():
        raise FileExistsError(f"{refuse}: it is a file, not an `o2v prepare` output directory")
    try:
        manifest = json.loads((output / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise FileExistsError(f"{refuse}: it has no {MANIFEST_FILE} of format {MANIFEST_FORMAT}, so it is not "
                              "an `o2v prepare` output; remove it yourself or choose another --out")
    listed = set(manifest.get("files") or {}) | {MANIFEST_FILE}
    for path in sorted(output.rglob("*")):
        name = str(path.relative_to(output))
        if (path.is_file() or path.is_symlink()) and name not in listed:
            raise FileExistsError(f"{refuse}: {name} is not a file `o2v prepare` wrote; move it out first")


def load_manifest(dataset: Path) -> dict[str, Any]:
    path = dataset / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {dataset} a directory written by `o2v prepare`?") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not an o2v dataset manifest (format {MANIFEST_FORMAT})")
    return data
