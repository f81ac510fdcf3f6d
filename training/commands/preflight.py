"""``o2v preflight``: will `cdk deploy` work in this account and region? Read-only checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.commands import Subparsers, add_parser

DESCRIPTION = """\
Check, read-only, what a first `cdk deploy` of a cdk.json environment meets in the AWS account
and region of your credentials, and say exactly what to request or change. Run it before
`cdk deploy`. Nothing is created or modified.

Checks (one line each: passed, failed, could not tell, warning):
  credentials and region   sts:GetCallerIdentity resolves (and is the account cdk.json pins, if any)
  CDK bootstrap            SSM /cdk-bootstrap/<qualifier>/version >= 6; the qualifier comes from
                           cdk.json's @aws-cdk/core:bootstrapQualifier (default hnb659fds)
  training instance quota  Service Quotas, service code sagemaker:
                           '<training.instance_type> for training job usage' >= 1
  endpoint instance quota  '<serving.instance_type> for endpoint usage' >= 2 x max_capacity
                           (a blue/green update runs the new fleet beside the old one)
  training log subscription slots
                           /aws/sagemaker/TrainingJobs takes at most 2 subscription filters and the
                           training stack adds one (a filter with our name is ours already)
  operator notifications   warns when an environment that retains data has no notification_email

A failed line ends in `fix:` with the command to run (e.g. `aws service-quotas
request-service-quota-increase ...`). 'could not tell' means the read was denied or the quota is not
listed: grant the read permission it names, or check by hand.

Permissions it reads with: sts:GetCallerIdentity, ssm:GetParameter, cloudformation:DescribeStacks,
servicequotas:ListServiceQuotas, servicequotas:ListAWSDefaultServiceQuotas,
logs:DescribeSubscriptionFilters.

Exit status: 0 nothing failed (and, with --strict, nothing unknown), 1 a check failed (the deploy
would fail), 2 bad settings, no credentials or no region.

Examples:
  o2v preflight --env dev
  o2v preflight --env prod --region eu-west-1 --json
  AWS_PROFILE=deployer o2v preflight --env dev --strict
"""


def register(subparsers: Subparsers) -> None:
    parser = add_parser(subparsers, "preflight", "check an AWS account and region before `cdk deploy` (read-only)",
                        DESCRIPTION)
    parser.add_argument("--env", default="dev", help="cdk.json environment to check (default: dev)")
    parser.add_argument("--cdk-json", type=Path, default=Path("cdk.json"), metavar="FILE",
                        help="the project's cdk.json (default: ./cdk.json, where `cdk deploy` runs)")
    parser.add_argument("--region", help="AWS region (default: the environment's region in cdk.json, else "
                                         "AWS_DEFAULT_REGION / AWS_REGION / the profile's)")
    parser.add_argument("--toolkit-stack-name", default=None, metavar="NAME",
                        help="the CDK bootstrap stack, if `cdk bootstrap` named it (default: CDKToolkit)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check could not tell, too")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import ProfileNotFound
    from o2v_core.settings import read_cdk_context, settings_from_cdk_json

    from training.cli import CommandError
    from training.preflight.account import DEFAULT_TOOLKIT_STACK
    from training.preflight.runner import run_preflight

    if not args.cdk_json.is_file():
        raise FileNotFoundError(f"--cdk-json {args.cdk_json}: no such file; run in the project root "
                                "(where `cdk deploy` runs) or pass --cdk-json")
    settings = settings_from_cdk_json(args.cdk_json, args.env)
    try:
        session = boto3.Session()
    except ProfileNotFound as error:
        raise CommandError(f"{error}: pick a profile from ~/.aws/config, or unset AWS_PROFILE") from None
    report = run_preflight(session, settings, read_cdk_context(args.cdk_json), region=args.region,
                           toolkit_stack=args.toolkit_stack_name or DEFAULT_TOOLKIT_STACK)
    print(report.json_text(args.strict) if args.json else report.text(args.strict))
    return report.exit_code(args.strict)
