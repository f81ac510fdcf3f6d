"""``python -m training.trainer``: the trainer as a SageMaker-style container process.

    SM_BASE_DIR=/tmp/job-1 python -m training.trainer        # or: --opt-ml /tmp/job-1

reads ``<base>/input/config/hyperparameters.json`` and ``<base>/input/data/<channel>/``,
prints ``#quality_metric`` lines on stdout (one flush per line), progress on stderr, writes the
model to ``<base>/model/`` and ``<base>/output/model.tar.gz``, and on failure writes
``<base>/output/failure`` and exits with status 1. Seed: ``--seed`` or ``$O2V_SEED`` (default 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from o2v_core.hyperparameters import with_defaults

from training.trainer.contract import ContainerPaths, base_dir, read_hyperparameters, write_failure
from training.trainer.loop import Channels, train
from training.trainer.threads import configure_threads


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m training.trainer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    result.add_argument("--opt-ml", type=Path, help="container base directory (default: $SM_BASE_DIR or /opt/ml)")
    result.add_argument("--hyperparameters", type=Path, help="override <base>/input/config/hyperparameters.json")
    result.add_argument("--data-dir", type=Path, help="override <base>/input/data")
    result.add_argument("--model-dir", type=Path, help="override <base>/model")
    result.add_argument("--output-dir", type=Path, help="override <base>/output")
    result.add_argument("--seed", type=int, default=int(os.environ.get("O2V_SEED", "0")),
                        help="random seed (default: $O2V_SEED or 0)")
    result.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: $O2V_THREADS or auto)")
    result.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    defaults = ContainerPaths.under(base_dir(args.opt_ml))
    paths = ContainerPaths(
        hyperparameters=args.hyperparameters or defaults.hyperparameters,
        data=args.data_dir or defaults.data,
        model=args.model_dir or defaults.model,
        output=args.output_dir or defaults.output,
    )
    try:
        configure_threads(args.threads)
        hyperparameters = with_defaults(read_hyperparameters(paths.hyperparameters), where=str(paths.hyperparameters))
        train(hyperparameters, Channels.from_directory(paths.data), model_dir=paths.model, archive=paths.archive,
              seed=args.seed, metric_streams=[sys.stdout], log=sys.stderr, quiet=args.quiet)
    except Exception as error:  # the contract: every failure ends in output/failure
        reason = write_failure(paths, error)
        print(reason, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
