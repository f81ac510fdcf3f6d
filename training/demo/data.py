"""The demo's data: ``--data DIR``, the shared STS-B copy or the download, prepared into the run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.demo.console import Console
from training.demo.options import SHARED_STSB, DemoError, DemoOptions


@dataclass(frozen=True)
class DataChoice:
    directory: Path
    description: str
    prepared: bool  # a dataset written by `o2v prepare` (manifest.json), else the raw STS-B files


def find_data(options: DemoOptions, console: Console) -> DataChoice:
    """``--data DIR`` (raw STS-B or a prepared dataset), else the shared copy, else the download."""
    from training.data import stsb

    if options.data is not None:
        if (options.data / "manifest.json").is_file():
            return DataChoice(options.data, f"dataset prepared by o2v prepare in {options.data}", True)
        try:
            stsb.split_files(options.data)
        except FileNotFoundError as error:
            raise DemoError(f"--data {options.data}: neither STS-B ({error}) nor a dataset written by "
                            "`o2v prepare` (no manifest.json)") from None
        return DataChoice(options.data, f"STS-B from {options.data}", False)
    if (SHARED_STSB / "sts-train.csv").is_file():
        return DataChoice(SHARED_STSB, "STS-B from ../shared/data/stsbenchmark", False)
    console.line("data", f"downloading STS-B from {stsb.STSB_URL} into {options.cache_dir} ...")
    try:
        return DataChoice(stsb.download(options.cache_dir), f"STS-B downloaded into {options.cache_dir}", False)
    except OSError as error:
        raise DemoError(f"no STS-B data: pass --data DIR (holding sts-train.csv, sts-dev.csv, sts-test.csv); "
                        f"the download failed: {error}") from None


def use_prepared(choice: DataChoice, out: Path) -> dict[str, Any]:
    """Copy a prepared dataset into the run; it needs a validation split (the detector reads it)."""
    import shutil

    from training.data.prepare import load_manifest

    manifest = load_manifest(choice.directory)
    if "validation" not in manifest.get("splits", {}):
        raise DemoError(f"{choice.directory} has no validation split, which the divergence detector needs; "
                        "prepare it with --validation FILE or --validation-fraction 0.1")
    shutil.copytree(choice.directory, out)
    return manifest


def prepare_data(directory: Path, out: Path, train_rows: int | None) -> dict[str, Any]:
    """``o2v prepare`` of STS-B into ``out``; ``train_rows`` keeps a deterministic sample of train."""
    import zlib

    from training.data import readers, stsb
    from training.data.labels import LabelSpec
    from training.data.prepare import PrepareConfig, Source, prepare

    splits = stsb.split_files(directory)
    train_path = splits["train"][0]
    keep: set[int] | None = None
    if train_rows is not None:
        lines = [row.line for row in readers.read_stsb(train_path) if isinstance(row, readers.Pair)]
        if train_rows < len(lines):
            ranked = sorted(lines, key=lambda line: zlib.crc32(f"o2v-demo:{line}".encode()))
            keep = set(ranked[:train_rows])

    def reader(path: Path) -> Iterator[readers.Row]:
        for row in readers.read_stsb(path):
            if keep is None or path != train_path or not isinstance(row, readers.Pair) or row.line in keep:
                yield row

    return prepare(Source("STS Benchmark", reader, splits, LabelSpec("regression")), out, PrepareConfig())

