"""``o2v launch``: start attempt 1 of a lineage on a deployed stack (SageMaker Python SDK v3)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.cli import CommandError
from training.commands import Subparsers, add_parser

DESCRIPTION = """\
Start the first training job of a lineage on a deployed stack. The role, buckets, key and
event bus come from the stacks <deployment>-data and <deployment>-training; the image from
sagemaker image_uris (object2vec); the channels from the dataset uploaded by
`o2v prepare --upload` (s3://<dataset-bucket>/datasets/<name>/...). The job is named
<deployment>-<lineage>-a1 and tagged with its lineage, so the control plane can retrain it.

Hyperparameters, later ones winning: the stack's FirstAttemptHyperparameters, the dataset
manifest (sequence lengths, vocab size, output layer), --config FILE, --hp NAME=VALUE.

Example:
  o2v launch --deployment o2v-dev --dataset stsb --lineage stsb-baseline \\
      --hp enc0_network=hcnn dropout=0.1 --region us-east-1
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "launch", "start attempt 1 of a lineage on AWS", DESCRIPTION)
    parser.add_argument("--deployment", required=True, help="deployment name, e.g. o2v-dev")
    parser.add_argument("--dataset", required=True, help="dataset name under s3://<dataset-bucket>/datasets/")
    parser.add_argument("--lineage", required=True, help="lineage id (letters, digits, hyphens)")
    parser.add_argument("--config", type=Path, help="JSON file of hyperparameters")
    parser.add_argument("--hp", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="hyperparameter override(s)")
    parser.add_argument("--instance-type", help="default: the stack's TrainingInstanceType, else ml.m5.2xlarge")
    parser.add_argument("--volume-size", type=int, default=30, help="EBS volume in GB (default: 30)")
    parser.add_argument("--max-runtime", type=int, default=86_400, help="MaxRuntimeInSeconds (default: 86400)")
    parser.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    parser.add_argument("--validate-role", action="store_true",
                        help="let the SDK check the role with iam:SimulatePrincipalPolicy first")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; start nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.commands.train import parse_overrides, read_config
    from training.launcher.launch import plan_launch, submit
    from training.launcher.stack import aws_session

    layers: list[tuple[str, dict[str, Any]]] = []
    if args.config is not None:
        layers.append((str(args.config), read_config(args.config)))
    if args.hp:
        layers.append(("--hp", parse_overrides(args.hp)))
    session = aws_session(args.region)
    plan = plan_launch(session, deployment=args.deployment, lineage=args.lineage, dataset=args.dataset, layers=layers,
                       instance_type=args.instance_type, volume_size_gb=args.volume_size,
                       max_runtime_seconds=args.max_runtime)
    summary = plan.summary()
    if args.dry_run:
        print(json.dumps({"dry_run": True, **summary}, indent=2))
        return 0
    try:
        summary["arn"] = submit(session, plan, validate_role=args.validate_role)
    except Exception as error:
        if isinstance(error, ValueError):
            raise
        raise CommandError(f"CreateTrainingJob failed: {error}") from None
    print(json.dumps(summary, indent=2))
    print(f"started {plan.job_name}\n{plan.console_url}")
    return 0
