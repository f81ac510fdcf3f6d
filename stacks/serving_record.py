"""Names of the served-model record, shared by the data stack, the serving stack and the promoter env.

Two SSM String parameters, both outside any stack's ownership of their value:

* ``/o2v/{deployment}/serving-model`` - the promoter's JSON record (modelDataUrl, trainingJobName,
  metricName, metricValue, ...), read and written by the promoter only.
* ``/o2v/{deployment}/serving-model-data-url`` - just the served ModelDataUrl. The serving stack's
  model reads it through a ``{{resolve:ssm:...}}`` dynamic reference at deploy time; the data
  stack creates it from ``serving.initial_model_data_url`` only when it does not exist yet; the
  promoter overwrites it after each promotion. So a redeploy never reverts a promotion.
"""

from __future__ import annotations

from aws_cdk import Aws


def serving_model_parameter(deployment: str) -> str:
    return f"/o2v/{deployment}/serving-model"


def serving_model_data_url_parameter(deployment: str) -> str:
    return f"/o2v/{deployment}/serving-model-data-url"


def parameter_arn(name: str) -> str:
    return f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{name}"
