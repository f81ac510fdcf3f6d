"""What one bench run trains and measures: the full run and the smoke run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.record import RunSpec

DROPOUT_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class BenchConfig:
    smoke: bool
    synthetic_per_family: int
    main_network: str
    main_size: int
    main_epochs: int
    seeds: tuple[int, ...]
    dropouts: tuple[float, ...]
    extra_runs: tuple[RunSpec, ...]
    snli: bool
    # The value study's runs (section 5), outside the detection suite: the next attempt's curve where
    # the suite lacks it, and the retrain policy's alternatives after a relaunch that did not help.
    value_runs: tuple[RunSpec, ...] = ()
    trainer_pairs: dict[str, int] = field(default_factory=dict)
    server_requests: dict[int, int] = field(default_factory=dict)
    serve_default_models: bool = True
    quality_pairs: int | None = None
    synth_repeats: int = 3
    random_draws: int = 2000
    run_demo: bool = True
    workers: int = 2
    server_train_pairs: int = 1000
    # Bulk embedding (issue 27): corpus sizes, MiniLM's fixed sample, and the model's size and epochs.
    bulk_sizes: tuple[int, ...] = (100_000, 1_000_000)
    bulk_minilm_sample: int = 10_000  # ~5 minutes of MiniLM on 2 shared cores; a million would take hours
    bulk_dims: int = 128
    bulk_epochs: int = 3
    server_load: dict[str, Any] = field(default_factory=lambda: {
        "clients": 32, "per_client": 40, "batch1_requests": 300, "idle_connections": 2000, "hang_after": 15.0,
        "read_timeout": 10})

    @property
    def main_config(self) -> str:
        return f"stsb/{self.main_network}-{self.main_size}"

    def main_runs(self) -> list[RunSpec]:
        return [RunSpec("stsb", self.main_network, self.main_size, dropout, seed, self.main_epochs)
                for seed in self.seeds for dropout in self.dropouts]

    def suite_runs(self) -> list[RunSpec]:
        """The curve suite of sections 1 and 2."""
        return [*self.main_runs(), *self.extra_runs]

    def all_runs(self) -> list[RunSpec]:
        return [*self.suite_runs(), *self.value_runs]


def _extra() -> tuple[RunSpec, ...]:
    """Other capacities and a larger classification dataset, for the curve suite only."""
    runs: list[RunSpec] = []
    for dropout in (0.0, 0.4):
        runs.append(RunSpec("stsb", "pooled_embedding", 256, dropout, 0, 16))
        runs.append(RunSpec("stsb", "hcnn", 64, dropout, 0, 12))
        for seed in (0, 1):
            runs.append(RunSpec("snli", "pooled_embedding", 64, dropout, seed, 12))
    return tuple(runs)


# Weight decay the value study tries after a dropout rise that did not help (Adam's coupled L2).
VALUE_WEIGHT_DECAYS: tuple[float, ...] = (0.0001, 0.001)
# The half step (0.1 / 2) above the lineage's usual best dropout: "change the step".
VALUE_HALF_STEP_DROPOUT = 0.15


def _value_runs(network: str, size: int, epochs: int, seeds: tuple[int, ...]) -> tuple[RunSpec, ...]:
    """Attempt 2 (dropout 0.1) of the other configurations, and on the main configuration the policy's
    alternatives to a third dropout rise: the best attempt's dropout 0.1 with weight decay, or a half step."""
    runs = [RunSpec("stsb", "pooled_embedding", 256, 0.1, 0, 16), RunSpec("stsb", "hcnn", 64, 0.1, 0, 12)]
    runs += [RunSpec("snli", "pooled_embedding", 64, 0.1, seed, 12) for seed in (0, 1)]
    for seed in seeds:
        runs.append(RunSpec("stsb", network, size, VALUE_HALF_STEP_DROPOUT, seed, epochs))
        runs += [RunSpec("stsb", network, size, 0.1, seed, epochs, decay) for decay in VALUE_WEIGHT_DECAYS]
    return tuple(runs)


FULL = BenchConfig(
    smoke=False,
    synthetic_per_family=30,
    main_network="pooled_embedding",
    main_size=64,
    main_epochs=16,
    seeds=(0, 1, 2, 3),
    dropouts=DROPOUT_GRID,
    extra_runs=_extra(),
    snli=True,
    value_runs=_value_runs("pooled_embedding", 64, 16, (0, 1, 2, 3)),
    trainer_pairs={"hcnn": 512, "bilstm": 512, "pooled_embedding": 2048},
    server_requests={1: 300, 32: 60},
    serve_default_models=True,
    quality_pairs=None,
    synth_repeats=3,
    random_draws=2000,
)

SMOKE = BenchConfig(
    smoke=True,
    synthetic_per_family=4,
    main_network="pooled_embedding",
    main_size=16,
    main_epochs=5,
    seeds=(0,),
    dropouts=(0.0, 0.3),
    extra_runs=(),
    snli=False,
    trainer_pairs={"hcnn": 32, "bilstm": 32, "pooled_embedding": 64},
    server_requests={1: 5, 32: 2},
    serve_default_models=False,
    quality_pairs=60,
    synth_repeats=1,
    random_draws=50,
    run_demo=False,
    server_train_pairs=64,
    bulk_sizes=(2_000, 4_000),
    bulk_minilm_sample=200,
    bulk_dims=16,
    bulk_epochs=1,
    server_load={"clients": 4, "per_client": 3, "batch1_requests": 5, "idle_connections": 40, "hang_after": 4.0,
                 "read_timeout": 1},
)
