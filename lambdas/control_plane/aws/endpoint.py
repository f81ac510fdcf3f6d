"""Data access for promotion's SageMaker side: models, endpoint configs, the endpoint.

Thin wrappers over boto3 that turn AWS answers into small typed values and AWS "already
exists" errors into ``False``; every decision lives in :mod:`control_plane.logic.promotion`.
The served-model record (SSM) is :mod:`control_plane.aws.serving_record`.

Clients come from :mod:`control_plane.aws.clients` (plain, lazy, cached per environment).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError
from o2v_core.endpoint_deployment import VARIANT_NAME
from o2v_core.naming import tag_dict, tag_list

from control_plane.aws import clients
from control_plane.aws.training_jobs import TrainingJob

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DataCaptureConfigTypeDef, DeploymentConfigTypeDef, TagTypeDef

def _created(create: Callable[[], object]) -> bool:
    """Run a create call; False when a resource of that name already exists (a duplicate event)."""
    try:
        create()
    except ClientError as error:
        if clients.already_exists(error):
            return False
        raise
    return True


def _tags(tags: Mapping[str, str]) -> list[TagTypeDef]:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in tag_list(tags)]


# ---------------------------------------------------------------------------------------------
# SageMaker

IN_SERVICE = "InService"


@dataclass(frozen=True)
class EndpointState:
    name: str
    status: str
    config_name: str
    pending_config_name: str | None  # DescribeEndpoint's PendingDeploymentSummary, while creating/updating

    def targets(self, config_name: str) -> bool:
        """The endpoint serves, or is being moved to, this endpoint config."""
        return config_name in (self.config_name, self.pending_config_name)

    @property
    def busy(self) -> bool:
        """SageMaker refuses UpdateEndpoint unless the endpoint is InService."""
        return self.status != IN_SERVICE


@dataclass(frozen=True)
class EndpointConfigExtras:
    """What an endpoint config carries besides its variants: storage-volume key and data capture.

    ``DataCaptureConfig`` as SageMaker's DescribeEndpointConfig answers it, which is also the shape
    CreateEndpointConfig takes; None: the config has none.
    """

    kms_key_id: str | None = None
    data_capture: DataCaptureConfigTypeDef | None = None
    # The first variant's instance type, as DescribeEndpointConfig answers it (None: not read);
    # create_endpoint_config takes the new config's own.
    instance_type: str | None = None


@dataclass(frozen=True)
class ServedConfig:
    """An endpoint config as the reconciler reads it: its tags, creation time and model's artifact."""

    name: str
    created: datetime
    tags: dict[str, str]
    model_name: str
    model_data_url: str | None
    model_tags: dict[str, str]


class EndpointUpdateRejected(RuntimeError):
    """UpdateEndpoint answered ValidationException (typically: another update is in progress)."""


