"""Documented AWS quotas the control plane's design is sized against. Defined once, each cited.

The scale benchmark (``bench/scale.py``) reports calls per minute next to these, and
``docs/scale.md`` explains the design they lead to. A quota that AWS does not publish is
``None`` with the reason, so nothing is sized against a number we made up.

Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiQuota:
    service: str
    api: str
    per_second: float | None  # None: AWS publishes no number for it
    source: str

    @property
    def per_minute(self) -> float | None:
        return None if self.per_second is None else self.per_second * 60


# CloudWatch Logs. "FilterLogEvents ... quota is five transactions per second (TPS) per AWS
# account or AWS Region", not adjustable; the same page recommends a subscription filter instead
# of polling: https://repost.aws/knowledge-center/cloudwatch-logs-throttling
FILTER_LOG_EVENTS = ApiQuota(
    "logs", "FilterLogEvents", 5.0, "https://repost.aws/knowledge-center/cloudwatch-logs-throttling"
)
# "This operation has a limit of five transactions per second, after which transactions are
# throttled." (DescribeLogStreams, CloudWatch Logs API reference as the AWS SDK for .NET renders it)
DESCRIBE_LOG_STREAMS = ApiQuota(
    "logs",
    "DescribeLogStreams",
    5.0,
    "https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/MCloudWatchLogsCloudWatchLogsDescribeLogStreams"
    "DescribeLogStreamsRequestNET45.html",
)
# SageMaker: "API throttling limits for CreateJob, DescribeJob, and other management APIs are not
# adjustable" with no number published (https://docs.aws.amazon.com/sagemaker/latest/dg/
# model-customize-mtrl-quotas.html); a user asking for ListTags' rate found none either
# (https://repost.aws/questions/QUMbLOfaASQRqLuPH6GkyyyQ/rate-limit-for-sagemaker-listtags-api-endpoint).
_SAGEMAKER_UNPUBLISHED = "https://docs.aws.amazon.com/sagemaker/latest/dg/model-customize-mtrl-quotas.html"
DESCRIBE_TRAINING_JOB = ApiQuota("sagemaker", "DescribeTrainingJob", None, _SAGEMAKER_UNPUBLISHED)
LIST_TAGS = ApiQuota("sagemaker", "ListTags", None, _SAGEMAKER_UNPUBLISHED)
LIST_TRAINING_JOBS = ApiQuota("sagemaker", "ListTrainingJobs", None, _SAGEMAKER_UNPUBLISHED)

# DynamoDB, on-demand: "40,000 read request units and 40,000 write request units" per table by
# default (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html,
# "Throughput default quotas"). The quota counts request units, not calls: a write of an item up
# to 1 KB is one unit, and an UpdateItem is charged for the larger of the item before and after
# (same guide, "Read/write capacity mode"). Sized here for the worst case, an item at the 400 KB
# item limit: 400 units per UpdateItem, 100 calls/s. A read unit reads 4 KB strongly consistent,
# 8 KB eventually consistent (BatchGetItem's default): 400 KB is 50 units, 800 items/s; sized at
# 100/s as well. The table is per deployment, so these are per deployment, not the account's.
_DYNAMODB_TABLE = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
UPDATE_ITEM = ApiQuota("dynamodb", "UpdateItem", 40_000 / 400, _DYNAMODB_TABLE)
BATCH_GET_ITEM = ApiQuota("dynamodb", "BatchGetItem", 40_000 / 400, _DYNAMODB_TABLE)

QUOTAS = (FILTER_LOG_EVENTS, DESCRIBE_LOG_STREAMS, DESCRIBE_TRAINING_JOB, LIST_TAGS, LIST_TRAINING_JOBS,
          UPDATE_ITEM, BATCH_GET_ITEM)

# The safety net (scheduled monitor) paces each CloudWatch Logs API to this share of its account
# quota: 1 call/s of the 5/s. The judge makes no Logs call, so a deployment's own demand on the
# account's Logs quotas is this share plus the finished-job evaluator's two calls per finished job.
SAFETY_NET_LOGS_SHARE = 0.2


def safety_net_logs_per_second() -> float:
    paced = [q.per_second for q in (FILTER_LOG_EVENTS, DESCRIBE_LOG_STREAMS) if q.per_second is not None]
    return SAFETY_NET_LOGS_SHARE * min(paced)

# "Each log group can have up to two subscription filters associated with it."
# (PutSubscriptionFilter, https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/CloudWatchLogs/
# MCloudWatchLogsPutSubscriptionFilterPutSubscriptionFilterRequest.html)
SUBSCRIPTION_FILTERS_PER_LOG_GROUP = 2


def quota_for(api: str) -> ApiQuota | None:
    return next((quota for quota in QUOTAS if quota.api == api), None)


# sagemaker-runtime InvokeEndpoint: the request body (and the response body) is a ``BodyBlob`` with
# ``"max": 6291456`` (botocore ``data/sagemaker-runtime/2017-05-13/service-2.json``), the 6 MB
# payload limit of real-time endpoints. The service bounds a request by its body, not by a count of
# instances (AWS's movie-recommendation notebook sends 9,430 in one: reference 11g).
INVOKE_ENDPOINT_MAX_BODY_BYTES = 6_291_456
