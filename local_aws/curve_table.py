"""The metric-line judge's curve store table, created on the local DynamoDB (moto) as the stack creates it.

Same name (``o2v_core.resource_names.job_curve_table_name``), key and time-to-live attribute
(``o2v_core.curve_store``) as ``stacks/constructs/job_curve_store.py``; on-demand billing.
Encryption with the data key is the stack's; moto's table is not encrypted.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from o2v_core import curve_store
from o2v_core.resource_names import job_curve_table_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def ensure_curve_table(dynamodb: DynamoDBClient, deployment: str) -> str:
    """Create the deployment's curve table unless it exists; return its name."""
    name = job_curve_table_name(deployment)
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": curve_store.PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": curve_store.PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": curve_store.TTL_ATTRIBUTE},
        )
    return name
