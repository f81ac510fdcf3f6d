"""Models, endpoint configs and endpoints of the local SageMaker API.

An endpoint is the local inference server (``python -m training.serving --model PATH --port N``,
SageMaker's serving contract: ``GET /ping``, ``POST /invocations``), started on a free
loopback port with the model artifact that ``CreateModel``'s ``ModelDataUrl`` names (copied
from the local S3). ``CreateEndpoint`` is ``Creating`` until ``/ping`` answers 200, then
``InService``. ``UpdateEndpoint`` is ``Updating`` while the new server starts; the old one keeps
serving until the new one is healthy (blue/green, as SageMaker does), and a failed update
rolls back to the old one. ``InvokeEndpoint`` forwards the body, ``Content-Type`` and
``Accept`` to ``/invocations`` as the caller sent them (no Content-Type stays none: the server
decides, so ``o2v serve`` and local mode agree), refuses a body over 6 MiB (botocore's
``BodyBlob`` ``max``), and returns only the response headers botocore's ``InvokeEndpointOutput``
models. A container error becomes ``ModelError`` (424) with ``OriginalStatusCode``,
``OriginalMessage`` and ``LogStreamArn`` (the members of botocore's sagemaker-runtime
``ModelError`` shape). Server output goes to the local Logs group
``/aws/sagemaker/Endpoints/<endpoint>``. The server processes themselves are
:mod:`local_aws.sagemaker.inference_servers`.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o2v_core.aws_quotas import INVOKE_ENDPOINT_MAX_BODY_BYTES
from o2v_core.endpoint_deployment import VARIANT_NAME
from o2v_core.resource_names import endpoint_log_group

from local_aws import procs
from local_aws.clients import ApiError, Clients, LogForwarder, page
from local_aws.sagemaker.inference_servers import Server, ServerCommand, start_server


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    status: str = "Creating"
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    server: Server | None = None
    variant: dict[str, Any] = field(default_factory=dict)
    image: str = ""
    pending_config: str | None = None
    pending_since: float | None = None
    last_deployment_config: dict[str, Any] | None = None
    retain_variant_properties: bool = False  # the pending update's RetainAllVariantProperties

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": self.config_name,
            "EndpointStatus": self.status,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.variant:  # what a deployment put in service (a server, or a test's settle)
            count = int(self.variant.get("InitialInstanceCount", 1))
            out["ProductionVariants"] = [{
                "VariantName": self.variant.get("VariantName", VARIANT_NAME),
                "DeployedImages": [{"SpecifiedImage": self.image, "ResolvedImage": self.image,
                                    "ResolutionTime": self.modified}],
                "CurrentWeight": float(self.variant.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(self.variant.get("InitialVariantWeight", 1.0)),
                "CurrentInstanceCount": count,
                "DesiredInstanceCount": count,
            }]
        if self.pending_config is not None:
            out["PendingDeploymentSummary"] = {
                "EndpointConfigName": self.pending_config,
                "StartTime": self.pending_since or self.modified,
            }
        if self.last_deployment_config is not None:
            out["LastDeploymentConfig"] = self.last_deployment_config
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out

    def put_in_service(self, config_name: str, variant: dict[str, Any], image: str) -> None:
        """The pending deployment finished: ``config_name`` serves (the caller holds the lock).

        With ``RetainAllVariantProperties`` the endpoint keeps its variant properties "such as the
        instance count or the variant weight" instead of the new config's (UpdateEndpoint's
        documentation in botocore's service model; the default is false)."""
        served = dict(variant)
        if self.retain_variant_properties and self.variant:
            for key in ("InitialInstanceCount", "InitialVariantWeight"):
                if key in self.variant:
                    served[key] = self.variant[key]
        self.config_name, self.variant, self.image = config_name, served, image
        self.status, self.modified = "InService", time.time()
        self.pending_config = self.pending_since = None
        self.retain_variant_properties = False


