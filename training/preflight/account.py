"""Who and where the deploy would run as, and whether that account and region are CDK-bootstrapped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from training.preflight.report import Check, Status, could_not_tell, error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_ssm import SSMClient

CREDENTIALS = "credentials and region"
BOOTSTRAP = "CDK bootstrap"

# The CDK's bootstrap, as aws-cdk-lib 2.275.0 (the version pinned in pyproject.toml) defines it in
# core/lib/stack-synthesizers/default-synthesizer.js: DEFAULT_QUALIFIER, the context key
# BOOTSTRAP_QUALIFIER_CONTEXT a cdk.json may set, DEFAULT_BOOTSTRAP_STACK_VERSION_SSM_PARAMETER
# "/cdk-bootstrap/${Qualifier}/version", and MIN_BOOTSTRAP_STACK_VERSION, which every synthesized
# template asserts in its CheckBootstrapVersion rule (the deploy fails on an older bootstrap).
DEFAULT_QUALIFIER = "hnb659fds"
QUALIFIER_CONTEXT_KEY = "@aws-cdk/core:bootstrapQualifier"
MIN_BOOTSTRAP_VERSION = 6
# The CDK CLI's default bootstrap stack name (`cdk bootstrap --toolkit-stack-name`, default CDKToolkit);
# the stack outputs its version as `BootstrapVersion` (the bootstrap template, aws-cdk
# lib/api/bootstrap/bootstrap-template.yaml).
DEFAULT_TOOLKIT_STACK = "CDKToolkit"
TOOLKIT_VERSION_OUTPUT = "BootstrapVersion"


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    region: str


class IdentityError(Exception):
    """The credentials or the region do not resolve; the message says what to set."""


def resolve_region(flag: str | None, pinned: str | None, session: boto3.Session) -> str:
    """The region the deploy targets: ``--region``, cdk.json's ``region``, the AWS configuration's.

    botocore reads ``AWS_DEFAULT_REGION`` and the profile's ``region`` (botocore/configprovider.py);
    the CDK CLI (AWS SDK for JavaScript v3) reads ``AWS_REGION`` as well, so that is honoured last.
    """
    if flag and pinned and flag != pinned:
        raise IdentityError(f"--region {flag} differs from the environment's region {pinned} in cdk.json, "
                            "which is where `cdk deploy` deploys; drop --region or change cdk.json")
    region = flag or pinned or session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise IdentityError("no AWS region: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, "
                            "or set the environment's `region` in cdk.json")
    return region


def caller_identity(session: boto3.Session, region: str) -> Identity:
    """``sts:GetCallerIdentity`` (needs no permission: STS API reference, GetCallerIdentity)."""
    try:
        answer = session.client("sts", region_name=region).get_caller_identity()
    except NoCredentialsError:
        raise IdentityError("no AWS credentials found: run `aws configure` or `aws sso login`, "
                            "or set AWS_PROFILE") from None
    except ClientError as error:
        raise IdentityError(f"the AWS credentials were refused ({error_code(error)}): "
                            "renew them (`aws sso login`) or pick another AWS_PROFILE") from None
    except BotoCoreError as error:
        raise IdentityError(f"sts:GetCallerIdentity failed in region {region}: {error}") from None
    return Identity(account=str(answer["Account"]), arn=str(answer["Arn"]), region=region)


def identity_check(identity: Identity, pinned_account: str | None) -> Check:
    if pinned_account and pinned_account != identity.account:
        return Check(CREDENTIALS, Status.FAILED,
                     f"the credentials are for account {identity.account}, cdk.json pins account {pinned_account}",
                     f"use credentials (AWS_PROFILE) for account {pinned_account}, or change the environment's "
                     "`account` in cdk.json")
    return Check(CREDENTIALS, Status.PASSED, f"{identity.arn} in account {identity.account}, region {identity.region}")


def bootstrap_qualifier(context: Mapping[str, Any]) -> str:
    value = context.get(QUALIFIER_CONTEXT_KEY)
    return value if isinstance(value, str) and value else DEFAULT_QUALIFIER


def bootstrap_version_parameter(qualifier: str) -> str:
    return f"/cdk-bootstrap/{qualifier}/version"


def bootstrap_check(ssm: SSMClient, cloudformation: CloudFormationClient, identity: Identity,
                    qualifier: str, toolkit_stack: str = DEFAULT_TOOLKIT_STACK) -> Check:
    """The bootstrap version the templates check (the SSM parameter); the toolkit stack's output
    stands in only when that parameter may not be read."""
    parameter = bootstrap_version_parameter(qualifier)
    command = f"cdk bootstrap aws://{identity.account}/{identity.region}"
    if qualifier != DEFAULT_QUALIFIER:
        command += f" --qualifier {qualifier}"
    if toolkit_stack != DEFAULT_TOOLKIT_STACK:
        command += f" --toolkit-stack-name {toolkit_stack}"
    try:
        version = ssm.get_parameter(Name=parameter)["Parameter"].get("Value", "")
        source = f"SSM parameter {parameter}"
    except ClientError as error:
        # GetParameter's modelled error for a missing name is ParameterNotFound (botocore `ssm` model).
        # Every template resolves the parameter, so its absence fails the deploy whatever the stack says.
        if error_code(error) == "ParameterNotFound":
            return Check(BOOTSTRAP, Status.FAILED,
                         f"not bootstrapped for qualifier {qualifier}: SSM parameter {parameter} not found "
                         f"({_toolkit_stack(cloudformation, toolkit_stack)[1]})", f"run `{command}`")
        stack_version, note = _toolkit_stack(cloudformation, toolkit_stack)
        if stack_version is None:
            return could_not_tell(BOOTSTRAP, error, f"ssm:GetParameter on {parameter}")
        version, source = stack_version, f"{note}, output {TOOLKIT_VERSION_OUTPUT}; {parameter} unreadable"
    except BotoCoreError as error:
        return could_not_tell(BOOTSTRAP, error, f"ssm:GetParameter on {parameter}")
    if not version.isdigit():
        return Check(BOOTSTRAP, Status.UNKNOWN, f"{source} holds {version!r}, not a version number",
                     f"run `{command}` to repair it")
    if int(version) < MIN_BOOTSTRAP_VERSION:
        return Check(BOOTSTRAP, Status.FAILED,
                     f"bootstrap version {version} ({source}) is older than {MIN_BOOTSTRAP_VERSION}, "
                     "which the stacks' templates require", f"run `{command}` to upgrade it")
    return Check(BOOTSTRAP, Status.PASSED, f"version {version} ({source}), qualifier {qualifier}")


def _toolkit_stack(cloudformation: CloudFormationClient, stack_name: str) -> tuple[str | None, str]:
    """(its BootstrapVersion output when the stack is usable, a note on what was found)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        # DescribeStacks answers ValidationError "Stack with id X does not exist" for a missing stack
        # (CloudFormation API reference, DescribeStacks).
        if error_code(error) == "ValidationError":
            return None, f"no stack {stack_name} either"
        return None, f"stack {stack_name} unreadable: {error_code(error)}"
    except BotoCoreError as error:
        return None, f"stack {stack_name} unreadable: {error}"
    if not stacks:
        return None, f"no stack {stack_name} either"
    status = stacks[0].get("StackStatus", "")
    outputs = {o.get("OutputKey"): o.get("OutputValue") for o in stacks[0].get("Outputs", [])}
    # ROLLBACK_COMPLETE: its creation failed; DELETE_COMPLETE: gone (CloudFormation's stack statuses).
    usable = status.endswith("_COMPLETE") and status not in {"ROLLBACK_COMPLETE", "DELETE_COMPLETE"}
    return (outputs.get(TOOLKIT_VERSION_OUTPUT) if usable else None), f"stack {stack_name} is {status}"
