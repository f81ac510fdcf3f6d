"""The metric-line judge's curve store in the training stack: the table local mode also creates
(local_aws/curve_table.py), encrypted with the data key, with its time to live."""

from __future__ import annotations

from typing import Any

from o2v_core import curve_store
from o2v_core.resource_names import job_curve_table_name

from tests.stacks.conftest import Synthesized


def test_the_curve_table_matches_the_store_layout_and_is_encrypted_with_the_data_key(
    synthesized: Synthesized,
) -> None:
    (table,) = synthesized.resources("training", "AWS::DynamoDB::Table").values()
    props: dict[str, Any] = table["Properties"]
    assert props["TableName"] == job_curve_table_name(synthesized.settings.deployment)
    assert props["KeySchema"] == [{"AttributeName": curve_store.PARTITION_KEY, "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": curve_store.TTL_ATTRIBUTE, "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True and props["SSESpecification"]["SSEType"] == "KMS"
    assert "Fn::ImportValue" in str(props["SSESpecification"]["KMSMasterKeyId"])  # the data stack's key
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    expected = "RetainExceptOnCreate" if synthesized.settings.retain_data else "Delete"  # reference 11c
    assert table["DeletionPolicy"] == expected
