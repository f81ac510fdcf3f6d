"""Recorded curves: local training runs with the repository's trainer, each for the full budget.

Every (dataset, network, size, dropout, seed) run is trained once for the whole epoch budget
with early stopping switched off, and its per-epoch ``#quality_metric`` lines are parsed with
:mod:`o2v_core.metric_series` (the monitor's own reader). Every strategy in section 2 is then a
replay over these curves that pays only for the epochs it would have run.

The same run with Object2Vec's early stopping on, as users run it (the recipe's
``early_stopping_patience`` and ``early_stopping_tolerance``), is the first epochs of that curve:
training is seeded and early stopping only decides when to stop, so each record also holds the
epoch at which :mod:`o2v_core.early_stopping` (the rule the trainer applies) ends the job, and
:meth:`RunRecord.curve_with_early_stopping` is that prefix (tests/bench checks it against a real
run with early stopping on).

Runs go to two worker processes with one torch thread each (the machine has 2 cores). Models
(best epoch of the full run, as the trainer saves them) stay in the work directory for the
quality and throughput sections.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from o2v_core.early_stopping import stopping_epoch

from bench.curves import Curve
from training.demo import overfit_prone_recipe

NLI_FILES = ("snli_1.0_dev.tsv.gz", "snli_1.0_test.tsv.gz")


@dataclass(frozen=True)
class RunSpec:
    dataset: str  # "stsb" or "snli"
    network: str
    size: int  # token_embedding_dim = enc_dim = mlp_dim
    dropout: float
    seed: int
    epochs: int
    weight_decay: float = 0.0  # the value study's weight-decay runs (docs/detector.md); 0 everywhere else

    @property
    def key(self) -> str:
        wd = f"/weight_decay-{self.weight_decay:g}" if self.weight_decay else ""
        dropout = f"{self.dropout:.1f}" if round(self.dropout, 1) == self.dropout else f"{self.dropout:g}"
        return f"{self.dataset}/{self.network}-{self.size}/dropout-{dropout}{wd}/seed-{self.seed}"

    @property
    def knobs(self) -> tuple[float, float]:
        """(dropout, weight_decay): the two regularizers the retrain policy turns."""
        return (round(self.dropout, 6), round(self.weight_decay, 6))

    @property
    def config_name(self) -> str:
        return f"{self.dataset}/{self.network}-{self.size}"

    def hyperparameters(self, manifest_hps: dict[str, Any]) -> dict[str, object]:
        """The recipe of ``o2v demo``'s overfit-prone attempt 1 (defined once, in the demo), with this
        run's network, size and dropout, over the settings the demo takes from cdk.json."""
        return {
            **manifest_hps,
            "optimizer": "adam",
            "tied_token_embedding_weight": True,
            **overfit_prone_recipe(self.size, self.epochs, network=self.network, dropout=self.dropout),
            **({"weight_decay": self.weight_decay} if self.weight_decay else {}),
        }


@dataclass
class RunRecord:
    spec: RunSpec
    metric: str
    validation: list[float]
    train: list[float]
    epoch_seconds: list[float]
    seconds: float
    saved_best_epoch: int
    model: str  # relative to the work directory
    early_stopping_patience: int  # the recipe's, as users run it
    early_stopping_tolerance: float
    early_stopping_epoch: int | None  # the epoch after which that rule ends the job; None: it runs them all
    # The trainer's test-channel metrics of the saved model (the full run's best epoch), as Object2Vec
    # reports them once at the end (`test accuracy`, `test cross_entropy`; `test mean_squared_error`):
    # SNLI test accuracy comes from here. None: recorded before the bench kept them.
    test: dict[str, float] | None = None
    # Test accuracy x 100 of each epoch's weights (a classification run: SNLI), so the value study reads the
    # test quality of exactly the epoch a strategy serves. None: a regression run (STS-B's test Spearman is
    # measured on the saved model, bench.sections._test_quality), or recorded before the bench kept it.
    test_per_epoch: list[float] | None = None

    def curve(self) -> Curve:
        """The whole curve (early stopping off)."""
        params: dict[str, Any] = {**asdict(self.spec), "metric": self.metric, "config": self.spec.config_name,
                                  "early_stopping": False}
        return Curve(f"recorded/{self.spec.key}", self.spec.dataset, "recorded", tuple(self.validation),
                      tuple(self.train), params)

    def curve_with_early_stopping(self) -> Curve:
        """The curve a user sees with Object2Vec's early stopping on: up to the epoch that ends the job."""
        end = len(self.validation) if self.early_stopping_epoch is None else self.early_stopping_epoch + 1
        params: dict[str, Any] = {**asdict(self.spec), "metric": self.metric, "config": self.spec.config_name,
                                  "early_stopping": True}
        return Curve(f"recorded_es/{self.spec.key}", self.spec.dataset, "recorded_es", tuple(self.validation[:end]),
                      tuple(self.train[:end]), params)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.spec.key
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        values = {key: value for key, value in data.items() if key != "key"}
        values["spec"] = RunSpec(**values["spec"])
        return cls(**values)


# -- datasets ---------------------------------------------------------------------------------------


