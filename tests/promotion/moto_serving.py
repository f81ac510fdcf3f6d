"""Fills gaps in moto 5.2.5's SageMaker serving emulation, the way real SageMaker behaves.

What moto 5.2.5 does (``moto/sagemaker/models.py``) and what this adds:

* ``CreateModel``, ``CreateEndpointConfig``, ``CreateEndpoint`` silently overwrite an existing
  name; SageMaker answers ``ValidationException: Cannot create already existing model|endpoint
  configuration|endpoint "<arn>".``. Added, atomically (a lock), so concurrent creates race the
  way they do against the service.
* ``CreateEndpoint`` is ``InService`` at once; SageMaker goes ``Creating`` -> ``InService``.
  Here endpoints stay ``Creating`` (with ``PendingDeploymentSummary``) until :func:`settle`.
* ``UpdateEndpoint`` is not implemented at all (NotImplementedError). Added: it checks that the
  endpoint and config exist, refuses an endpoint that is not ``InService`` with SageMaker's
  ``Cannot update in-progress endpoint``, records ``DeploymentConfig`` as ``LastDeploymentConfig``
  and stays ``Updating`` (with ``PendingDeploymentSummary``) until :func:`settle`.
  ``RetainAllVariantProperties`` is only logged (see :class:`ServingLog`), not applied.
  Traffic shifting and baking are not emulated; an alarm-driven rollback is :func:`roll_back`.
* ``StopTrainingJob`` does not exist and jobs are ``Completed`` at once: tests set a job's status
  with :func:`set_training_job_status`.

* Every SageMaker request is checked first against SageMaker's contract, the one the local
  SageMaker API applies (``training.local_cloud.sagemaker_contract``: required members, lengths,
  values, patterns and enums of the whole service model, and section 10a): botocore's client
  checks only some of them, moto none. Only this test package installs these patches, per test.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

from tests.moto_sagemaker_contract import contract_checked

ACCOUNT = "123456789012"
REGION = "us-east-1"

_lock = threading.RLock()


@dataclass
class ServingLog:
    """What the emulated control plane accepted, for assertions."""

    endpoint_creates: list[tuple[str, str]] = field(default_factory=list)
    endpoint_updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    retained_variant_properties: list[bool] = field(default_factory=list)


def backend() -> SageMakerModelBackend:
    return sagemaker_backends[ACCOUNT][REGION]


def install(monkeypatch: pytest.MonkeyPatch) -> ServingLog:
    log = ServingLog()
    original_model = SageMakerModelBackend.create_model
    original_config = SageMakerModelBackend.create_endpoint_config
    original_endpoint = SageMakerModelBackend.create_endpoint

    def exists(self: SageMakerModelBackend, kind: str, label: str, name: str, table: dict[str, Any]) -> None:
        if name in table:
            arn = arn_formatter(kind, name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing {label} "{arn}".')

    def create_model(self: SageMakerModelBackend, **kwargs: Any) -> Any:
        with _lock:
            exists(self, "model", "model", kwargs["model_name"], self._models)
            return original_model(self, **kwargs)

    def create_endpoint_config(self: SageMakerModelBackend, **kwargs: Any) -> Any:
        with _lock:
            name = kwargs["endpoint_config_name"]
            exists(self, "endpoint-config", "endpoint configuration", name, self.endpoint_configs)
            return original_config(self, **kwargs)

    def create_endpoint(self: SageMakerModelBackend, **kwargs: Any) -> Any:
        with _lock:
            exists(self, "endpoint", "endpoint", kwargs["endpoint_name"], self.endpoints)
            endpoint: Any = original_endpoint(self, **kwargs)
            endpoint.endpoint_status = "Creating"
            endpoint.pending_deployment_summary = {"EndpointConfigName": kwargs["endpoint_config_name"]}
            log.endpoint_creates.append((kwargs["endpoint_name"], kwargs["endpoint_config_name"]))
            return endpoint

    def update_endpoint(
        self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, deployment_config: dict[str, Any]
    ) -> str:
        with _lock:
            endpoint: Any = self.endpoints.get(endpoint_name)
            if endpoint is None:
                arn = arn_formatter("endpoint", endpoint_name, self.account_id, self.region_name)
                raise ValidationError(message=f'Could not find endpoint "{arn}".')
            if endpoint_config_name not in self.endpoint_configs:
                arn = arn_formatter("endpoint-config", endpoint_config_name, self.account_id, self.region_name)
                raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
            if endpoint.endpoint_status != "InService":
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            endpoint.endpoint_status = "Updating"
            endpoint.pending_deployment_summary = {"EndpointConfigName": endpoint_config_name}
            endpoint.last_deployment_config = deployment_config
            log.endpoint_updates.append((endpoint_name, endpoint_config_name, deployment_config))
            return str(endpoint.arn)

    def update_endpoint_response(self: SageMakerResponse) -> ActionResult:
        arn = self.sagemaker_backend.update_endpoint(  # type: ignore[attr-defined]
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
            deployment_config=self._get_param("DeploymentConfig") or {},
        )
        log.retained_variant_properties.append(bool(self._get_param("RetainAllVariantProperties")))
        return ActionResult({"EndpointArn": arn})

    original_model_response = SageMakerResponse.create_model

    def create_model_response(self: SageMakerResponse) -> ActionResult:
        # moto 5.2.5 ignores EnableNetworkIsolation; SageMaker keeps it and DescribeModel returns
        # it (botocore's sagemaker service model, DescribeModelOutput.EnableNetworkIsolation).
        result = original_model_response(self)
        model = self.sagemaker_backend._models[self._get_param("ModelName")]
        model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation"))
        return result

    monkeypatch.setattr(SageMakerResponse, "call_action", contract_checked(SageMakerResponse.call_action))
    monkeypatch.setattr(SageMakerModelBackend, "create_model", create_model)
    monkeypatch.setattr(SageMakerResponse, "create_model", create_model_response)
    monkeypatch.setattr(SageMakerModelBackend, "create_endpoint_config", create_endpoint_config)
    monkeypatch.setattr(SageMakerModelBackend, "create_endpoint", create_endpoint)
    monkeypatch.setattr(SageMakerModelBackend, "update_endpoint", update_endpoint, raising=False)
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint_response, raising=False)
    return log


def settle() -> None:
    """Finish every creation and update: the pending config becomes the served one."""
    with _lock:
        sagemaker = backend()
        endpoint: Any
        for endpoint in sagemaker.endpoints.values():
            pending = getattr(endpoint, "pending_deployment_summary", None)
            if endpoint.endpoint_status in ("Creating", "Updating") and pending:
                config = sagemaker.endpoint_configs[pending["EndpointConfigName"]]
                endpoint.endpoint_config_name = config.endpoint_config_name
                endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.endpoint_status = "InService"
            endpoint.pending_deployment_summary = None


def roll_back() -> None:
    """An alarm tripped during the bake: SageMaker "initiates a complete rollback to the old
    endpoint" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html):
    the endpoint returns to InService on the config it served before; the pending one is dropped."""
    with _lock:
        endpoint: Any
        for endpoint in backend().endpoints.values():
            if endpoint.endpoint_status == "Updating":
                endpoint.endpoint_status = "InService"
                endpoint.pending_deployment_summary = None


def set_training_job_status(name: str, status: str) -> None:
    with _lock:
        job = backend().training_jobs[name]
        job.training_job_status = status
        job.secondary_status = status
