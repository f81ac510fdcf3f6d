"""Names of the deployed resources that the stacks create and local mode stands in for.

Defined once, without CDK imports, so that local mode and the launcher can use them without
starting a jsii process.

The served-model record is two SSM String parameters, both outside any stack's ownership of
their value:

* ``/o2v/{deployment}/serving-model``: the promoter's JSON record (modelDataUrl,
  trainingJobName, metricName, metricValue, ...), read and written by the promoter only.
* ``/o2v/{deployment}/serving-model-data-url``: just the served ModelDataUrl. The serving
  stack's model reads it through a ``{{resolve:ssm:...}}`` dynamic reference at deploy time;
  the data stack creates it from ``serving.initial_model_data_url`` only when it does not exist
  yet; the promoter overwrites it after each promotion. So a redeploy never reverts a promotion.
"""

from __future__ import annotations


def event_bus_name(deployment: str) -> str:
    """The project's own event bus (the SageMaker state-change rule stays on the default bus)."""
    return f"{deployment}-control-plane"


def endpoint_name(deployment: str) -> str:
    """The embedding endpoint."""
    return f"{deployment}-embeddings"


def serving_model_parameter(deployment: str) -> str:
    return f"/o2v/{deployment}/serving-model"


def serving_model_data_url_parameter(deployment: str) -> str:
    return f"/o2v/{deployment}/serving-model-data-url"