class SageMakerServing:
    def __init__(self, client: SageMakerClient | None = None) -> None:
        self._given = client

    @property
    def _sm(self) -> SageMakerClient:
        return self._given or clients.sagemaker()

    def describe_training_job(self, name: str) -> TrainingJob:
        job = dict(self._sm.describe_training_job(TrainingJobName=name))
        arn = str(job["TrainingJobArn"])
        return TrainingJob(name, arn, job, self._tags_of(arn))

    def create_model(
        self,
        name: str,
        *,
        image_uri: str,
        model_data_url: str,
        role_arn: str,
        environment: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> bool:
        """Create the model; False when a model of that name already exists."""
        return _created(lambda: self._sm.create_model(
            ModelName=name,
            ExecutionRoleArn=role_arn,
            PrimaryContainer={"Image": image_uri, "ModelDataUrl": model_data_url, "Environment": dict(environment)},
            # Object2Vec inference makes no outbound calls; the promoter's CreateModel permission
            # requires sagemaker:NetworkIsolation.
            EnableNetworkIsolation=True,
            Tags=_tags(tags),
        ))

    def create_endpoint_config(
        self,
        name: str,
        *,
        model_name: str,
        instance_type: str,
        instance_count: int,
        extras: EndpointConfigExtras,
        tags: Mapping[str, str],
    ) -> bool:
        """Create a one-variant endpoint config; False when one of that name already exists."""
        extra: dict[str, Any] = {}
        if extras.kms_key_id:
            extra["KmsKeyId"] = extras.kms_key_id
        if extras.data_capture is not None:
            extra["DataCaptureConfig"] = extras.data_capture
        return _created(lambda: self._sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InitialInstanceCount": instance_count,
                "InstanceType": cast(Any, instance_type),
                "InitialVariantWeight": 1.0,
            }],
            Tags=_tags(tags),
            **extra,
        ))

    def describe_endpoint_config(self, name: str) -> EndpointConfigExtras | None:
        """The config's KmsKeyId and DataCaptureConfig; None when no config of that name exists."""
        try:
            config = self._sm.describe_endpoint_config(EndpointConfigName=name)
        except ClientError as error:
            if clients.not_found(error):
                return None
            raise
        capture = config.get("DataCaptureConfig")
        variants = config.get("ProductionVariants") or []
        return EndpointConfigExtras(
            kms_key_id=config.get("KmsKeyId") or None,
            # The answer's shape is CreateEndpointConfig's (lists where the request takes sequences).
            data_capture=cast("DataCaptureConfigTypeDef", copy.deepcopy(dict(capture))) if capture else None,
            instance_type=(variants[0].get("InstanceType") or None) if variants else None,
        )

    def describe_endpoint(self, name: str) -> EndpointState | None:
        try:
            endpoint = self._sm.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if clients.not_found(error):
                return None
            raise
        pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
        return EndpointState(
            name=name,
            status=endpoint["EndpointStatus"],
            config_name=endpoint["EndpointConfigName"],
            pending_config_name=pending or None,
        )

    def create_endpoint(self, name: str, *, config_name: str, tags: Mapping[str, str]) -> bool:
        """Create the endpoint; False when an endpoint of that name already exists."""
        return _created(lambda: self._sm.create_endpoint(
            EndpointName=name, EndpointConfigName=config_name, Tags=_tags(tags)
        ))

    def served_config(self, name: str) -> ServedConfig | None:
        """DescribeEndpointConfig, its tags, and its (first) model's ModelDataUrl and tags."""
        try:
            config = self._sm.describe_endpoint_config(EndpointConfigName=name)
            model_name = config["ProductionVariants"][0]["ModelName"]
            model = self._sm.describe_model(ModelName=model_name)
        except ClientError as error:
            if clients.not_found(error):
                return None
            raise
        container = model.get("PrimaryContainer") or {}
        return ServedConfig(
            name=name,
            created=config["CreationTime"],
            tags=self._tags_of(config["EndpointConfigArn"]),
            model_name=model_name,
            model_data_url=container.get("ModelDataUrl") or None,
            model_tags=self._tags_of(model["ModelArn"]),
        )

    def _tags_of(self, arn: str) -> dict[str, str]:
        tags: list[Mapping[str, str]] = []
        for page in self._sm.get_paginator("list_tags").paginate(ResourceArn=arn):
            tags.extend({"Key": t["Key"], "Value": t["Value"]} for t in page.get("Tags", []))
        return tag_dict(tags)

    def add_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        self._sm.add_tags(ResourceArn=arn, Tags=_tags(tags))

    def update_endpoint(self, name: str, *, config_name: str, deployment_config: DeploymentConfigTypeDef) -> None:
        """Start a deployment; raises :class:`EndpointUpdateRejected` on ValidationException."""
        try:
            self._sm.update_endpoint(
                EndpointName=name,
                EndpointConfigName=config_name,
                DeploymentConfig=deployment_config,
                # Keep what operators and autoscaling set on the live variant: instance count,
                # weight and data capture. Only the model changes.
                RetainAllVariantProperties=True,
            )
        except ClientError as error:
            code, message = clients.error_code(error), clients.error_message(error)
            if code == "ValidationException":
                raise EndpointUpdateRejected(f"UpdateEndpoint {name} -> {config_name} rejected: {message}") from error
            raise