def _summaries(described: list[dict[str, Any]], params: dict[str, Any], key: str, name: str,
               members: tuple[str, ...]) -> dict[str, Any]:
    """A List* answer of endpoints, models or configs: the summary shape's members of those whose name
    contains ``NameContains``, newest first (the operations' default sort, CreationTime Descending,
    in botocore's service model), one page."""
    items = [{member: item[member] for member in members if member in item} for item in described
             if params.get("NameContains", "") in item[name]]
    items.sort(key=lambda item: item["CreationTime"], reverse=True)
    return page(items, params, key, 10)


class EndpointManager:
    """Holds models, endpoint configs and endpoints; starts and stops the inference servers."""

    def __init__(self, clients: Clients, state_dir: Path, *, lock: threading.Lock, server_command: ServerCommand,
                 ready_timeout: float = 120.0, deploy: bool = True) -> None:
        """``deploy=False``: start no inference server; deployments wait for :meth:`settle`."""
        self.clients = clients
        self.deploy = deploy
        self.state_dir = state_dir
        self.lock = lock
        self.server_command = server_command
        self.ready_timeout = ready_timeout
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self._deployments = 0

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.clients.region}:{self.clients.account}:{kind}/{name.lower()}"

    # -- models and configs

    def create_model(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        container = params.get("PrimaryContainer") or (params.get("Containers") or [None])[0]
        if not container or not container.get("ModelDataUrl"):
            raise ApiError("ValidationException", "local mode needs PrimaryContainer.ModelDataUrl (a model.tar.gz)")
        with self.lock:
            if name in self.models:
                raise ApiError("ValidationException",
                               f'Cannot create already existing model "{self.arn("model", name)}".')
            self.models[name] = {
                "ModelName": name,
                "ModelArn": self.arn("model", name),
                "PrimaryContainer": container,
                "ExecutionRoleArn": params.get("ExecutionRoleArn", ""),
                "CreationTime": time.time(),
                "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False)),
            }
            return {"ModelArn": self.models[name]["ModelArn"]}

    def describe_model(self, name: str) -> dict[str, Any]:
        with self.lock:
            if name not in self.models:
                raise ApiError("ValidationException", f'Could not find model "{self.arn("model", name)}".')
            return dict(self.models[name])

    def delete_model(self, name: str) -> dict[str, Any]:
        with self.lock:
            if self.models.pop(name, None) is None:
                raise ApiError("ValidationException", f'Could not find model "{self.arn("model", name)}".')
        return {}

    def create_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        variants = params["ProductionVariants"]
        if len(variants) != 1:
            raise ApiError("ValidationException",
                           "local mode serves exactly one production variant per endpoint config")
        with self.lock:
            if name in self.configs:
                arn = self.arn("endpoint-config", name)
                raise ApiError("ValidationException", f'Cannot create already existing endpoint configuration "{arn}".')
            # DescribeEndpointConfig answers with the request's members (KmsKeyId, DataCaptureConfig, ...).
            self.configs[name] = {
                **{key: value for key, value in params.items() if key != "Tags"},
                "EndpointConfigArn": self.arn("endpoint-config", name),
                "CreationTime": time.time(),
            }
            return {"EndpointConfigArn": self.configs[name]["EndpointConfigArn"]}

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        with self.lock:
            if name not in self.configs:
                raise ApiError("ValidationException",
                               f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".')
            return dict(self.configs[name])

    def delete_endpoint_config(self, name: str) -> dict[str, Any]:
        with self.lock:
            if self.configs.pop(name, None) is None:
                raise ApiError("ValidationException",
                               f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".')
        return {}

    # -- endpoints

    def _check_config(self, config_name: str) -> None:
        config = self.configs.get(config_name)
        if config is None:
            raise ApiError("ValidationException",
                           f'Could not find endpoint configuration "{self.arn("endpoint-config", config_name)}".')
        model_name = config["ProductionVariants"][0]["ModelName"]
        if model_name not in self.models:
            raise ApiError("ValidationException", f'Could not find model "{self.arn("model", model_name)}".')

    def create_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        with self.lock:
            if name in self.endpoints:
                raise ApiError("ValidationException",
                               f'Cannot create already existing endpoint "{self.arn("endpoint", name)}".')
            self._check_config(config_name)
            endpoint = Endpoint(name, self.arn("endpoint", name), config_name, pending_config=config_name,
                                pending_since=time.time())
            self.endpoints[name] = endpoint
        self._start_deployment(endpoint, config_name)
        return {"EndpointArn": endpoint.arn}

    def update_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        with self.lock:
            endpoint = self._endpoint(name)
            if endpoint.status != "InService":
                raise ApiError("ValidationException",
                               f'Cannot update in-progress endpoint "{endpoint.arn}".')
            self._check_config(config_name)
            endpoint.status, endpoint.modified, endpoint.failure_reason = "Updating", time.time(), None
            endpoint.pending_config, endpoint.pending_since = config_name, time.time()
            endpoint.retain_variant_properties = bool(params.get("RetainAllVariantProperties"))
            if params.get("DeploymentConfig"):  # DescribeEndpoint's LastDeploymentConfig
                endpoint.last_deployment_config = params["DeploymentConfig"]
        self._start_deployment(endpoint, config_name)
        return {"EndpointArn": endpoint.arn}

    def _start_deployment(self, endpoint: Endpoint, config_name: str) -> None:
        if self.deploy:
            threading.Thread(target=self._deploy, args=(endpoint, config_name), name=f"endpoint:{endpoint.name}",
                             daemon=True).start()

    def settle(self) -> None:
        """Scripted mode: every pending creation or update finishes; its config serves."""
        with self.lock:
            for endpoint in self.endpoints.values():
                if endpoint.pending_config is not None:
                    variant = dict(self.configs[endpoint.pending_config]["ProductionVariants"][0])
                    container = self.models.get(variant.get("ModelName", ""), {}).get("PrimaryContainer", {})
                    endpoint.put_in_service(endpoint.pending_config, variant, str(container.get("Image", "")))

    def roll_back(self) -> None:
        """Scripted mode: every pending update is rolled back; the former config serves, InService."""
        with self.lock:
            for endpoint in self.endpoints.values():
                if endpoint.status == "Updating":
                    endpoint.status, endpoint.modified = "InService", time.time()
                    endpoint.pending_config = endpoint.pending_since = None
                    endpoint.retain_variant_properties = False

    def reset(self) -> None:
        """Stop every server and forget every model, config and endpoint."""
        self.shutdown()
        with self.lock:
            self.models.clear()
            self.configs.clear()
            self.endpoints.clear()

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        with self.lock:
            return self._endpoint(name).describe()

    def list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            described = [endpoint.describe() for endpoint in self.endpoints.values()]
        return _summaries(described, params, "Endpoints", "EndpointName",
                          ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus"))

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListModels: ``ModelSummary`` items (ModelName, ModelArn, CreationTime), ``NameContains``."""
        with self.lock:
            described = [dict(model) for model in self.models.values()]
        return _summaries(described, params, "Models", "ModelName", ("ModelName", "ModelArn", "CreationTime"))

    def list_endpoint_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListEndpointConfigs: ``EndpointConfigSummary`` items, ``NameContains``."""
        with self.lock:
            described = [dict(config) for config in self.configs.values()]
        return _summaries(described, params, "EndpointConfigs", "EndpointConfigName",
                          ("EndpointConfigName", "EndpointConfigArn", "CreationTime"))

    def delete_endpoint(self, name: str) -> dict[str, Any]:
        with self.lock:
            endpoint = self._endpoint(name)
            endpoint.status = "Deleting"
            server, endpoint.server = endpoint.server, None
            del self.endpoints[name]
        if server is not None:
            server.stop()
        return {}

    def _endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ApiError("ValidationException", f'Could not find endpoint "{self.arn("endpoint", name)}".')
        return endpoint

    def _deploy(self, endpoint: Endpoint, config_name: str) -> None:
        try:
            server, variant, image = self._start_server(endpoint, config_name)
        except Exception as error:
            reason = error.message if isinstance(error, ApiError) else f"{type(error).__name__}: {error}"
            with self.lock:
                endpoint.modified = time.time()
                endpoint.pending_config = endpoint.pending_since = None
                if endpoint.server is not None:  # a failed update rolls back to the serving config
                    endpoint.status = "InService"
                    endpoint.failure_reason = f"Update to {config_name} failed and was rolled back: {reason}"
                else:
                    endpoint.status, endpoint.failure_reason = "Failed", reason
            return
        with self.lock:
            old, endpoint.server = endpoint.server, server
            endpoint.put_in_service(config_name, variant, image)
            gone = endpoint.name not in self.endpoints
        if old is not None:
            old.stop()
        if gone:  # deleted while it was being created
            server.stop()

    def _start_server(self, endpoint: Endpoint, config_name: str) -> tuple[Server, dict[str, Any], str]:
        with self.lock:
            variant = dict(self.configs[config_name]["ProductionVariants"][0])
            model = self.models[variant["ModelName"]]
            self._deployments += 1
            number = self._deployments
        container = model["PrimaryContainer"]
        directory = self.state_dir / "endpoints" / endpoint.name / f"{number:02d}-{config_name}"
        variant_name = variant.get("VariantName", VARIANT_NAME)
        forwarder = LogForwarder(self.clients, endpoint_log_group(endpoint.name),
                                 f"{variant_name}/i-local{number:04d}")
        server = start_server(self.clients, container, directory, self.server_command, forwarder,
                              config_name=config_name, ready_timeout=self.ready_timeout)
        return server, variant, str(container.get("Image", ""))

    # -- runtime

    def invoke(self, name: str, body: bytes, content_type: str | None,
               accept: str | None) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            endpoint = self.endpoints.get(name)
            server = endpoint.server if endpoint is not None else None
            variant = endpoint.variant.get("VariantName", VARIANT_NAME) if endpoint is not None else ""
        if endpoint is None or server is None or not server.alive():
            raise ApiError("ValidationError",
                           f"Endpoint {name} of account {self.clients.account} not found.")
        if len(body) > INVOKE_ENDPOINT_MAX_BODY_BYTES:
            # The limit is botocore's BodyBlob "max"; the service's exact wording is not published.
            raise ApiError("ValidationError", f"Request body of {len(body)} bytes exceeds InvokeEndpoint's limit of "
                                              f"{INVOKE_ENDPOINT_MAX_BODY_BYTES} bytes (6 MiB).")
        headers = {"Content-Type": content_type} if content_type is not None else {}
        if accept:
            headers["Accept"] = accept
        log_stream_arn = (f"arn:aws:logs:{self.clients.region}:{self.clients.account}:log-group:"
                          f"{server.forwarder.group}:log-stream:{server.forwarder.stream}")
        connection = http.client.HTTPConnection(procs.LOOPBACK, server.port, timeout=60)
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            reply_type = response.getheader("Content-Type", "application/json")
        except OSError as error:
            raise ApiError("ModelError", f"Received server error from the model: {error}", 424,
                           {"OriginalStatusCode": 500, "OriginalMessage": str(error),
                            "LogStreamArn": log_stream_arn}) from None
        finally:
            connection.close()
        if response.status >= 300:
            message = payload.decode("utf-8", errors="replace")[:1000]
            side = "client" if response.status < 500 else "server"
            raise ApiError(
                "ModelError",
                f"Received {side} error ({response.status}) from primary with message \"{message}\". "
                f"See the local log group {endpoint_log_group(name)}.",
                424,
                {"OriginalStatusCode": response.status, "OriginalMessage": message, "LogStreamArn": log_stream_arn},
            )
        return 200, payload, {"Content-Type": reply_type, "x-Amzn-Invoked-Production-Variant": variant}

    def shutdown(self) -> None:
        with self.lock:
            servers = [endpoint.server for endpoint in self.endpoints.values() if endpoint.server is not None]
            for endpoint in self.endpoints.values():
                endpoint.server = None
                endpoint.status = "OutOfService"
        for server in servers:
            server.stop()