def prepare_datasets(shared: Path, work: Path, *, snli: bool, smoke: bool) -> dict[str, Path]:
    """``o2v prepare`` STS-B (and SNLI: train on 90% of dev, validate on the rest, test on test)."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    result = {"stsb": _prepare(data / "stsb", ["--format", "stsb", "--stsb-dir", str(shared / "stsbenchmark")])}
    nli_dir = shared / "snli"
    if snli and all((nli_dir / name).is_file() for name in NLI_FILES):
        result["snli"] = _prepare(data / "snli", [
            "--format", "nli", "--train", str(nli_dir / NLI_FILES[0]), "--validation-fraction", "0.1",
            "--test", str(nli_dir / NLI_FILES[1]),
        ])
    if smoke:
        result = {name: _subset(path, data / f"{name}-smoke", {"train": 400, "validation": 200, "test": 200})
                  for name, path in result.items()}
    return result


def _prepare(out: Path, args: list[str]) -> Path:
    if (out / "manifest.json").is_file():
        return out
    subprocess.run([sys.executable, "-m", "training.cli", "prepare", *args, "--out", str(out), "--force", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def _subset(source: Path, out: Path, limits: dict[str, int]) -> Path:
    """The first rows of each split (smoke runs); auxiliary files and manifest copied as they are."""
    if (out / "manifest.json").is_file():
        return out
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source / "auxiliary", staging / "auxiliary")
    shutil.copyfile(source / "manifest.json", staging / "manifest.json")
    for split, limit in limits.items():
        src = source / split / f"{split}.jsonl"
        if not src.is_file():
            continue
        (staging / split).mkdir(parents=True)
        with src.open(encoding="utf-8") as handle:
            lines = [line for _, line in zip(range(limit), handle, strict=False)]
        (staging / split / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    staging.rename(out)
    return out


def manifest_hyperparameters(dataset: Path) -> dict[str, Any]:
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    hps: dict[str, Any] = manifest["hyperparameters"]
    return hps


# -- one run ----------------------------------------------------------------------------------------


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_one(spec: RunSpec, dataset: Path, work: Path) -> RunRecord:
    """Train ``spec`` for its full budget (in this process) and return its curves."""
    from o2v_core.hyperparameters import with_defaults
    from o2v_core.metric_series import series_from_lines

    from training.model.config import resolve
    from training.trainer.data import load_channel
    from training.trainer.loop import Channels, evaluate, train

    hps = with_defaults(spec.hyperparameters(manifest_hyperparameters(dataset)), where=spec.key)
    patience, tolerance = int(hps["early_stopping_patience"]), float(hps["early_stopping_tolerance"])
    hps["early_stopping_patience"] = spec.epochs + 1  # full budget: no early stopping while recording
    model_rel = Path("models") / spec.key
    model_dir = work / model_rel
    shutil.rmtree(model_dir, ignore_errors=True)
    channels = Channels.from_directory(dataset)
    config = resolve(hps)
    test_per_epoch: list[float] | None = None
    after_epoch: Callable[[Any, int], None] | None = None
    if channels.test is not None and config.output_layer == "softmax":
        test_split, test_per_epoch = load_channel(channels.test, config), []

        def after_epoch(model: Any, epoch: int, scores: list[float] = test_per_epoch) -> None:
            scores.append(100.0 * evaluate(model, test_split)["accuracy"])

    stream = io.StringIO()
    started = time.monotonic()
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        result = train(hps, channels, model_dir=model_dir, archive=None, seed=spec.seed, metric_streams=[stream],
                       log=devnull, quiet=True, after_epoch=after_epoch)
    seconds = time.monotonic() - started
    series = series_from_lines(stream.getvalue().splitlines(), source=spec.key)
    validation = [value for _, value in series.validation]
    return RunRecord(
        spec=spec,
        metric=series.metric,
        validation=validation,
        train=[value for _, value in series.train],
        epoch_seconds=[round(item.seconds, 4) for item in result.epochs],
        seconds=round(seconds, 3),
        saved_best_epoch=result.best_epoch,
        model=model_rel.as_posix(),
        early_stopping_patience=patience,
        early_stopping_tolerance=tolerance,
        early_stopping_epoch=stopping_epoch(validation, patience, tolerance),
        test=dict(result.test) if result.test is not None else None,
        test_per_epoch=test_per_epoch,
    )


def record_runs(
    specs: Sequence[RunSpec], datasets: dict[str, Path], work: Path, *, workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[RunRecord]:
    """Train every spec (``workers`` processes, one torch thread each); results in ``specs`` order."""
    todo = [spec for spec in specs if spec.dataset in datasets]
    # Longest runs first keeps both workers busy to the end.
    order = sorted(range(len(todo)), key=lambda index: -_cost(todo[index]))
    records: dict[int, RunRecord] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_init_worker) as pool:
        futures = {index: pool.submit(run_one, todo[index], datasets[todo[index].dataset], work) for index in order}
        for done, (index, future) in enumerate(futures.items(), start=1):
            records[index] = future.result()
            if progress is not None:
                progress(f"recorded {done}/{len(todo)}: {todo[index].key} ({records[index].seconds:.0f}s)")
    return [records[index] for index in range(len(todo))]


def _cost(spec: RunSpec) -> float:
    per_epoch = {"pooled_embedding": 1.0, "hcnn": 3.0, "bilstm": 6.0}.get(spec.network, 1.0)
    return per_epoch * spec.epochs * (spec.size / 64) * (2.0 if spec.dataset == "snli" else 1.0)

