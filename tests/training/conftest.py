"""Fixtures for the training tests: real STS-B/SNLI slices, prepared datasets, tiny trained models."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from o2v_core.hyperparameters import with_defaults
from o2v_core.metric_lines import MetricLine, parse_line

from training.data import readers
from training.data.labels import LabelSpec
from training.data.prepare import PrepareConfig, Source, prepare
from training.trainer.loop import Channels, TrainResult, train
from training.trainer.threads import configure_threads

STSB_TRAIN_ROWS = 400
STSB_EVAL_ROWS = 120


def _slice(source: Path, target: Path, rows: int, *, extra: tuple[int, ...] = ()) -> Path:
    """The first ``rows`` lines of ``source`` plus the given 1-based lines (byte-for-byte)."""
    lines = source.read_bytes().splitlines(keepends=True)
    chosen = lines[:rows] + [lines[number - 1] for number in extra if number > rows]
    target.write_bytes(b"".join(chosen))
    return target


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    configure_threads(1)


@pytest.fixture(scope="session")
def stsb_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """STS-B train/dev/test slices; train includes rows with extra fields and unbalanced quotes."""
    folder = tmp_path_factory.mktemp("stsb-slice")
    source = shared_data / "stsbenchmark"
    return {
        # lines 5553-5555 carry 9 fields; 2002 and 2075 have unbalanced quotes
        "train": _slice(source / "sts-train.csv", folder / "sts-train.csv", STSB_TRAIN_ROWS,
                        extra=(2002, 2075, 5553, 5554, 5555)),
        "validation": _slice(source / "sts-dev.csv", folder / "sts-dev.csv", STSB_EVAL_ROWS),
        "test": _slice(source / "sts-test.csv", folder / "sts-test.csv", STSB_EVAL_ROWS),
    }


def stsb_source(splits: dict[str, Path]) -> Source:
    return Source("STS Benchmark slice", readers.read_stsb, {k: [v] for k, v in splits.items()},
                  LabelSpec("regression"))


@pytest.fixture(scope="session")
def stsb_dataset(stsb_slice: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("datasets") / "stsb"
    prepare(stsb_source(stsb_slice), out, PrepareConfig(max_seq_len=24))
    return out


@pytest.fixture(scope="session")
def snli_dataset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-class NLI dataset from the first SNLI dev/test rows."""
    folder = tmp_path_factory.mktemp("snli")
    paths = {}
    for split, name, rows in (("train", "snli_1.0_dev.tsv.gz", 400), ("validation", "snli_1.0_test.tsv.gz", 150)):
        with gzip.open(shared_data / "snli" / name, "rb") as handle:
            lines = [next(handle) for _ in range(rows + 1)]
        paths[split] = folder / name.replace(".gz", "")
        paths[split].write_bytes(b"".join(lines))
    out = folder / "prepared"
    prepare(Source("SNLI slice", readers.read_nli, {k: [v] for k, v in paths.items()},
                   LabelSpec("classification", readers.NLI_LABELS)), out, PrepareConfig(max_seq_len=24))
    return out


def manifest_hyperparameters(dataset: Path) -> dict[str, Any]:
    hyperparameters: dict[str, Any] = json.loads((dataset / "manifest.json").read_text())["hyperparameters"]
    return hyperparameters


# Small and fast: every test model uses these unless it says otherwise.
TINY: dict[str, Any] = {
    "enc0_network": "pooled_embedding",
    "enc_dim": 16,
    "enc0_token_embedding_dim": 16,
    "mlp_dim": 16,
    "mlp_layers": 1,
    "mini_batch_size": 32,
    "learning_rate": 0.005,
    "epochs": 3,
}


@dataclass
class Run:
    result: TrainResult
    lines: list[MetricLine]
    log: str
    stdout: str
    model_dir: Path
    archive: Path | None

    def losses(self, channel: str) -> list[float]:
        metric = "cross_entropy" if any(line.metric == "cross_entropy" for line in self.lines) else \
            "mean_squared_error"
        return [line.value for line in self.lines
                if line.channel == channel and line.metric == metric and line.epoch is not None]


TrainFn = Callable[..., Run]


@pytest.fixture
def run_training(tmp_path: Path) -> TrainFn:
    """Train for real on a prepared dataset; returns the result and the printed metric lines."""
    counter = iter(range(1000))

    def run(dataset: Path, overrides: dict[str, Any] | None = None, *, seed: int = 0, archive: bool = False,
            channels: Channels | None = None) -> Run:
        values = {**manifest_hyperparameters(dataset), **TINY, **(overrides or {})}
        out = tmp_path / f"run-{next(counter)}"
        stdout, log = io.StringIO(), io.StringIO()
        result = train(with_defaults(values), channels or Channels.from_directory(dataset), model_dir=out / "model",
                       archive=out / "model.tar.gz" if archive else None, seed=seed, metric_streams=[stdout],
                       log=log)
        # The metric stream is the job's log: metric lines among the container's other lines (section 10b).
        parsed = [parse_line(text) for text in stdout.getvalue().splitlines()]
        return Run(result, [line for line in parsed if line is not None], log.getvalue(), stdout.getvalue(),
                   out / "model", result.archive)

    return run


@pytest.fixture(scope="session")
def served_model(stsb_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small regression model (hcnn + bilstm encoders) trained on the STS-B slice, as model.tar.gz."""
    out = tmp_path_factory.mktemp("served")
    values = {**manifest_hyperparameters(stsb_dataset), **TINY, "enc0_network": "hcnn", "enc1_network": "bilstm",
              "enc_dim": 24, "epochs": 2}
    result = train(with_defaults(values), Channels.from_directory(stsb_dataset), model_dir=out / "model",
                   archive=out / "model.tar.gz", metric_streams=[], log=io.StringIO())
    assert result.archive is not None
    yield result.archive


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's moto server, reached as local mode reaches S3 (AWS_ENDPOINT_URL_S3)."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
