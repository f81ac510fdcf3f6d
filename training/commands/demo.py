"""``o2v demo``: the whole retraining loop on this machine (local mode), no AWS account needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.commands import Subparsers, add_parser

DESCRIPTION = """\
Run the whole event-driven retraining loop on this machine, with local stand-ins for AWS:

  1. prepare STS-B (--data DIR, else ../shared/data/stsbenchmark beside the repo, else the
     official download, checksummed);
  2. start the local services: a moto server (S3, EventBridge, SQS, CloudWatch, Logs, SNS, SSM,
     IAM, STS) and a local SageMaker API (training jobs run the local trainer as a subprocess,
     endpoints run the local inference server), all on 127.0.0.1; nothing is deployed;
  3. launch attempt 1 with a configuration prone to overfit (dropout 0);
  4. show it train, the divergence monitor catch it (and stop it, unless its own early stopping
     ends it within finish_diverged_within_epochs: then it finishes with its best epoch), the
     RetrainOnDivergence rule fire, the launcher start attempt 2 (or later) with more dropout, and
     the promoter deploy the best attempt, overfitted or not, to the endpoint;
  5. embed the STS-B test sentences through the endpoint and report the Spearman correlation.

The control-plane handlers, EventBridge rules and boto3 calls are the ones the CDK stacks deploy;
only AWS_ENDPOINT_URL* differ. Settings (retrain policy, detector, first-attempt
hyperparameters) come from cdk.json (--env). Each run writes runs/<timestamp>/: report.md,
validation_loss.png, run.json, the prepared data, every service's logs. Every local process is
stopped at the end, on error and on Ctrl-C.

Sizes (--size); each validates on the 1,500 STS-B dev pairs:
  quick      64-d, 10 epochs, 2,000 training pairs, scored on 400 test pairs
                                                          (about a minute on an idle 2-core machine)
  standard   128-d, 12 epochs, all 5,749 training pairs, scored on all 1,379 test pairs
                                                          (the default; under 2 minutes)
  large      256-d, 15 epochs                              (a wider model; slower)
--train-rows N trains on a deterministic sample instead; --epochs N changes the epoch budget.

Examples:
  o2v demo                              # the standard run
  o2v demo --size quick                 # a smaller, faster run
  o2v demo --size large                 # a larger run
  o2v demo --data ~/stsbenchmark        # bring your own copy of STS-B (sts-{train,dev,test}.csv)
  o2v demo --data data/mine             # bring your own pairs, prepared with `o2v prepare` first
  o2v demo --keep-endpoint              # keep the local endpoint up for `o2v embed` until Ctrl-C
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "demo", "the whole retraining loop on this machine (local mode, no AWS)",
                        DESCRIPTION)
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, metavar="DIR",
                      help="STS-B directory with sts-train.csv, sts-dev.csv and sts-test.csv, or a dataset "
                           "written by `o2v prepare` (manifest.json; it needs a validation split, and a "
                           "regression test split for the Spearman score) (default: "
                           "../shared/data/stsbenchmark if it exists, else download)")
    data.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "o2v",
                      help="where a download is kept (default: ~/.cache/o2v)")
    size = parser.add_argument_group("size of the run")
    size.add_argument("--size", choices=("quick", "standard", "large"), default="standard",
                      help="preset (default: standard); see above")
    size.add_argument("--train-rows", type=int, metavar="N",
                      help="train on a deterministic sample of N STS-B training pairs (default: the preset's)")
    size.add_argument("--epochs", type=int, metavar="N", help="epochs of attempt 1 and its retrains "
                      "(default: the preset's)")
    run = parser.add_argument_group("run")
    run.add_argument("--keep-endpoint", action="store_true",
                     help="keep the local services and endpoint up after the report, until Ctrl-C")
    run.add_argument("--env", default="dev", help="cdk.json environment whose settings to use (default: dev)")
    run.add_argument("--runs-dir", type=Path, default=None,
                     help="where run directories are created (default: runs/ in the repository)")
    run.add_argument("--minute-seconds", type=float, default=1.0, metavar="SECONDS",
                     help="local seconds that stand for one minute of the schedules (default: 1, so the safety-net "
                          "monitor's rate(10 minutes) runs every 10 s and the reconciler's rate(5 minutes) every 5 s)")
    run.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                     help="give up when the loop has not settled after this long (default: 900)")
    run.add_argument("--verbose", action="store_true", help="also print the Lambda handlers' own log lines")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from training.demo import DemoError, DemoOptions, run_demo

    if args.train_rows is not None and args.train_rows < 50:
        raise ValueError(f"--train-rows {args.train_rows}: use at least 50")
    if args.epochs is not None and not 5 <= args.epochs <= 100:
        raise ValueError(f"--epochs {args.epochs}: allowed 5 to 100 (the detector needs 5 epochs to decide)")
    if args.minute_seconds <= 0:
        raise ValueError("--minute-seconds must be above 0")
    options = DemoOptions(data=args.data, cache_dir=args.cache_dir, size=args.size, train_rows=args.train_rows,
                          epochs=args.epochs, env_name=args.env, keep_endpoint=args.keep_endpoint,
                          minute_seconds=args.minute_seconds, timeout=args.timeout, verbose=args.verbose)
    if args.runs_dir is not None:
        options.runs_dir = args.runs_dir
    try:
        return run_demo(options)
    except DemoError as error:
        raise ValueError(str(error)) from None
