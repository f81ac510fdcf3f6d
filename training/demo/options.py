"""What a demo run is given: its options, its sizes, and where it looks for data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_STSB = REPO_ROOT.parent / "shared" / "data" / "stsbenchmark"
LINEAGE = "stsb-demo"
EXAMPLE_SENTENCES = ("A man is playing a guitar.", "A man plays the guitar.")
DATASET_NAME = "stsb-demo"


class DemoError(ValueError):
    """The demo cannot go on; the message says why and where to look."""




@dataclass(frozen=True)
class Size:
    """How big a run is: how much data, how many epochs, how wide the model."""

    name: str
    train_rows: int | None  # None: the whole STS-B training split
    test_rows: int | None  # None: every test pair
    epochs: int
    dims: int
    description: str


SIZES: dict[str, Size] = {
    "quick": Size("quick", 2000, 400, 10, 64,
                  "64-d, 10 epochs, 2,000 training pairs, scored on 400 test pairs (about a minute)"),
    # The default (make demo): chosen by the seed study in docs/benchmarks.md (python -m bench.demo_seeds):
    # on the whole training split the 128-d recipe overfits at once without dropout, and dropout 0.1
    # serves a better model; the 64-d one only wobbled around its minimum, so the loop never fired.
    "standard": Size("standard", None, None, 12, 128,
                     "128-d, 12 epochs, all 5,749 training pairs, scored on all 1,379 test pairs"),
    "large": Size("large", None, None, 15, 256, "256-d, 15 epochs (a wider model; slower)"),
}



@dataclass
class DemoOptions:
    runs_dir: Path = REPO_ROOT / "runs"
    data: Path | None = None
    cache_dir: Path = Path.home() / ".cache" / "o2v"
    size: str = "standard"
    train_rows: int | None = None
    epochs: int | None = None
    env_name: str = "dev"
    keep_endpoint: bool = False
    minute_seconds: float = 1.0  # local seconds per minute of the schedules
    timeout: float = 900.0
    verbose: bool = False
    region: str = "us-east-1"

