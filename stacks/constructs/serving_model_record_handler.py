"""Custom resource: create the served-model URL parameter if it is absent; never overwrite it.

Shipped as inline Lambda code (CloudFormation's ZipFile, under 4 KB, boto3 only); the import of
``run`` is replaced by its module's text (inline_custom_resource.inline_code), which answers
CloudFormation whatever happens.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stacks.constructs.custom_resource_response import run


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ensure_parameter(ssm: Any, name: str, initial: str) -> str:
    """'kept' (exists: a promotion or an operator set it), 'created', or 'missing' (nothing to set)."""
    try:
        ssm.get_parameter(Name=name)
        return "kept"
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
    if not initial:
        return "missing"
    try:
        ssm.put_parameter(Name=name, Value=initial, Type="String", Overwrite=False)
    except ClientError as error:
        if _code(error) == "ParameterAlreadyExists":
            return "kept"
        raise
    return "created"


def delete_parameters(ssm: Any, names: list[str]) -> None:
    for name in names:
        try:
            ssm.delete_parameter(Name=name)
        except ClientError as error:
            if _code(error) != "ParameterNotFound":
                raise


def on_event(event: dict[str, Any], ssm: Any) -> str:
    props = event["ResourceProperties"]
    name = props["ParameterName"]
    if event["RequestType"] in ("Create", "Update"):
        return ensure_parameter(ssm, name, props.get("InitialModelDataUrl", ""))
    if props.get("DeleteOnStackDelete") == "true":
        delete_parameters(ssm, [name, *props.get("AlsoDelete", [])])
        return "deleted"
    return "retained"


def handler(event: dict[str, Any], context: Any) -> None:
    run(event, on_event, "ssm", "ParameterName")
