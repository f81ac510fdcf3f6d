"""``o2v verify``: prove a deployment end to end (``--local``: the same checks against local mode)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.commands import Subparsers, add_parser

DESCRIPTION = """\
Run the deployed retraining loop once, end to end, in the AWS account and region of your
credentials (after `cdk deploy`), and print one line per check: passed, failed (the AWS error
and what to do) or could not tell.

  1. a tiny STS-B sample goes to the dataset bucket; attempt 1 starts on ml.m5.2xlarge (the CPU
     type Object2Vec's docs recommend) with a recipe that overfits within a few epochs;
  2. the metric-line judge gets its #quality_metric lines through the log subscription, the curve
     store holds them, divergence is detected, the launcher starts attempt 2 with more dropout;
  3. the best attempt is promoted, the endpoint serves it, `o2v embed --endpoint` embeds two
     sentences with the served model's vocabulary;
  4. the announcements reach the operators' topic (a temporary SQS subscriber), the witness queue
     and the dead-letter queues answer and hold no dead letter;
  5. the points only a real account settles, each a named check recording what AWS did.

Before it creates anything it prints what it will create, the instance types and an upper bound
on cost and time, and asks (--yes skips the question). Everything it creates is named verify-<time>
and tagged o2v:verify-run; it is removed at the end, on failure and on Ctrl-C (--keep keeps the
endpoint), and a later run removes the leftovers of an interrupted one.

--local runs the very same checks against local mode (local stand-ins for AWS, as `o2v demo`),
with no account: the test suite runs it on every change.

Exit status: 0 nothing failed, 1 a check failed, 2 bad input (no credentials, stacks missing or
of another version, no quota, no subscription slot: nothing created), 130 interrupted.

Examples:
  o2v verify --env dev
  o2v verify --env dev --yes --keep
  o2v verify --env dev --local --yes
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "verify", "prove a deployment end to end (--local: against local mode)",
                        DESCRIPTION)
    parser.add_argument("--env", default="dev", help="cdk.json environment that was deployed (default: dev)")
    parser.add_argument("--cdk-json", type=Path, default=Path("cdk.json"), metavar="FILE",
                        help="the project's cdk.json (default: ./cdk.json)")
    parser.add_argument("--local", action="store_true", help="run against local mode instead of an account")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--keep", action="store_true", help="keep the endpoint (and its model) at the end")
    parser.add_argument("--region", help="AWS region (default: cdk.json's, else your AWS configuration's)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="STS-B directory with sts-train.csv, sts-dev.csv, sts-test.csv "
                             "(default: ../shared/data/stsbenchmark beside the repository)")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="keep the tiny dataset and local mode's logs here (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give up waiting for the loop after this long (default: 3 hours, --local 5 minutes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from o2v_core.settings import settings_from_cdk_json

    from training.verify.runner import VerifyOptions, run_verify

    if not args.cdk_json.is_file():
        raise FileNotFoundError(f"--cdk-json {args.cdk_json}: no such file; run in the project root or pass "
                                "--cdk-json")
    settings = settings_from_cdk_json(args.cdk_json, args.env)
    timeout = args.timeout if args.timeout is not None else (300.0 if args.local else 3 * 3600.0)
    options = VerifyOptions(env_name=args.env, local=args.local, yes=args.yes, keep=args.keep, region=args.region,
                            data=args.data, work_dir=args.work_dir, timeout=timeout,
                            poll_seconds=0.5 if args.local else 15.0)
    return run_verify(settings, options)
