"""``o2v train``: train Object2Vec locally (PyTorch, CPU) on a prepared dataset."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.cli import CommandError
from training.commands import Subparsers, add_parser

DESCRIPTION = """\
Train Object2Vec on a dataset written by `o2v prepare`, or on Object2Vec-format channels as AWS's
notebooks write them (DIR/train/, DIR/validation/, DIR/test/: JSON Lines files of
{"label": ..., "in0": [ids], "in1": [ids]}; DIR/auxiliary/: the vocab JSON and any pretrained
vector file), with SageMaker Object2Vec's hyperparameters (same names, ranges and defaults).
Hyperparameters, later ones winning:
  1. the dataset manifest's enc0/enc1_max_seq_len, enc0/enc1_vocab_size, output_layer, num_classes
     (channels without a manifest.json have none: give at least enc0_max_seq_len and
     enc0_vocab_size below, as the notebooks' hyperparameter dicts do)
  2. --config FILE (a JSON object, or {"hyperparameters": {...}})
  3. --hp NAME=VALUE (repeatable)
Out-of-range values are rejected with the allowed range. (The same channels also train with the
container entry point: python -m training.trainer --opt-ml DIR, reading DIR/input/data/<channel>/.)

Per epoch it prints SageMaker's `#quality_metric:` lines for train and validation to stdout
(and to <out>/train.log), progress to stderr, and keeps the best epoch's weights.
Output: <out>/model/ (model files), <out>/model.tar.gz (for `o2v serve`), <out>/train.log,
<out>/hyperparameters.json; <out>/failure when training fails.

Examples:
  o2v train --data data/stsb --out runs/stsb --hp enc0_network=hcnn enc_dim=128 \\
      enc0_token_embedding_dim=64 mini_batch_size=64 epochs=10
  o2v train --data data/stsb --out runs/overfit --config overfit.json --seed 3
  o2v train --data channels --out runs/notebook --config notebook_hyperparameters.json
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "train", "train Object2Vec locally on a prepared dataset", DESCRIPTION)
    parser.add_argument("--data", type=Path, required=True,
                        help="prepared dataset directory (train/, validation/, test/, auxiliary/, manifest.json), "
                             "or Object2Vec-format channels (train/ and optional validation/, test/, auxiliary/)")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--config", type=Path, help="JSON file of hyperparameters")
    parser.add_argument("--hp", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="hyperparameter override(s), e.g. --hp dropout=0.2 epochs=5")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: $O2V_THREADS or 1)")
    parser.add_argument("--force", action="store_true", help="reuse --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--hp {item!r}: expected NAME=VALUE")
        overrides[name.strip()] = value.strip()
    return overrides


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("hyperparameters"), dict):
        data = data["hyperparameters"]
    if not isinstance(data, dict):
        raise CommandError(f"{path}: expected a JSON object of hyperparameters")
    return data


def merge_hyperparameters(layers: list[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Validate each layer (naming where a bad value came from), merge, then validate the whole."""
    from o2v_core.hyperparameters import validate_partial, with_defaults

    merged: dict[str, Any] = {}
    for where, values in layers:
        merged.update(validate_partial(values, where=where))
    return with_defaults(merged, where=" + ".join(where for where, _ in layers) or "hyperparameters")


def run(args: argparse.Namespace) -> int:
    from o2v_core.hyperparameters import HyperparameterError
    from o2v_core.metric_lines import LOSS_METRIC

    from training.data.prepare import MANIFEST_FILE, load_manifest
    from training.trainer.contract import ContainerPaths, write_failure
    from training.trainer.loop import Channels, train
    from training.trainer.threads import configure_threads

    layers: list[tuple[str, Mapping[str, Any]]] = []
    manifest_path = args.data / MANIFEST_FILE
    if manifest_path.exists() or not (args.data / "train").is_dir():
        if not manifest_path.exists():
            raise CommandError(f"{args.data}: neither a dataset written by `o2v prepare` ({MANIFEST_FILE} not found) "
                               "nor Object2Vec-format channels (no train/ directory of JSON Lines files)")
        layers.append((str(manifest_path), load_manifest(args.data)["hyperparameters"]))
    if args.config is not None:
        layers.append((str(args.config), read_config(args.config)))
    if args.hp:
        layers.append(("--hp", parse_overrides(args.hp)))
    try:
        hyperparameters = merge_hyperparameters(layers)
    except HyperparameterError as error:
        if layers and layers[0][0] == str(manifest_path):
            raise
        raise CommandError(f"{error} ({args.data} has Object2Vec-format channels and no {MANIFEST_FILE}, so the "
                           "hyperparameters come only from --config and --hp: give at least enc0_max_seq_len and "
                           "enc0_vocab_size, as the notebook that wrote the channels does)") from None
    channels = Channels.from_directory(args.data)
    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        raise CommandError(f"{out} already exists; pass --force to reuse it")
    out.mkdir(parents=True, exist_ok=True)
    (out / "failure").unlink(missing_ok=True)
    (out / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()}, indent=2) + "\n", encoding="utf-8"
    )
    configure_threads(args.threads)
    with (out / "train.log").open("w", encoding="utf-8") as log_file:
        try:
            result = train(hyperparameters, channels, model_dir=out / "model", archive=out / "model.tar.gz",
                           seed=args.seed, metric_streams=[sys.stdout, log_file], log=sys.stderr, quiet=args.quiet)
        except Exception as error:
            reason = write_failure(ContainerPaths(out / "hyperparameters.json", args.data, out / "model", out), error)
            print(reason, file=log_file, flush=True)
            raise CommandError(f"training failed: {reason} (see {out / 'failure'})") from None
    summary = {
        "model": str(result.archive),
        "log": str(out / "train.log"),
        "best_epoch": result.best_epoch,
        f"best_{LOSS_METRIC[str(hyperparameters['output_layer'])]}": result.best_loss,
        "stopped_early": result.stopped_early,
        "test": result.test,
    }
    print(json.dumps(summary, indent=2))
    return 0
